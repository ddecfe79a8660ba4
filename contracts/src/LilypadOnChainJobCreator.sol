// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {DealState} from "./Types.sol";
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
/// If the operator never answers, the client or refund address can cancel after
/// `requestTimeout` and take the deposit back, so nothing is stranded. A success report is
/// checked against Storage: the deal must have ended in ResultsAccepted or
/// MediationAccepted with exactly that results CID, and may complete only one request.
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
        address refundTo;
        uint256 deposit;
        uint40 createdAt;
        JobStatus status;
        bytes32 dealKey;
        bytes32 resultsId;
    }

    IERC20 public immutable token;
    LilypadStorage public immutable dealStorage;
    /// The `lilypad jc` account that runs requested jobs.
    address public operator;
    /// What a request costs, in token wei.
    uint256 public requiredDeposit;
    /// Seconds after which an unanswered request may be cancelled.
    uint256 public requestTimeout;
    /// The id the next request gets (ids start at 1).
    uint256 public nextJobId = 1;

    /// Gas each client callback gets. A report that cannot leave this much for the callback
    /// reverts: otherwise a report sent with an estimated gas limit could succeed while the
    /// callback ran out of gas inside try/catch, and the client would never hear back.
    uint256 public constant CALLBACK_GAS = 300_000;

    mapping(uint256 jobId => Job) private _jobs;
    /// The job each deal completed, so one deal cannot be reported for two requests.
    mapping(bytes32 dealKey => uint256 jobId) public jobOfDeal;

    event JobAdded(
        uint256 indexed jobId, address indexed client, address refundTo, string module, string[] inputs, uint256 deposit
    );
    event JobCompleted(uint256 indexed jobId, bytes32 dealKey, bytes32 resultsId);
    event JobFailed(uint256 indexed jobId, string reason);
    event JobCancelled(uint256 indexed jobId);
    /// The client's callback reverted; the job's outcome stands regardless.
    event ClientCallbackFailed(uint256 indexed jobId, bytes reason);
    event OperatorChanged(address indexed operator);
    event RequiredDepositChanged(uint256 deposit);
    event RequestTimeoutChanged(uint256 timeout);

    error NotOperator(address caller);
    error NotPending(uint256 jobId, JobStatus status);
    error DealNotSettled(bytes32 dealKey, DealState state);
    error ResultsMismatch(bytes32 dealKey, bytes32 onChain, bytes32 reported);
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
            refundTo: refundTo,
            deposit: deposit,
            createdAt: uint40(block.timestamp),
            status: JobStatus.Pending,
            dealKey: bytes32(0),
            resultsId: bytes32(0)
        });
        emit JobAdded(jobId, msg.sender, refundTo, module, inputs, deposit);
        token.safeTransferFrom(msg.sender, address(this), deposit);
    }

    /// The operator reports that deal `dealKey` ran the job and its results were accepted.
    /// The deposit pays the operator, and the client is called back.
    function completeJob(uint256 jobId, bytes32 dealKey, bytes32 resultsId) external onlyOperator nonReentrant {
        Job storage job = _pending(jobId);
        DealState state = dealStorage.stateOf(dealKey);
        if (state != DealState.ResultsAccepted && state != DealState.MediationAccepted) {
            revert DealNotSettled(dealKey, state);
        }
        bytes32 onChain = dealStorage.resultsIdOf(dealKey);
        if (onChain != resultsId) revert ResultsMismatch(dealKey, onChain, resultsId);
        if (jobOfDeal[dealKey] != 0) revert DealAlreadyUsed(dealKey, jobOfDeal[dealKey]);
        jobOfDeal[dealKey] = jobId;
        job.status = JobStatus.Completed;
        job.dealKey = dealKey;
        job.resultsId = resultsId;
        emit JobCompleted(jobId, dealKey, resultsId);
        token.safeTransfer(msg.sender, job.deposit);
        if (!_canCallBack(job.client)) return;
        try ILilypadJobClient(job.client).submitResults{gas: CALLBACK_GAS}(jobId, dealKey, resultsId) {}
        catch (bytes memory reason) {
            emit ClientCallbackFailed(jobId, reason);
        }
    }

    /// The operator could not run the job: the deposit is refunded and the client told why.
    function failJob(uint256 jobId, string calldata reason) external onlyOperator nonReentrant {
        Job storage job = _pending(jobId);
        job.status = JobStatus.Failed;
        emit JobFailed(jobId, reason);
        token.safeTransfer(job.refundTo, job.deposit);
        if (!_canCallBack(job.client)) return;
        try ILilypadJobClient(job.client).jobFailed{gas: CALLBACK_GAS}(jobId, reason) {}
        catch (bytes memory revertReason) {
            emit ClientCallbackFailed(jobId, revertReason);
        }
    }

    /// The requester takes its deposit back from a request nobody answered in time.
    function cancelJob(uint256 jobId) external nonReentrant {
        Job storage job = _pending(jobId);
        if (msg.sender != job.client && msg.sender != job.refundTo) revert NotRequester(jobId, msg.sender);
        uint256 cancellableAt = uint256(job.createdAt) + requestTimeout;
        if (block.timestamp <= cancellableAt) revert TooEarlyToCancel(jobId, cancellableAt);
        job.status = JobStatus.Cancelled;
        emit JobCancelled(jobId);
        token.safeTransfer(job.refundTo, job.deposit);
    }

    /// Whether `client` can be called back: a contract (an account without code cannot
    /// answer, and calling it would revert outside the try). Reverts if the callback could not
    /// get its CALLBACK_GAS (a call forwards at most 63/64 of the gas left, EIP-150).
    function _canCallBack(address client) private view returns (bool) {
        if (client.code.length == 0) return false;
        uint256 needed = CALLBACK_GAS + CALLBACK_GAS / 63 + 10_000;
        if (gasleft() < needed) revert NotEnoughGasForCallback(gasleft(), needed);
        return true;
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
        if (timeout == 0 || timeout > type(uint64).max) revert InvalidSetting();
        requestTimeout = timeout;
        emit RequestTimeoutChanged(timeout);
    }
}
