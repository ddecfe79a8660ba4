// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {Agreement, DealState, DealTerms, dealKeyOf} from "./Types.sol";
import {LilypadStorage} from "./LilypadStorage.sol";

/// What a contract that asks for jobs must implement to hear back.
interface ILilypadJobClient {
    /// The job ran: `resultsId` is the sha2-256 digest of the results CID of deal `dealKey`.
    function submitResults(uint256 jobId, bytes32 dealKey, bytes32 resultsId) external;
    /// The job could not be run; the deposit went back to the refund address.
    function jobFailed(uint256 jobId, string calldata reason) external;
}

/// @title LilypadOnChainJobCreator
/// @notice Lets smart contracts request Lilypad jobs. A client contract pays a deposit and
/// names a module and inputs; the off-chain `lilypad jc` (the operator) runs the job as a
/// normal job creator and reports back, and this contract calls the client.
/// @dev The deposit stays here until the job ends: on success it pays the operator, who
/// fronted the deal's escrow; on failure it goes back to the requester's refund address.
///
/// Before the operator agrees to a deal for a job it binds the deal to the job
/// (`startJob`): the deal's job creator must be the operator, and a deal serves at most one
/// job (its job offer also names the job, so the deal id commits to it off chain).
/// `completeJob` then pays only for that deal, once it ended with accepted results.
/// The requester may cancel after the timeout fixed when it asked (`cancellableAt`), unless
/// the operator has escrowed money in a bound deal that can still succeed; once that deal
/// ends any other way (anyone may end a deal whose deadline passed), the requester can cancel
/// again, so a deposit is never stranded.
contract LilypadOnChainJobCreator is Ownable, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    enum JobStatus {
        None,
        Pending,
        Completed,
        Failed,
        Cancelled
    }

    struct Job {
        address client;
        uint40 createdAt;
        /// After this the requester may cancel (fixed when the job is requested).
        uint40 cancellableAt;
        JobStatus status;
        address refundTo;
        /// If the operator has not agreed to the bound deal by then, it no longer holds the job.
        uint40 agreeBy;
        uint256 deposit;
        /// The deal bound to the job by `startJob` (zero: none yet).
        bytes32 dealKey;
        /// The results CID digest of a completed job.
        bytes32 resultsId;
    }

    IERC20 public immutable token;
    LilypadStorage public immutable dealStorage;
    /// The `lilypad jc` account that runs requested jobs.
    address public operator;
    /// What a request costs, in token wei.
    uint256 public requiredDeposit;
    /// Seconds after which an unanswered request may be cancelled (applies to new requests).
    uint256 public requestTimeout;
    /// The id the next request gets (ids start at 1).
    uint256 public nextJobId = 1;

    /// Gas each client callback gets. A report that cannot leave this much for the callback
    /// reverts: otherwise a report sent with an estimated gas limit could succeed while the
    /// callback ran out of gas, and the client would never hear back.
    uint256 public constant CALLBACK_GAS = 300_000;
    /// How much of a failed callback's revert data is kept (and logged). A client could
    /// otherwise revert with a payload big enough to make the operator's report expensive.
    uint256 public constant MAX_REVERT_DATA = 256;

    mapping(uint256 jobId => Job) private _jobs;
    /// The job each deal was bound to, so one deal cannot serve two requests.
    mapping(bytes32 dealKey => uint256 jobId) public jobOfDeal;

    event JobAdded(
        uint256 indexed jobId, address indexed client, address refundTo, string module, string[] inputs, uint256 deposit
    );
    /// The operator bound deal `dealKey` (off-chain id `dealId`) to the job.
    event JobStarted(uint256 indexed jobId, bytes32 dealKey, bytes32 dealId);
    event JobCompleted(uint256 indexed jobId, bytes32 dealKey, bytes32 resultsId);
    event JobFailed(uint256 indexed jobId, string reason);
    event JobCancelled(uint256 indexed jobId);
    /// The client's callback reverted (`reason`: at most MAX_REVERT_DATA bytes of its revert
    /// data); the job's outcome stands regardless.
    event ClientCallbackFailed(uint256 indexed jobId, bytes reason);
    event OperatorChanged(address indexed operator);
    event RequiredDepositChanged(uint256 deposit);
    event RequestTimeoutChanged(uint256 timeout);

    error NotOperator(address caller);
    error NotPending(uint256 jobId, JobStatus status);
    /// The deal's job creator is not the operator: the operator did not pay for it.
    error NotOperatorsDeal(bytes32 dealKey, address jobCreator);
    /// The job's bound deal can still succeed, so it cannot be replaced or cancelled.
    error DealUnderWay(uint256 jobId, bytes32 dealKey);
    error NoDeal(uint256 jobId);
    error DealNotSettled(bytes32 dealKey, DealState state);
    error DealAlreadyUsed(bytes32 dealKey, uint256 jobId);
    error NotRequester(uint256 jobId, address caller);
    error TooEarlyToCancel(uint256 jobId, uint256 cancellableAt);
    error InvalidSetting();
    error NotEnoughGasForCallback(uint256 left, uint256 needed);

    constructor(
        IERC20 token_,
        LilypadStorage dealStorage_,
        address operator_,
        uint256 requiredDeposit_,
        uint256 requestTimeout_,
        address owner_
    ) Ownable(owner_) {
        if (address(token_) == address(0) || address(dealStorage_) == address(0)) {
            revert InvalidSetting();
        }
        token = token_;
        dealStorage = dealStorage_;
        _setOperator(operator_);
        _setRequiredDeposit(requiredDeposit_);
        _setRequestTimeout(requestTimeout_);
    }

    modifier onlyOperator() {
        if (msg.sender != operator) revert NotOperator(msg.sender);
        _;
    }

    function setOperator(address operator_) external onlyOwner {
        _setOperator(operator_);
    }

    function setRequiredDeposit(uint256 deposit) external onlyOwner {
        _setRequiredDeposit(deposit);
    }

    function setRequestTimeout(uint256 timeout) external onlyOwner {
        _setRequestTimeout(timeout);
    }

    /// A job request, whole.
    function getJob(uint256 jobId) external view returns (Job memory) {
        return _jobs[jobId];
    }

    /// Asks for `module` to run with `inputs` ("Key=Value" strings). The caller (usually a
    /// client contract) pays `requiredDeposit` (approve this contract first); refunds go to
    /// `refundTo`. Results are reported to the caller through ILilypadJobClient.
    function runJob(string calldata module, string[] calldata inputs, address refundTo)
        external
        nonReentrant
        returns (uint256 jobId)
    {
        if (refundTo == address(0)) revert InvalidSetting();
        jobId = nextJobId++;
        uint256 deposit = requiredDeposit;
        _jobs[jobId] = Job({
            client: msg.sender,
            createdAt: uint40(block.timestamp),
            // requestTimeout is at most 2^32 s: the sum stays far below 2^40.
            // forge-lint: disable-next-line(unsafe-typecast)
            cancellableAt: uint40(block.timestamp + requestTimeout),
            status: JobStatus.Pending,
            refundTo: refundTo,
            agreeBy: 0,
            deposit: deposit,
            dealKey: bytes32(0),
            resultsId: bytes32(0)
        });
        emit JobAdded(jobId, msg.sender, refundTo, module, inputs, deposit);
        token.safeTransferFrom(msg.sender, address(this), deposit);
    }

    /// The operator binds deal `dealId` under `terms` to the job, before it agrees to the
    /// deal (it must agree within the deal's agree timeout from now). The deal's job creator
    /// must be the operator. A job whose bound deal ended without accepted results (or was
    /// never agreed to in time) may be bound to a new deal.
    function startJob(uint256 jobId, bytes32 dealId, DealTerms calldata terms) external onlyOperator nonReentrant {
        Job storage job = _pending(jobId);
        if (!_boundDealIsOver(job)) revert DealUnderWay(jobId, job.dealKey);
        bytes32 key = dealKeyOf(dealId, terms);
        if (terms.members.jobCreator != operator) revert NotOperatorsDeal(key, terms.members.jobCreator);
        if (jobOfDeal[key] != 0) revert DealAlreadyUsed(key, jobOfDeal[key]);
        jobOfDeal[key] = jobId;
        job.dealKey = key;
        uint256 agreeBy = block.timestamp + terms.timeouts.agree.timeout;
        job.agreeBy = agreeBy > type(uint40).max ? type(uint40).max : uint40(agreeBy);
        emit JobStarted(jobId, key, dealId);
    }

    /// The operator reports that the job's deal ended with accepted results (accepted by the
    /// operator or by its mediator). The deposit pays the operator, and the client is called
    /// back with the results committed on chain.
    function completeJob(uint256 jobId) external onlyOperator nonReentrant {
        Job storage job = _pending(jobId);
        bytes32 key = job.dealKey;
        if (key == bytes32(0)) revert NoDeal(jobId);
        DealState state = dealStorage.stateOf(key);
        if (state != DealState.ResultsAccepted && state != DealState.MediationAccepted) {
            revert DealNotSettled(key, state);
        }
        bytes32 resultsId = dealStorage.resultsIdOf(key);
        job.status = JobStatus.Completed;
        job.resultsId = resultsId;
        emit JobCompleted(jobId, key, resultsId);
        token.safeTransfer(msg.sender, job.deposit);
        _callBack(jobId, job.client, abi.encodeCall(ILilypadJobClient.submitResults, (jobId, key, resultsId)));
    }

    /// The operator could not run the job: the deposit is refunded and the client told why.
    function failJob(uint256 jobId, string calldata reason) external onlyOperator nonReentrant {
        Job storage job = _pending(jobId);
        job.status = JobStatus.Failed;
        emit JobFailed(jobId, reason);
        token.safeTransfer(job.refundTo, job.deposit);
        _callBack(jobId, job.client, abi.encodeCall(ILilypadJobClient.jobFailed, (jobId, reason)));
    }

    /// The requester takes its deposit back from a request nobody served in time: after
    /// `cancellableAt`, unless the operator has agreed to a bound deal that can still succeed.
    function cancelJob(uint256 jobId) external nonReentrant {
        Job storage job = _pending(jobId);
        if (msg.sender != job.client && msg.sender != job.refundTo) revert NotRequester(jobId, msg.sender);
        if (block.timestamp <= job.cancellableAt) revert TooEarlyToCancel(jobId, job.cancellableAt);
        if (!_boundDealIsOver(job)) revert DealUnderWay(jobId, job.dealKey);
        job.status = JobStatus.Cancelled;
        emit JobCancelled(jobId);
        token.safeTransfer(job.refundTo, job.deposit);
    }

    /// Whether the job has no bound deal that could still pay out: none was bound, the
    /// operator never agreed to it by `agreeBy`, or it ended without accepted results.
    function _boundDealIsOver(Job storage job) private view returns (bool) {
        bytes32 key = job.dealKey;
        if (key == bytes32(0)) return true;
        Agreement memory a = dealStorage.agreement(key);
        if (!a.jobCreatorAgreed) return block.timestamp > job.agreeBy;
        // Every state from MediationRejected on is terminal without accepted results.
        return a.state >= DealState.MediationRejected;
    }

    /// Calls the client back with CALLBACK_GAS if it is a contract (an account without code
    /// cannot answer). A revert is logged with at most MAX_REVERT_DATA bytes of its data; the
    /// data is never copied whole, so a huge revert payload costs the caller nothing extra.
    /// Reverts if the callback could not get its CALLBACK_GAS (a call forwards at most 63/64
    /// of the gas left, EIP-150).
    function _callBack(uint256 jobId, address client, bytes memory data) private {
        if (client.code.length == 0) return;
        uint256 needed = CALLBACK_GAS + CALLBACK_GAS / 63 + 10_000;
        if (gasleft() < needed) revert NotEnoughGasForCallback(gasleft(), needed);
        bool ok;
        bytes memory reason;
        uint256 gasLimit = CALLBACK_GAS;
        uint256 maxCopy = MAX_REVERT_DATA;
        assembly ("memory-safe") {
            ok := call(gasLimit, client, 0, add(data, 32), mload(data), 0, 0)
            if iszero(ok) {
                let size := returndatasize()
                if gt(size, maxCopy) { size := maxCopy }
                reason := mload(0x40)
                mstore(reason, size)
                returndatacopy(add(reason, 32), 0, size)
                mstore(0x40, add(add(reason, 32), and(add(size, 31), not(31))))
            }
        }
        if (!ok) emit ClientCallbackFailed(jobId, reason);
    }

    function _pending(uint256 jobId) private view returns (Job storage job) {
        job = _jobs[jobId];
        if (job.status != JobStatus.Pending) revert NotPending(jobId, job.status);
    }

    function _setOperator(address operator_) private {
        if (operator_ == address(0)) revert InvalidSetting();
        operator = operator_;
        emit OperatorChanged(operator_);
    }

    function _setRequiredDeposit(uint256 deposit) private {
        requiredDeposit = deposit;
        emit RequiredDepositChanged(deposit);
    }

    function _setRequestTimeout(uint256 timeout) private {
        if (timeout == 0 || timeout > type(uint32).max) revert InvalidSetting();
        requestTimeout = timeout;
        emit RequestTimeoutChanged(timeout);
    }
}
