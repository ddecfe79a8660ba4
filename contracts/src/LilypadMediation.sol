// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Controlled} from "./Controlled.sol";
import {DealTerms, dealKeyOf} from "./Types.sol";

/// What the Controller offers the mediation contract: settling a disputed deal.
interface IMediationSettlement {
    function mediationAcceptResult(bytes32 dealId, DealTerms calldata terms, address mediator) external;
    function mediationRejectResult(bytes32 dealId, DealTerms calldata terms, address mediator) external;
}

/// @title LilypadMediation
/// @notice Announces disputes to the deal's mediator and is the only path through which that
/// mediator settles the deal.
/// @dev The mediator is part of the deal's terms: the solver draws it at random from the
/// mediators both parties trust, and both parties see it before they agree. Nothing is
/// drawn on chain, so neither party can choose the mediator by choosing the block in which
/// it disputes (a draw from `block.prevrandao` at dispute time let a contract job creator
/// dispute only in blocks where the pick was its accomplice). The mediator calls this
/// contract (`msg.sender` must be the terms' mediator), which calls the Controller; the
/// Controller checks that the deal is disputed and accepts settlement calls only from here.
contract LilypadMediation is Controlled {
    event MediationRequested(bytes32 indexed dealKey, address indexed mediator);

    /// `caller` is not the deal's mediator.
    error NotMediator(bytes32 dealKey, address caller);

    constructor(address controller_) Controlled(controller_) {}

    /// Tells the deal's mediator that the job creator disputed the results.
    function request(bytes32 dealKey, address mediator) external onlyController {
        emit MediationRequested(dealKey, mediator);
    }

    /// The deal's mediator re-ran the job and agrees with the RP's results.
    function mediationAcceptResult(bytes32 dealId, DealTerms calldata terms) external {
        _onlyMediator(dealId, terms);
        IMediationSettlement(controller).mediationAcceptResult(dealId, terms, msg.sender);
    }

    /// The deal's mediator re-ran the job and disagrees with the RP's results.
    function mediationRejectResult(bytes32 dealId, DealTerms calldata terms) external {
        _onlyMediator(dealId, terms);
        IMediationSettlement(controller).mediationRejectResult(dealId, terms, msg.sender);
    }

    function _onlyMediator(bytes32 dealId, DealTerms calldata terms) private view {
        if (msg.sender != terms.members.mediator) revert NotMediator(dealKeyOf(dealId, terms), msg.sender);
    }
}
