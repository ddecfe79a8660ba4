// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {LilypadTest} from "./utils/LilypadTest.sol";
import {DealState, DealTerms} from "../src/Types.sol";
import {Controlled} from "../src/Controlled.sol";
import {LilypadController} from "../src/LilypadController.sol";
import {LilypadMediation} from "../src/LilypadMediation.sol";
import {LilypadOnChainJobCreator} from "../src/LilypadOnChainJobCreator.sol";
import {LilypadStorage} from "../src/LilypadStorage.sol";

/// Every mutator refuses everyone but the one account entitled to it.
contract AccessControlTest is LilypadTest {
    bytes32 internal constant DEAL = keccak256("access");

    // ---------------------------------------------------------------- Controller

    function test_agree_onlyTheDealsParties() public {
        DealTerms memory terms = _terms();
        address[3] memory outsiders = [stranger, solver, mediator1];
        for (uint256 i; i < outsiders.length; ++i) {
            vm.prank(outsiders[i]);
            vm.expectRevert(abi.encodeWithSelector(LilypadController.NotAParty.selector, DEAL, outsiders[i]));
            controller.agree(DEAL, terms);
        }
    }

    function test_addResult_onlyTheResourceProvider() public {
        DealTerms memory terms = _dealIn(DEAL, DealState.DealAgreed);
        _expectNotEntitled(jc);
        controller.addResult(DEAL, terms, RESULTS, INSTRUCTIONS);
        _expectNotEntitled(stranger);
        controller.addResult(DEAL, terms, RESULTS, INSTRUCTIONS);
    }

    function test_acceptAndCheck_onlyTheJobCreator() public {
        DealTerms memory terms = _dealIn(DEAL, DealState.ResultsSubmitted);
        _expectNotEntitled(rp);
        controller.acceptResult(DEAL, terms);
        _expectNotEntitled(stranger);
        controller.acceptResult(DEAL, terms);
        _expectNotEntitled(rp);
        controller.checkResult(DEAL, terms);
        _expectNotEntitled(mediator1);
        controller.checkResult(DEAL, terms);
    }

    function test_mediationOutcomes_onlyThroughTheMediationContract() public {
        DealTerms memory terms = _dealIn(DEAL, DealState.ResultsChecked);
        address picked = mediation.mediatorOf(_key(DEAL, terms));
        // Even the picked mediator cannot call the Controller directly.
        vm.prank(picked);
        vm.expectRevert(abi.encodeWithSelector(LilypadController.NotMediation.selector, picked));
        controller.mediationAcceptResult(DEAL, terms, picked);
        vm.prank(picked);
        vm.expectRevert(abi.encodeWithSelector(LilypadController.NotMediation.selector, picked));
        controller.mediationRejectResult(DEAL, terms, picked);
    }

    function test_mediationOutcomes_onlyByThePickedMediator() public {
        DealTerms memory terms = _dealIn(DEAL, DealState.ResultsChecked);
        bytes32 key = _key(DEAL, terms);
        address picked = mediation.mediatorOf(key);
        address other = picked == mediator1 ? mediator2 : mediator1;
        address[4] memory refused = [other, jc, rp, stranger];
        for (uint256 i; i < refused.length; ++i) {
            vm.prank(refused[i]);
            vm.expectRevert(abi.encodeWithSelector(LilypadMediation.NotMediator.selector, key, refused[i]));
            mediation.mediationAcceptResult(DEAL, terms);
            vm.prank(refused[i]);
            vm.expectRevert(abi.encodeWithSelector(LilypadMediation.NotMediator.selector, key, refused[i]));
            mediation.mediationRejectResult(DEAL, terms);
        }
        vm.prank(picked);
        mediation.mediationAcceptResult(DEAL, terms);
        _assertState(DEAL, terms, DealState.MediationAccepted);
    }

    function test_mediation_noMediatorBeforeADispute() public {
        DealTerms memory terms = _dealIn(DEAL, DealState.ResultsSubmitted);
        bytes32 key = _key(DEAL, terms);
        vm.prank(mediator1);
        vm.expectRevert(abi.encodeWithSelector(LilypadMediation.NotMediator.selector, key, mediator1));
        mediation.mediationAcceptResult(DEAL, terms);
    }

    function test_timeoutAgree_onlyThePartyThatAgreed() public {
        DealTerms memory terms = _dealIn(DEAL, DealState.DealNegotiating); // the RP agreed
        vm.warp(block.timestamp + AGREE_TIMEOUT + 1);
        _expectNotEntitled(jc);
        controller.timeoutAgree(DEAL, terms);
        _expectNotEntitled(stranger);
        controller.timeoutAgree(DEAL, terms);
        vm.prank(rp);
        controller.timeoutAgree(DEAL, terms);
    }

    function test_timeoutSubmitResults_onlyTheJobCreator() public {
        DealTerms memory terms = _dealIn(DEAL, DealState.DealAgreed);
        vm.warp(block.timestamp + SUBMIT_TIMEOUT + 1);
        _expectNotEntitled(rp);
        controller.timeoutSubmitResults(DEAL, terms);
        _expectNotEntitled(stranger);
        controller.timeoutSubmitResults(DEAL, terms);
    }

    function test_timeoutJudgeResults_onlyTheResourceProvider() public {
        DealTerms memory terms = _dealIn(DEAL, DealState.ResultsSubmitted);
        vm.warp(block.timestamp + JUDGE_TIMEOUT + 1);
        _expectNotEntitled(jc);
        controller.timeoutJudgeResults(DEAL, terms);
        _expectNotEntitled(stranger);
        controller.timeoutJudgeResults(DEAL, terms);
    }

    function test_timeoutMediateResults_eitherPartyButNobodyElse() public {
        DealTerms memory terms = _dealIn(DEAL, DealState.ResultsChecked);
        vm.warp(block.timestamp + MEDIATE_TIMEOUT + 1);
        address picked = mediation.mediatorOf(_key(DEAL, terms));
        address[3] memory outsiders = [stranger, picked, solver];
        for (uint256 i; i < outsiders.length; ++i) {
            vm.prank(outsiders[i]);
            vm.expectRevert(abi.encodeWithSelector(LilypadController.NotAParty.selector, DEAL, outsiders[i]));
            controller.timeoutMediateResults(DEAL, terms);
        }
        vm.prank(jc);
        controller.timeoutMediateResults(DEAL, terms);
        _assertState(DEAL, terms, DealState.TimeoutMediateResults);
    }

    function _expectNotEntitled(address caller) private {
        vm.prank(caller);
        vm.expectRevert(abi.encodeWithSelector(LilypadController.NotEntitled.selector, DEAL, caller));
    }

    // ---------------------------------------------------------------- Storage, Payments, Mediation

    function test_storageMutators_onlyTheController() public {
        bytes memory notController = abi.encodeWithSelector(Controlled.NotController.selector, stranger);
        vm.startPrank(stranger);
        vm.expectRevert(notController);
        dealStorage.recordAgreement(DEAL, DEAL, true);
        vm.expectRevert(notController);
        dealStorage.recordResult(DEAL, RESULTS, 1);
        vm.expectRevert(notController);
        dealStorage.advance(DEAL, DealState.ResultsAccepted);
        vm.stopPrank();
    }

    function test_paymentsMutators_onlyTheController() public {
        bytes memory notController = abi.encodeWithSelector(Controlled.NotController.selector, stranger);
        vm.startPrank(stranger);
        vm.expectRevert(notController);
        payments.exchange(jc, 1, 0);
        vm.expectRevert(notController);
        payments.pay(stranger, 1);
        vm.expectRevert(notController);
        payments.payBoth(stranger, 1, stranger, 1);
        vm.expectRevert(notController);
        payments.slash(DEAL, rp, 1);
        vm.stopPrank();
    }

    function test_paymentsTreasury_onlyTheOwner() public {
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, stranger));
        payments.setTreasury(stranger);
        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(Controlled.ZeroAddress.selector));
        payments.setTreasury(address(0));
        vm.prank(owner);
        payments.setTreasury(stranger);
        cheats.assertEq(payments.treasury(), stranger, "treasury changed by the owner");
    }

    function test_mediationRequest_onlyTheController() public {
        address[] memory mediators = new address[](1);
        mediators[0] = stranger;
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(Controlled.NotController.selector, stranger));
        mediation.request(DEAL, mediators);
    }

    // ---------------------------------------------------------------- On-chain job creator

    function test_jobCreatorOperatorAndOwnerFunctions() public {
        vm.startPrank(stranger);
        vm.expectRevert(abi.encodeWithSelector(LilypadOnChainJobCreator.NotOperator.selector, stranger));
        jobCreator.completeJob(1, DEAL, RESULTS);
        vm.expectRevert(abi.encodeWithSelector(LilypadOnChainJobCreator.NotOperator.selector, stranger));
        jobCreator.failJob(1, "no");
        bytes memory notOwner = abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, stranger);
        vm.expectRevert(notOwner);
        jobCreator.setOperator(stranger);
        vm.expectRevert(notOwner);
        jobCreator.setRequiredDeposit(1);
        vm.expectRevert(notOwner);
        jobCreator.setRequestTimeout(1);
        vm.stopPrank();
        // The operator runs jobs but does not administer the contract.
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, operator));
        jobCreator.setRequiredDeposit(0);
    }

    // ---------------------------------------------------------------- Wiring

    function test_controllerRefusesPartsBuiltForAnotherController() public {
        LilypadStorage foreign = new LilypadStorage(stranger);
        vm.expectRevert(abi.encodeWithSelector(LilypadController.MiswiredPart.selector, address(foreign)));
        new LilypadController(foreign, payments, mediation, address(users), address(jobCreator));
    }

    function test_discoveryGetters() public view {
        cheats.assertEq(address(controller.dealStorage()), address(dealStorage), "storage");
        cheats.assertEq(address(controller.payments()), address(payments), "payments");
        cheats.assertEq(address(controller.mediation()), address(mediation), "mediation");
        cheats.assertEq(controller.users(), address(users), "users");
        cheats.assertEq(controller.jobCreator(), address(jobCreator), "job creator");
        cheats.assertEq(address(controller.token()), address(token), "token");
        cheats.assertEq(payments.controller(), address(controller), "payments' controller");
    }
}
