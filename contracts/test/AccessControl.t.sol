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
        address picked = terms.members.mediator;
        // Even the picked mediator cannot call the Controller directly.
        vm.prank(picked);
        vm.expectRevert(abi.encodeWithSelector(LilypadController.NotMediation.selector, picked));
        controller.mediationAcceptResult(DEAL, terms, picked);
        vm.prank(picked);
        vm.expectRevert(abi.encodeWithSelector(LilypadController.NotMediation.selector, picked));
        controller.mediationRejectResult(DEAL, terms, picked);
    }

    function test_mediationOutcomes_onlyByTheDealsMediator() public {
        DealTerms memory terms = _dealIn(DEAL, DealState.ResultsChecked);
        bytes32 key = _key(DEAL, terms);
        address[4] memory refused = [mediator2, jc, rp, stranger];
        for (uint256 i; i < refused.length; ++i) {
            vm.prank(refused[i]);
            vm.expectRevert(abi.encodeWithSelector(LilypadMediation.NotMediator.selector, key, refused[i]));
            mediation.mediationAcceptResult(DEAL, terms);
            vm.prank(refused[i]);
            vm.expectRevert(abi.encodeWithSelector(LilypadMediation.NotMediator.selector, key, refused[i]));
            mediation.mediationRejectResult(DEAL, terms);
        }
        vm.prank(terms.members.mediator);
        mediation.mediationAcceptResult(DEAL, terms);
        _assertState(DEAL, terms, DealState.MediationAccepted);
    }

    function test_mediation_notBeforeADispute() public {
        DealTerms memory terms = _dealIn(DEAL, DealState.ResultsSubmitted);
        bytes32 key = _key(DEAL, terms);
        vm.prank(mediator1);
        vm.expectRevert(
            abi.encodeWithSelector(
                LilypadStorage.WrongState.selector, key, DealState.ResultsSubmitted, DealState.ResultsChecked
            )
        );
        mediation.mediationAcceptResult(DEAL, terms);
    }

    /// Anyone may end a deal whose deadline passed; the payouts go to the deal's members
    /// whoever calls (MoneyFlows checks the amounts), so nobody gains by calling.
    function test_timeouts_anyoneOnceDue_paysTheMembersNotTheCaller() public {
        DealState[4] memory states =
            [DealState.DealNegotiating, DealState.DealAgreed, DealState.ResultsSubmitted, DealState.ResultsChecked];
        uint256[4] memory waits = [AGREE_TIMEOUT, SUBMIT_TIMEOUT, JUDGE_TIMEOUT, MEDIATE_TIMEOUT];
        bytes4[4] memory timeouts = [
            controller.timeoutAgree.selector,
            controller.timeoutSubmitResults.selector,
            controller.timeoutJudgeResults.selector,
            controller.timeoutMediateResults.selector
        ];
        DealState[4] memory ends = [
            DealState.TimeoutAgree,
            DealState.TimeoutSubmitResults,
            DealState.TimeoutJudgeResults,
            DealState.TimeoutMediateResults
        ];
        for (uint256 i; i < states.length; ++i) {
            bytes32 dealId = keccak256(abi.encode("anyone", i));
            DealTerms memory terms = _dealIn(dealId, states[i]);
            vm.warp(block.timestamp + waits[i] + 1);
            uint256 strangerBefore = token.balanceOf(stranger);
            vm.prank(stranger);
            (bool ok,) = address(controller).call(abi.encodeWithSelector(timeouts[i], dealId, terms));
            cheats.assertTrue(ok, "a stranger ends a deal whose deadline passed");
            _assertState(dealId, terms, ends[i]);
            cheats.assertEq(token.balanceOf(stranger), strangerBefore, "the caller gains nothing");
        }
        cheats.assertEq(token.balanceOf(address(payments)), 0, "every deal's escrow paid out");
    }

    function test_timeouts_nobodyBeforeTheDeadline() public {
        DealTerms memory terms = _dealIn(DEAL, DealState.ResultsSubmitted);
        uint256 deadline = block.timestamp + JUDGE_TIMEOUT;
        vm.warp(deadline);
        address[3] memory callers = [rp, jc, stranger];
        for (uint256 i; i < callers.length; ++i) {
            vm.prank(callers[i]);
            vm.expectRevert(abi.encodeWithSelector(LilypadController.DeadlineNotReached.selector, DEAL, deadline));
            controller.timeoutJudgeResults(DEAL, terms);
        }
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
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(Controlled.NotController.selector, stranger));
        mediation.request(DEAL, stranger);
    }

    // ---------------------------------------------------------------- On-chain job creator

    function test_jobCreatorOperatorAndOwnerFunctions() public {
        vm.startPrank(stranger);
        vm.expectRevert(abi.encodeWithSelector(LilypadOnChainJobCreator.NotOperator.selector, stranger));
        jobCreator.completeJob(1);
        vm.expectRevert(abi.encodeWithSelector(LilypadOnChainJobCreator.NotOperator.selector, stranger));
        jobCreator.failJob(1, "no");
        vm.expectRevert(abi.encodeWithSelector(LilypadOnChainJobCreator.NotOperator.selector, stranger));
        jobCreator.startJob(1, DEAL, _terms());
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
