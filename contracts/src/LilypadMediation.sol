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
/// @notice Picks one of a disputed deal's mediators and is the only path through which
/// that mediator settles the deal.
/// @dev The pick hashes `block.prevrandao` with the deal id: good enough that neither party
/// chooses the mediator (both already trust every mediator on the list), not a source of
/// unbiasable randomness — a block proposer could influence it.
/// The mediator calls this contract (`msg.sender` must be the picked mediator), which
/// calls the Controller; the Controller accepts settlement calls only from here.
contract LilypadMediation is Controlled {
    /// The mediator picked for each disputed deal, by deal key.
    mapping(bytes32 dealKey => address mediator) public mediatorOf;

    event MediationRequested(bytes32 indexed dealKey, address indexed mediator);

    /// `caller` is not the mediator picked for the deal (or none was picked).
    error NotMediator(bytes32 dealKey, address caller);
    /// The deal lists no mediator.
    error NoMediators(bytes32 dealKey);

    constructor(address controller_) Controlled(controller_) {}

    /// Picks and records a mediator for the deal among `mediators`.
    function request(bytes32 dealKey, address[] calldata mediators) external onlyController returns (address mediator) {
        if (mediators.length == 0) revert NoMediators(dealKey);
        uint256 pick = uint256(keccak256(abi.encode(block.prevrandao, dealKey))) % mediators.length;
        mediator = mediators[pick];
        mediatorOf[dealKey] = mediator;
        emit MediationRequested(dealKey, mediator);
    }

    /// The picked mediator re-ran the job and agrees with the RP's results.
    function mediationAcceptResult(bytes32 dealId, DealTerms calldata terms) external {
        _onlyPickedMediator(dealKeyOf(dealId, terms));
        IMediationSettlement(controller).mediationAcceptResult(dealId, terms, msg.sender);
    }

    /// The picked mediator re-ran the job and disagrees with the RP's results.
    function mediationRejectResult(bytes32 dealId, DealTerms calldata terms) external {
        _onlyPickedMediator(dealKeyOf(dealId, terms));
        IMediationSettlement(controller).mediationRejectResult(dealId, terms, msg.sender);
    }

    function _onlyPickedMediator(bytes32 dealKey) private view {
        address mediator = mediatorOf[dealKey];
        if (mediator == address(0) || mediator != msg.sender) revert NotMediator(dealKey, msg.sender);
    }
}
