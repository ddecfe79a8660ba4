// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Controlled} from "./Controlled.sol";
import {Agreement, DealState} from "./Types.sol";

/// @title LilypadStorage
/// @notice Deals, agreements, results and the deal state machine.
/// @dev Storage knows *which* transitions exist; the Controller decides *who* may make one
/// and *when*, and moves the money. Each transition target has exactly one source state,
/// so `advance(to)` needs no `from`.
///
/// Records are keyed by `dealKey = keccak256(abi.encode(dealId, terms))` (computed by the
/// Controller): the key itself commits to the terms, so a deal costs one packed slot plus
/// one for its results CID, and a call with other terms simply finds no deal. Terms are
/// never stored; they travel in calldata and in the parties' own records.
contract LilypadStorage is Controlled {
    mapping(bytes32 dealKey => Agreement) private _agreements;
    mapping(bytes32 dealKey => bytes32 resultsId) private _resultsIds;

    /// A party agreed. The first agreement creates the deal; `dealId` is the off-chain deal
    /// id (digest of its CID) the key was derived from.
    event DealAgreement(bytes32 indexed dealKey, bytes32 indexed dealId, bool resourceProvider);
    /// The deal entered `state`. Emitted for every transition out of DealNegotiating.
    event DealStateChange(bytes32 indexed dealKey, DealState state);

    /// The deal is in `actual`, but this step needs `expected`.
    error WrongState(bytes32 dealKey, DealState actual, DealState expected);
    /// This party has already agreed to the deal.
    error AlreadyAgreed(bytes32 dealKey);
    /// No party has agreed to a deal with this key (wrong id or different terms).
    error UnknownDeal(bytes32 dealKey);
    /// `to` is not reached through `advance` (use recordAgreement/recordResult).
    error NotAdvanceable(DealState to);

    constructor(address controller_) Controlled(controller_) {}

    /// The deal's record (all zero if no party agreed yet).
    function agreement(bytes32 dealKey) external view returns (Agreement memory) {
        return _agreements[dealKey];
    }

    /// The deal's state (DealNegotiating if it does not exist).
    function stateOf(bytes32 dealKey) external view returns (DealState) {
        return _agreements[dealKey].state;
    }

    /// The results CID digest the RP committed (zero before addResult).
    function resultsIdOf(bytes32 dealKey) external view returns (bytes32) {
        return _resultsIds[dealKey];
    }

    /// Whether a party has agreed to the deal, i.e. whether it exists.
    function exists(bytes32 dealKey) public view returns (bool) {
        Agreement memory a = _agreements[dealKey];
        return a.resourceProviderAgreed || a.jobCreatorAgreed;
    }

    /// Records one party's agreement; creates the deal on the first one, moves it to
    /// DealAgreed on the second. Returns the record as it was before.
    function recordAgreement(bytes32 dealKey, bytes32 dealId, bool byResourceProvider)
        external
        onlyController
        returns (Agreement memory before)
    {
        before = _agreements[dealKey];
        if (before.state != DealState.DealNegotiating) {
            revert WrongState(dealKey, before.state, DealState.DealNegotiating);
        }
        if (byResourceProvider ? before.resourceProviderAgreed : before.jobCreatorAgreed) {
            revert AlreadyAgreed(dealKey);
        }
        bool bothAgreed = byResourceProvider ? before.jobCreatorAgreed : before.resourceProviderAgreed;
        _agreements[dealKey] = Agreement({
            state: bothAgreed ? DealState.DealAgreed : DealState.DealNegotiating,
            resourceProviderAgreed: before.resourceProviderAgreed || byResourceProvider,
            jobCreatorAgreed: before.jobCreatorAgreed || !byResourceProvider,
            stateSince: uint40(block.timestamp),
            instructionCount: 0
        });
        emit DealAgreement(dealKey, dealId, byResourceProvider);
        if (bothAgreed) emit DealStateChange(dealKey, DealState.DealAgreed);
    }

    /// Stores the RP's results and moves DealAgreed -> ResultsSubmitted.
    function recordResult(bytes32 dealKey, bytes32 resultsId, uint64 instructionCount)
        external
        onlyController
        returns (Agreement memory before)
    {
        before = _load(dealKey, DealState.DealAgreed);
        _store(dealKey, before, DealState.ResultsSubmitted, instructionCount);
        _resultsIds[dealKey] = resultsId;
    }

    /// Moves the deal to `to` from the one state that leads there.
    function advance(bytes32 dealKey, DealState to) external onlyController returns (Agreement memory before) {
        before = _load(dealKey, sourceOf(to));
        _store(dealKey, before, to, before.instructionCount);
    }

    /// The only state from which `to` can be reached with `advance`.
    function sourceOf(DealState to) public pure returns (DealState) {
        if (to == DealState.ResultsAccepted || to == DealState.ResultsChecked || to == DealState.TimeoutJudgeResults) {
            return DealState.ResultsSubmitted;
        }
        if (
            to == DealState.MediationAccepted || to == DealState.MediationRejected
                || to == DealState.TimeoutMediateResults
        ) {
            return DealState.ResultsChecked;
        }
        if (to == DealState.TimeoutAgree) return DealState.DealNegotiating;
        if (to == DealState.TimeoutSubmitResults) return DealState.DealAgreed;
        revert NotAdvanceable(to);
    }

    function _load(bytes32 dealKey, DealState from) private view returns (Agreement memory a) {
        a = _agreements[dealKey];
        if (!a.resourceProviderAgreed && !a.jobCreatorAgreed) revert UnknownDeal(dealKey);
        if (a.state != from) revert WrongState(dealKey, a.state, from);
    }

    function _store(bytes32 dealKey, Agreement memory before, DealState to, uint64 instructionCount) private {
        _agreements[dealKey] = Agreement({
            state: to,
            resourceProviderAgreed: before.resourceProviderAgreed,
            jobCreatorAgreed: before.jobCreatorAgreed,
            stateSince: uint40(block.timestamp),
            instructionCount: instructionCount
        });
        emit DealStateChange(dealKey, to);
    }
}
