// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {LilypadTest} from "./utils/LilypadTest.sol";
import {DealState, DealTerms} from "../src/Types.sol";
import {LilypadController} from "../src/LilypadController.sol";

/// Each timeout only after its deadline (refused before it and at it, allowed one second
/// later), and each step it guards only up to its deadline (allowed at it, refused one
/// second later), so the two never overlap.
contract DeadlinesTest is LilypadTest {
    bytes32 internal constant DEAL = keccak256("deadlines");

    // ---------------------------------------------------------------- timeouts

    function test_timeoutAgree_beforeAtAfterDeadline() public {
        DealTerms memory terms = _terms();
        vm.prank(jc);
        controller.agree(DEAL, terms);
        uint256 deadline = block.timestamp + AGREE_TIMEOUT;
        _refusedUntil(deadline, jc, abi.encodeCall(controller.timeoutAgree, (DEAL, terms)));
        _assertState(DEAL, terms, DealState.TimeoutAgree);
    }

    function test_timeoutSubmitResults_beforeAtAfterDeadline() public {
        DealTerms memory terms = _dealIn(DEAL, DealState.DealAgreed);
        uint256 deadline = block.timestamp + SUBMIT_TIMEOUT;
        _refusedUntil(deadline, jc, abi.encodeCall(controller.timeoutSubmitResults, (DEAL, terms)));
        _assertState(DEAL, terms, DealState.TimeoutSubmitResults);
    }

    function test_timeoutJudgeResults_beforeAtAfterDeadline() public {
        DealTerms memory terms = _dealIn(DEAL, DealState.ResultsSubmitted);
        uint256 deadline = block.timestamp + JUDGE_TIMEOUT;
        _refusedUntil(deadline, rp, abi.encodeCall(controller.timeoutJudgeResults, (DEAL, terms)));
        _assertState(DEAL, terms, DealState.TimeoutJudgeResults);
    }

    function test_timeoutMediateResults_beforeAtAfterDeadline() public {
        DealTerms memory terms = _dealIn(DEAL, DealState.ResultsChecked);
        uint256 deadline = block.timestamp + MEDIATE_TIMEOUT;
        _refusedUntil(deadline, rp, abi.encodeCall(controller.timeoutMediateResults, (DEAL, terms)));
        _assertState(DEAL, terms, DealState.TimeoutMediateResults);
    }

    function test_deadlinesRunFromWhenTheCurrentStateBegan() public {
        // The deal sat in DealAgreed for a while before results came: the judge deadline
        // counts from the submission, not from the agreement.
        DealTerms memory terms = _dealIn(DEAL, DealState.DealAgreed);
        vm.warp(block.timestamp + SUBMIT_TIMEOUT);
        vm.prank(rp);
        controller.addResult(DEAL, terms, RESULTS, INSTRUCTIONS);
        uint256 deadline = block.timestamp + JUDGE_TIMEOUT;
        _refusedUntil(deadline, rp, abi.encodeCall(controller.timeoutJudgeResults, (DEAL, terms)));
    }

    /// Refused 1 s before and at `deadline` (DeadlineNotReached), succeeds 1 s after.
    function _refusedUntil(uint256 deadline, address caller, bytes memory call) private {
        bytes memory early = abi.encodeWithSelector(LilypadController.DeadlineNotReached.selector, DEAL, deadline);
        uint256[2] memory tooEarly = [deadline - 1, deadline];
        for (uint256 i; i < tooEarly.length; ++i) {
            vm.warp(tooEarly[i]);
            vm.prank(caller);
            (bool ok, bytes memory returned) = address(controller).call(call);
            cheats.assertFalse(ok, "timeout before its deadline");
            cheats.assertEq(keccak256(returned), keccak256(early), "DeadlineNotReached(deal, deadline)");
        }
        vm.warp(deadline + 1);
        vm.prank(caller);
        (bool succeeded,) = address(controller).call(call);
        cheats.assertTrue(succeeded, "timeout one second after its deadline");
    }

    // ---------------------------------------------------------------- the steps they guard

    function test_secondAgreement_untilAgreeDeadline() public {
        DealTerms memory terms = _dealIn(DEAL, DealState.DealNegotiating);
        uint256 deadline = block.timestamp + AGREE_TIMEOUT;
        _allowedUntil(deadline, jc, abi.encodeCall(controller.agree, (DEAL, terms)));
        _assertState(DEAL, terms, DealState.DealAgreed);
    }

    function test_addResult_untilSubmitDeadline() public {
        DealTerms memory terms = _dealIn(DEAL, DealState.DealAgreed);
        uint256 deadline = block.timestamp + SUBMIT_TIMEOUT;
        _allowedUntil(deadline, rp, abi.encodeCall(controller.addResult, (DEAL, terms, RESULTS, INSTRUCTIONS)));
    }

    function test_acceptResult_untilJudgeDeadline() public {
        DealTerms memory terms = _dealIn(DEAL, DealState.ResultsSubmitted);
        uint256 deadline = block.timestamp + JUDGE_TIMEOUT;
        _allowedUntil(deadline, jc, abi.encodeCall(controller.acceptResult, (DEAL, terms)));
    }

    function test_checkResult_untilJudgeDeadline() public {
        DealTerms memory terms = _dealIn(DEAL, DealState.ResultsSubmitted);
        uint256 deadline = block.timestamp + JUDGE_TIMEOUT;
        _allowedUntil(deadline, jc, abi.encodeCall(controller.checkResult, (DEAL, terms)));
    }

    function test_mediationAccept_untilMediateDeadline() public {
        DealTerms memory terms = _dealIn(DEAL, DealState.ResultsChecked);
        address picked = terms.members.mediator;
        uint256 deadline = block.timestamp + MEDIATE_TIMEOUT;
        _allowedUntil(
            deadline, picked, abi.encodeCall(mediation.mediationAcceptResult, (DEAL, terms)), address(mediation)
        );
    }

    function test_mediationReject_untilMediateDeadline() public {
        DealTerms memory terms = _dealIn(DEAL, DealState.ResultsChecked);
        address picked = terms.members.mediator;
        uint256 deadline = block.timestamp + MEDIATE_TIMEOUT;
        _allowedUntil(
            deadline, picked, abi.encodeCall(mediation.mediationRejectResult, (DEAL, terms)), address(mediation)
        );
    }

    function _allowedUntil(uint256 deadline, address caller, bytes memory call) private {
        _allowedUntil(deadline, caller, call, address(controller));
    }

    /// Refused 1 s after `deadline` (DeadlinePassed); succeeds at the deadline itself.
    function _allowedUntil(uint256 deadline, address caller, bytes memory call, address target) private {
        vm.warp(deadline + 1);
        vm.prank(caller);
        (bool ok, bytes memory returned) = target.call(call);
        cheats.assertFalse(ok, "step after its deadline");
        cheats.assertEq(
            keccak256(returned),
            keccak256(abi.encodeWithSelector(LilypadController.DeadlinePassed.selector, DEAL, deadline)),
            "DeadlinePassed(deal, deadline)"
        );
        vm.warp(deadline);
        vm.prank(caller);
        (ok,) = target.call(call);
        cheats.assertTrue(ok, "step at its deadline");
    }
}
