// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {Agreement, DealState, DealTerms, dealKeyOf} from "./Types.sol";
import {LilypadStorage} from "./LilypadStorage.sol";
import {LilypadPayments} from "./LilypadPayments.sol";
import {LilypadMediation, IMediationSettlement} from "./LilypadMediation.sol";

/// @title LilypadController
/// @notice The entry point of the protocol: every step of a deal goes through here.
/// @dev Identity is `msg.sender`. Each function checks who may call it and when, moves the
/// deal one step in Storage (which checks the state of the record under
/// `dealKeyOf(dealId, terms)`, so only the terms agreed to reach it), then moves the money
/// through Payments exactly as the money table (README.md) says. State is written before
/// any token moves, and every mutator is `nonReentrant`, so a hostile token cannot replay
/// a step.
///
/// Deadlines: a step is allowed while `block.timestamp <= since + timeout`; the matching
/// timeout only once `block.timestamp > since + timeout`, so the two never overlap. `since`
/// is when the deal entered its current state (while negotiating: the first agreement).
/// Anyone may call a timeout once it is due: its payouts go to the deal's members whoever
/// calls, so no deal can stay open (and no escrow locked) because the party a timeout
/// favours never calls it.
contract LilypadController is ReentrancyGuardTransient, IMediationSettlement {
    /// Amounts above this are refused, so no sum or product in the money table can overflow.
    uint256 public constant MAX_AMOUNT = type(uint128).max;
    /// Multiples and timeouts above this are refused, for the same reason.
    uint256 public constant MAX_FACTOR = type(uint64).max;

    LilypadStorage public immutable dealStorage;
    LilypadPayments public immutable payments;
    LilypadMediation public immutable mediation;
    /// Where the solver publishes its URL (for discovery only; the Controller never calls it).
    address public immutable users;
    /// The on-chain job creator (for discovery only).
    address public immutable jobCreator;

    /// `caller` is neither the deal's job creator nor its resource provider.
    error NotAParty(bytes32 dealId, address caller);
    /// `caller` is a party, but not the one this step belongs to.
    error NotEntitled(bytes32 dealId, address caller);
    /// Only the mediation contract settles disputes.
    error NotMediation(address caller);
    /// The step's deadline has passed; the counterparty may now call the timeout.
    error DeadlinePassed(bytes32 dealId, uint256 deadline);
    /// The timeout cannot be called before its deadline.
    error DeadlineNotReached(bytes32 dealId, uint256 deadline);
    /// A member address is zero, or the job creator is also the resource provider,
    /// or the mediator is one of the parties.
    error InvalidMembers();
    /// The agree and mediate-results collaterals are unused and must be zero; the
    /// submit-results collateral must not be (results must always stake something).
    error UnsupportedCollateral();
    /// A timeout is zero or longer than MAX_FACTOR seconds.
    error InvalidTimeout();
    /// An amount exceeds MAX_AMOUNT or the multiple exceeds MAX_FACTOR.
    error AmountTooLarge();
    /// The results CID digest is zero.
    error EmptyResults(bytes32 dealId);
    /// price x instructions exceeds the payment collateral the job creator escrowed.
    error CostExceedsPaymentCollateral(bytes32 dealId, uint256 cost, uint256 paymentCollateral);
    /// A part was deployed for another controller.
    error MiswiredPart(address part);

    constructor(
        LilypadStorage dealStorage_,
        LilypadPayments payments_,
        LilypadMediation mediation_,
        address users_,
        address jobCreator_
    ) {
        if (dealStorage_.controller() != address(this)) revert MiswiredPart(address(dealStorage_));
        if (payments_.controller() != address(this)) revert MiswiredPart(address(payments_));
        if (mediation_.controller() != address(this)) revert MiswiredPart(address(mediation_));
        dealStorage = dealStorage_;
        payments = payments_;
        mediation = mediation_;
        users = users_;
        jobCreator = jobCreator_;
    }

    // ----------------------------------------------------------------------------------
    // Views
    // ----------------------------------------------------------------------------------

    /// The ERC-20 deals are paid in.
    function token() external view returns (IERC20) {
        return payments.token();
    }

    /// The key of the on-chain record of deal `dealId` under `terms`.
    function dealKey(bytes32 dealId, DealTerms calldata terms) external pure returns (bytes32) {
        return dealKeyOf(dealId, terms);
    }

    // ----------------------------------------------------------------------------------
    // The happy path
    // ----------------------------------------------------------------------------------

    /// The caller (the deal's RP or JC) agrees to `terms` and escrows its deposit:
    /// the RP its submit-results collateral, the JC payment collateral + judge-results collateral.
    function agree(bytes32 dealId, DealTerms calldata terms) external nonReentrant {
        _validate(terms);
        bool byResourceProvider = msg.sender == terms.members.resourceProvider;
        if (!byResourceProvider && msg.sender != terms.members.jobCreator) revert NotAParty(dealId, msg.sender);
        Agreement memory before = dealStorage.recordAgreement(dealKeyOf(dealId, terms), dealId, byResourceProvider);
        if (before.resourceProviderAgreed || before.jobCreatorAgreed) {
            // The other party agreed first: this agreement must come within its window.
            _requireBeforeDeadline(dealId, before.stateSince, terms.timeouts.agree.timeout);
        }
        uint256 deposit = byResourceProvider
            ? terms.timeouts.submitResults.collateral
            : terms.pricing.paymentCollateral + terms.timeouts.judgeResults.collateral;
        payments.exchange(msg.sender, deposit, 0);
    }

    /// The RP commits its results and stakes the results collateral
    /// (multiple x price x instructions). Its submit-results collateral stays staked until
    /// the results are judged, so results a mediator rejects always cost the RP something,
    /// even when it claims no instructions at all.
    function addResult(bytes32 dealId, DealTerms calldata terms, bytes32 resultsId, uint64 instructionCount)
        external
        nonReentrant
    {
        _onlyResourceProvider(dealId, terms);
        if (resultsId == bytes32(0)) revert EmptyResults(dealId);
        uint256 cost = _cost(dealId, terms, instructionCount);
        Agreement memory before = dealStorage.recordResult(dealKeyOf(dealId, terms), resultsId, instructionCount);
        _requireBeforeDeadline(dealId, before.stateSince, terms.timeouts.submitResults.timeout);
        payments.exchange(msg.sender, cost * terms.pricing.resultsCollateralMultiple, 0);
    }

    /// The JC accepts the results: the RP is paid and everyone's collateral comes back.
    function acceptResult(bytes32 dealId, DealTerms calldata terms) external nonReentrant {
        _onlyJobCreator(dealId, terms);
        (, Agreement memory before) = _advance(dealId, terms, DealState.ResultsAccepted);
        _requireBeforeDeadline(dealId, before.stateSince, terms.timeouts.judgeResults.timeout);
        _payForTheJob(terms, before.instructionCount, terms.timeouts.judgeResults.collateral);
    }

    /// The JC disputes the results: its judge-results collateral comes back, it pays the
    /// mediation fee, and the deal's mediator (fixed by the terms) is asked to re-run the job.
    function checkResult(bytes32 dealId, DealTerms calldata terms) external nonReentrant {
        _onlyJobCreator(dealId, terms);
        (bytes32 key, Agreement memory before) = _advance(dealId, terms, DealState.ResultsChecked);
        _requireBeforeDeadline(dealId, before.stateSince, terms.timeouts.judgeResults.timeout);
        payments.exchange(msg.sender, terms.pricing.mediationFee, terms.timeouts.judgeResults.collateral);
        mediation.request(key, terms.members.mediator);
    }

    // ----------------------------------------------------------------------------------
    // Mediation (called by the mediation contract on behalf of the deal's mediator)
    // ----------------------------------------------------------------------------------

    /// The mediator agrees with the RP: the RP is paid as on accept, the mediator gets the fee.
    function mediationAcceptResult(bytes32 dealId, DealTerms calldata terms, address mediator) external nonReentrant {
        if (msg.sender != address(mediation)) revert NotMediation(msg.sender);
        (, Agreement memory before) = _advance(dealId, terms, DealState.MediationAccepted);
        _requireBeforeDeadline(dealId, before.stateSince, terms.timeouts.mediateResults.timeout);
        _payForTheJob(terms, before.instructionCount, 0);
        payments.pay(mediator, terms.pricing.mediationFee);
    }

    /// The mediator disagrees with the RP: the JC gets its payment collateral back, the
    /// mediator gets the fee, the RP's results and submit-results collaterals go to the
    /// treasury.
    function mediationRejectResult(bytes32 dealId, DealTerms calldata terms, address mediator) external nonReentrant {
        if (msg.sender != address(mediation)) revert NotMediation(msg.sender);
        (bytes32 key, Agreement memory before) = _advance(dealId, terms, DealState.MediationRejected);
        _requireBeforeDeadline(dealId, before.stateSince, terms.timeouts.mediateResults.timeout);
        (, uint256 resultsCollateral) = _costs(terms, before.instructionCount);
        payments.payBoth(
            terms.members.jobCreator, terms.pricing.paymentCollateral, mediator, terms.pricing.mediationFee
        );
        payments.slash(key, terms.members.resourceProvider, resultsCollateral + terms.timeouts.submitResults.collateral);
    }

    // ----------------------------------------------------------------------------------
    // Timeouts
    // ----------------------------------------------------------------------------------

    // Each timeout may be called by anyone once due; what it pays goes to the deal's members.

    /// The second party never agreed: the party that did gets back exactly what it paid in.
    function timeoutAgree(bytes32 dealId, DealTerms calldata terms) external nonReentrant {
        (, Agreement memory before) = _advance(dealId, terms, DealState.TimeoutAgree);
        _requireAfterDeadline(dealId, before.stateSince, terms.timeouts.agree.timeout);
        if (before.resourceProviderAgreed) {
            payments.pay(terms.members.resourceProvider, terms.timeouts.submitResults.collateral);
        } else {
            payments.pay(
                terms.members.jobCreator, terms.pricing.paymentCollateral + terms.timeouts.judgeResults.collateral
            );
        }
    }

    /// The RP never submitted results: the JC gets its deposits back, the RP's
    /// submit-results collateral goes to the treasury.
    function timeoutSubmitResults(bytes32 dealId, DealTerms calldata terms) external nonReentrant {
        (bytes32 key, Agreement memory before) = _advance(dealId, terms, DealState.TimeoutSubmitResults);
        _requireAfterDeadline(dealId, before.stateSince, terms.timeouts.submitResults.timeout);
        payments.pay(terms.members.jobCreator, terms.pricing.paymentCollateral + terms.timeouts.judgeResults.collateral);
        payments.slash(key, terms.members.resourceProvider, terms.timeouts.submitResults.collateral);
    }

    /// The JC never judged the results: the RP is paid as on accept, the JC gets the rest
    /// of its payment collateral, its judge-results collateral goes to the treasury.
    function timeoutJudgeResults(bytes32 dealId, DealTerms calldata terms) external nonReentrant {
        (bytes32 key, Agreement memory before) = _advance(dealId, terms, DealState.TimeoutJudgeResults);
        _requireAfterDeadline(dealId, before.stateSince, terms.timeouts.judgeResults.timeout);
        _payForTheJob(terms, before.instructionCount, 0);
        payments.slash(key, terms.members.jobCreator, terms.timeouts.judgeResults.collateral);
    }

    /// The mediator never decided: everyone gets back what they paid in.
    function timeoutMediateResults(bytes32 dealId, DealTerms calldata terms) external nonReentrant {
        (, Agreement memory before) = _advance(dealId, terms, DealState.TimeoutMediateResults);
        _requireAfterDeadline(dealId, before.stateSince, terms.timeouts.mediateResults.timeout);
        (, uint256 resultsCollateral) = _costs(terms, before.instructionCount);
        payments.payBoth(
            terms.members.jobCreator,
            terms.pricing.paymentCollateral + terms.pricing.mediationFee,
            terms.members.resourceProvider,
            resultsCollateral + terms.timeouts.submitResults.collateral
        );
    }

    // ----------------------------------------------------------------------------------
    // Internals
    // ----------------------------------------------------------------------------------

    function _validate(DealTerms calldata terms) private pure {
        address jc = terms.members.jobCreator;
        address rp = terms.members.resourceProvider;
        if (jc == address(0) || rp == address(0) || terms.members.solver == address(0) || jc == rp) {
            revert InvalidMembers();
        }
        address mediator = terms.members.mediator;
        if (mediator == address(0) || mediator == jc || mediator == rp) revert InvalidMembers();
        if (
            terms.timeouts.agree.collateral != 0 || terms.timeouts.mediateResults.collateral != 0
                || terms.timeouts.submitResults.collateral == 0
        ) {
            revert UnsupportedCollateral();
        }
        if (
            _badTimeout(terms.timeouts.agree.timeout) || _badTimeout(terms.timeouts.submitResults.timeout)
                || _badTimeout(terms.timeouts.judgeResults.timeout)
                || _badTimeout(terms.timeouts.mediateResults.timeout)
        ) revert InvalidTimeout();
        if (
            terms.pricing.instructionPrice > MAX_AMOUNT || terms.pricing.paymentCollateral > MAX_AMOUNT
                || terms.pricing.mediationFee > MAX_AMOUNT || terms.timeouts.submitResults.collateral > MAX_AMOUNT
                || terms.timeouts.judgeResults.collateral > MAX_AMOUNT
                || terms.pricing.resultsCollateralMultiple > MAX_FACTOR
        ) revert AmountTooLarge();
    }

    function _badTimeout(uint256 timeout) private pure returns (bool) {
        return timeout == 0 || timeout > MAX_FACTOR;
    }

    /// price x instructions, which must fit in the payment collateral. Divides instead of
    /// multiplying first so no product can overflow.
    function _cost(bytes32 dealId, DealTerms calldata terms, uint64 instructionCount) private pure returns (uint256) {
        uint256 price = terms.pricing.instructionPrice;
        uint256 paymentCollateral = terms.pricing.paymentCollateral;
        if (instructionCount != 0 && price > paymentCollateral / instructionCount) {
            revert CostExceedsPaymentCollateral(dealId, price * instructionCount, paymentCollateral);
        }
        return price * instructionCount;
    }

    /// (cost, results collateral) for a deal whose instruction count is on record.
    function _costs(DealTerms calldata terms, uint64 instructionCount)
        private
        pure
        returns (uint256 cost, uint256 resultsCollateral)
    {
        cost = terms.pricing.instructionPrice * instructionCount;
        resultsCollateral = cost * terms.pricing.resultsCollateralMultiple;
    }

    /// Moves the deal to `to` (Storage checks the state it comes from).
    function _advance(bytes32 dealId, DealTerms calldata terms, DealState to)
        private
        returns (bytes32 key, Agreement memory before)
    {
        key = dealKeyOf(dealId, terms);
        before = dealStorage.advance(key, to);
    }

    /// The job counts as done: the RP gets the cost and both its collaterals, the JC the
    /// rest of its payment collateral plus `jobCreatorExtra`.
    function _payForTheJob(DealTerms calldata terms, uint64 instructionCount, uint256 jobCreatorExtra) private {
        (uint256 cost, uint256 resultsCollateral) = _costs(terms, instructionCount);
        payments.payBoth(
            terms.members.resourceProvider,
            cost + resultsCollateral + terms.timeouts.submitResults.collateral,
            terms.members.jobCreator,
            terms.pricing.paymentCollateral - cost + jobCreatorExtra
        );
    }

    function _onlyJobCreator(bytes32 dealId, DealTerms calldata terms) private view {
        if (msg.sender != terms.members.jobCreator) revert NotEntitled(dealId, msg.sender);
    }

    function _onlyResourceProvider(bytes32 dealId, DealTerms calldata terms) private view {
        if (msg.sender != terms.members.resourceProvider) revert NotEntitled(dealId, msg.sender);
    }

    function _requireBeforeDeadline(bytes32 dealId, uint256 since, uint256 timeout) private view {
        uint256 deadline = since + timeout;
        if (block.timestamp > deadline) revert DeadlinePassed(dealId, deadline);
    }

    function _requireAfterDeadline(bytes32 dealId, uint256 since, uint256 timeout) private view {
        uint256 deadline = since + timeout;
        if (block.timestamp <= deadline) revert DeadlineNotReached(dealId, deadline);
    }
}
