// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// Types shared by every Lilypad contract and by the off-chain node.
///
/// The numbers of `DealState` are the protocol's: the Rust node uses the same
/// numbers, so never reorder or insert; append only.

/// Where a deal is in its life. Terminal states: 3, 5, 6, 7, 8, 9, 10.
enum DealState {
    DealNegotiating, //       0: at most one party has agreed
    DealAgreed, //            1: both agreed, escrow funded, the RP runs the job
    ResultsSubmitted, //      2: the RP committed a results CID
    ResultsAccepted, //       3: the JC accepted; everyone paid
    ResultsChecked, //        4: the JC disputed; a mediator was picked
    MediationAccepted, //     5: the mediator agreed with the RP
    MediationRejected, //     6: the mediator disagreed; the RP's collateral was slashed
    TimeoutAgree, //          7: the second party never agreed
    TimeoutSubmitResults, //  8: the RP never submitted results
    TimeoutJudgeResults, //   9: the JC never accepted nor disputed
    TimeoutMediateResults // 10: the mediator never decided
}

/// Who takes part in a deal.
struct DealMembers {
    address solver;
    address jobCreator;
    address resourceProvider;
    /// Who re-runs the job if the JC disputes: drawn by the solver, at random, from the
    /// mediators both parties trust, before either party agrees. Fixed by the terms, so
    /// neither party can pick it by choosing when to dispute.
    address mediator;
}

/// How long a party has for one step (seconds) and what it stakes on meeting it (token wei).
struct DealTimeout {
    uint256 timeout;
    uint256 collateral;
}

/// The four deadlines of a deal. Only `submitResults.collateral` (paid by the RP, and
/// never zero: it stays staked until the results are judged, so results a mediator
/// rejects always cost the RP something) and `judgeResults.collateral` (paid by the JC)
/// are used; the other two collaterals must be zero.
struct DealTimeouts {
    DealTimeout agree;
    DealTimeout submitResults;
    DealTimeout judgeResults;
    DealTimeout mediateResults;
}

/// What the job costs and what each side stakes, in token wei (the multiple is a plain number).
struct DealPricing {
    uint256 instructionPrice;
    uint256 paymentCollateral;
    uint256 resultsCollateralMultiple;
    uint256 mediationFee;
}

/// Everything both parties sign up to. The terms are not stored on chain: a deal's record
/// is keyed by `dealKey = keccak256(abi.encode(dealId, terms))`, so every call passes the
/// terms again and can only reach the record the parties agreed to.
struct DealTerms {
    DealMembers members;
    DealTimeouts timeouts;
    DealPricing pricing;
}

/// The on-chain record of a deal, packed into one storage slot. It exists once a party
/// has agreed.
struct Agreement {
    DealState state;
    bool resourceProviderAgreed;
    bool jobCreatorAgreed;
    /// When the current state began. While negotiating: when the first party agreed.
    uint40 stateSince;
    /// Set by addResult.
    uint64 instructionCount;
}

/// The key a deal's on-chain record lives under: it binds the off-chain deal id (the
/// sha2-256 digest of the deal's CID) to the exact terms both parties agreed to.
function dealKeyOf(bytes32 dealId, DealTerms calldata terms) pure returns (bytes32) {
    return keccak256(abi.encode(dealId, terms));
}
