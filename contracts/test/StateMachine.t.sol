// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {LilypadTest} from "./utils/LilypadTest.sol";
import {DealState, DealTerms} from "../src/Types.sol";
import {LilypadStorage} from "../src/LilypadStorage.sol";

/// Every step tried in every state a deal can be in: it succeeds, and moves the deal where the
/// state machine says, exactly when the state is the step's source state; everywhere else it
/// reverts with the precise error and changes nothing.
contract StateMachineTest is LilypadTest {
    enum Step {
        AgreeResourceProvider,
        AgreeJobCreator,
        AddResult,
        AcceptResult,
        CheckResult,
        MediationAccept,
        MediationReject,
        TimeoutAgree,
        TimeoutSubmitResults,
        TimeoutJudgeResults,
        TimeoutMediateResults
    }

    /// The situations a deal can be in: "no deal", negotiating with either party agreed,
    /// and every other state.
    enum Situation {
        NoDeal,
        ResourceProviderAgreed,
        JobCreatorAgreed,
        DealAgreed,
        ResultsSubmitted,
        ResultsAccepted,
        ResultsChecked,
        MediationAccepted,
        MediationRejected,
        TimeoutAgree,
        TimeoutSubmitResults,
        TimeoutJudgeResults,
        TimeoutMediateResults
    }

    uint256 internal constant STEPS = 11;
    uint256 internal constant SITUATIONS = 13;
    uint256 internal constant LONG_AFTER = 10_000;

    function test_everyStepInEverySituation() public {
        uint256 allowed;
        for (uint256 s; s < STEPS; ++s) {
            for (uint256 t; t < SITUATIONS; ++t) {
                if (_tryStep(Step(s), Situation(t))) ++allowed;
            }
        }
        // 13 situations x 11 steps; exactly these are legal: both agrees from "no deal" and
        // from the other party's agreement (4), addResult, accept, check, two mediation
        // outcomes, timeoutAgree from either half-agreement (2) and the three other timeouts.
        cheats.assertEq(allowed, 4 + 1 + 2 + 2 + 2 + 3, "number of legal (step, situation) pairs");
    }

    function _tryStep(Step step, Situation situation) private returns (bool succeeded) {
        bytes32 dealId = keccak256(abi.encode("state machine", step, situation));
        DealTerms memory terms = _terms();
        bytes32 key = _key(dealId, terms);
        _reach(dealId, terms, situation);
        DealState before = dealStorage.stateOf(key);
        if (_isTimeout(step)) vm.warp(block.timestamp + LONG_AFTER);

        (address caller, address target, bytes memory data) = _call(step, dealId, terms, situation);
        vm.prank(caller);
        bytes memory returned;
        (succeeded, returned) = target.call(data);

        _checkOutcome(step, situation, key, before, succeeded, returned);
        if (_isTimeout(step)) vm.warp(block.timestamp - LONG_AFTER);
    }

    function _checkOutcome(
        Step step,
        Situation situation,
        bytes32 key,
        DealState before,
        bool succeeded,
        bytes memory returned
    ) private view {
        bytes memory expectedError = _expectedError(step, situation, key);
        string memory label = _label(step, situation);
        if (expectedError.length == 0) {
            cheats.assertTrue(succeeded, string.concat("legal step failed: ", label));
            cheats.assertEq(uint256(dealStorage.stateOf(key)), uint256(_target(step, situation)), label);
        } else {
            cheats.assertFalse(succeeded, string.concat("illegal step succeeded: ", label));
            cheats.assertEq(keccak256(returned), keccak256(expectedError), string.concat("revert data: ", label));
            cheats.assertEq(uint256(dealStorage.stateOf(key)), uint256(before), string.concat("unchanged: ", label));
        }
    }

    /// Puts a fresh deal in `situation`.
    function _reach(bytes32 dealId, DealTerms memory terms, Situation situation) private {
        if (situation == Situation.NoDeal) return;
        if (situation == Situation.ResourceProviderAgreed || situation == Situation.TimeoutAgree) {
            vm.prank(rp);
            controller.agree(dealId, terms);
            if (situation == Situation.TimeoutAgree) _timeout(Step.TimeoutAgree, dealId, terms, rp);
            return;
        }
        if (situation == Situation.JobCreatorAgreed) {
            vm.prank(jc);
            controller.agree(dealId, terms);
            return;
        }
        _agreeBoth(dealId, terms);
        if (situation == Situation.DealAgreed) return;
        if (situation == Situation.TimeoutSubmitResults) return _timeout(Step.TimeoutSubmitResults, dealId, terms, jc);
        vm.prank(rp);
        controller.addResult(dealId, terms, RESULTS, INSTRUCTIONS);
        if (situation == Situation.ResultsSubmitted) return;
        if (situation == Situation.TimeoutJudgeResults) return _timeout(Step.TimeoutJudgeResults, dealId, terms, rp);
        vm.prank(jc);
        if (situation == Situation.ResultsAccepted) return controller.acceptResult(dealId, terms);
        controller.checkResult(dealId, terms);
        if (situation == Situation.ResultsChecked) return;
        if (situation == Situation.TimeoutMediateResults) {
            return _timeout(Step.TimeoutMediateResults, dealId, terms, jc);
        }
        address picked = terms.members.mediator;
        vm.prank(picked);
        if (situation == Situation.MediationAccepted) return mediation.mediationAcceptResult(dealId, terms);
        mediation.mediationRejectResult(dealId, terms);
    }

    function _timeout(Step step, bytes32 dealId, DealTerms memory terms, address caller) private {
        vm.warp(block.timestamp + LONG_AFTER);
        (, address target, bytes memory data) = _call(step, dealId, terms, Situation.NoDeal);
        vm.prank(caller);
        (bool ok,) = target.call(data);
        require(ok, "setting up a timeout failed");
        vm.warp(block.timestamp - LONG_AFTER);
    }

    /// Who makes the step (always the party entitled to it) and the call.
    function _call(Step step, bytes32 dealId, DealTerms memory terms, Situation situation)
        private
        view
        returns (address caller, address target, bytes memory data)
    {
        target = address(controller);
        if (step == Step.AgreeResourceProvider) return (rp, target, abi.encodeCall(controller.agree, (dealId, terms)));
        if (step == Step.AgreeJobCreator) return (jc, target, abi.encodeCall(controller.agree, (dealId, terms)));
        if (step == Step.AddResult) {
            return (rp, target, abi.encodeCall(controller.addResult, (dealId, terms, RESULTS, INSTRUCTIONS)));
        }
        if (step == Step.AcceptResult) return (jc, target, abi.encodeCall(controller.acceptResult, (dealId, terms)));
        if (step == Step.CheckResult) return (jc, target, abi.encodeCall(controller.checkResult, (dealId, terms)));
        // Mediation outcomes are called as the mediation contract would, so that the state
        // machine (not the mediator check in front of it) is what is exercised here.
        if (step == Step.MediationAccept) {
            return
                (
                    address(mediation),
                    target,
                    abi.encodeCall(controller.mediationAcceptResult, (dealId, terms, mediator1))
                );
        }
        if (step == Step.MediationReject) {
            return
                (
                    address(mediation),
                    target,
                    abi.encodeCall(controller.mediationRejectResult, (dealId, terms, mediator1))
                );
        }
        if (step == Step.TimeoutAgree) {
            address agreed = situation == Situation.JobCreatorAgreed ? jc : rp;
            return (agreed, target, abi.encodeCall(controller.timeoutAgree, (dealId, terms)));
        }
        if (step == Step.TimeoutSubmitResults) {
            return (jc, target, abi.encodeCall(controller.timeoutSubmitResults, (dealId, terms)));
        }
        if (step == Step.TimeoutJudgeResults) {
            return (rp, target, abi.encodeCall(controller.timeoutJudgeResults, (dealId, terms)));
        }
        return (jc, target, abi.encodeCall(controller.timeoutMediateResults, (dealId, terms)));
    }

    /// Empty when the step is legal in the situation; otherwise the exact revert data.
    function _expectedError(Step step, Situation situation, bytes32 key) private pure returns (bytes memory) {
        DealState source;
        if (step == Step.AgreeResourceProvider || step == Step.AgreeJobCreator) {
            if (situation == Situation.NoDeal) return "";
            bool own = step == Step.AgreeResourceProvider
                ? situation == Situation.ResourceProviderAgreed
                : situation == Situation.JobCreatorAgreed;
            if (own) return abi.encodeWithSelector(LilypadStorage.AlreadyAgreed.selector, key);
            bool otherAgreed = step == Step.AgreeResourceProvider
                ? situation == Situation.JobCreatorAgreed
                : situation == Situation.ResourceProviderAgreed;
            if (otherAgreed) return "";
            return abi.encodeWithSelector(
                LilypadStorage.WrongState.selector, key, _stateOf(situation), DealState.DealNegotiating
            );
        }
        if (situation == Situation.NoDeal) return abi.encodeWithSelector(LilypadStorage.UnknownDeal.selector, key);
        if (step == Step.AddResult || step == Step.TimeoutSubmitResults) {
            source = DealState.DealAgreed;
        } else if (step == Step.AcceptResult || step == Step.CheckResult || step == Step.TimeoutJudgeResults) {
            source = DealState.ResultsSubmitted;
        } else if (step == Step.TimeoutAgree) {
            source = DealState.DealNegotiating;
        } else {
            source = DealState.ResultsChecked;
        }
        if (_stateOf(situation) == source) return "";
        return abi.encodeWithSelector(LilypadStorage.WrongState.selector, key, _stateOf(situation), source);
    }

    function _target(Step step, Situation situation) private pure returns (DealState) {
        if (step == Step.AgreeResourceProvider || step == Step.AgreeJobCreator) {
            return situation == Situation.NoDeal ? DealState.DealNegotiating : DealState.DealAgreed;
        }
        if (step == Step.AddResult) return DealState.ResultsSubmitted;
        if (step == Step.AcceptResult) return DealState.ResultsAccepted;
        if (step == Step.CheckResult) return DealState.ResultsChecked;
        if (step == Step.MediationAccept) return DealState.MediationAccepted;
        if (step == Step.MediationReject) return DealState.MediationRejected;
        if (step == Step.TimeoutAgree) return DealState.TimeoutAgree;
        if (step == Step.TimeoutSubmitResults) return DealState.TimeoutSubmitResults;
        if (step == Step.TimeoutJudgeResults) return DealState.TimeoutJudgeResults;
        return DealState.TimeoutMediateResults;
    }

    function _stateOf(Situation situation) private pure returns (DealState) {
        if (situation <= Situation.JobCreatorAgreed) return DealState.DealNegotiating;
        if (situation == Situation.DealAgreed) return DealState.DealAgreed;
        if (situation == Situation.ResultsSubmitted) return DealState.ResultsSubmitted;
        if (situation == Situation.ResultsAccepted) return DealState.ResultsAccepted;
        if (situation == Situation.ResultsChecked) return DealState.ResultsChecked;
        if (situation == Situation.MediationAccepted) return DealState.MediationAccepted;
        if (situation == Situation.MediationRejected) return DealState.MediationRejected;
        if (situation == Situation.TimeoutAgree) return DealState.TimeoutAgree;
        if (situation == Situation.TimeoutSubmitResults) return DealState.TimeoutSubmitResults;
        if (situation == Situation.TimeoutJudgeResults) return DealState.TimeoutJudgeResults;
        return DealState.TimeoutMediateResults;
    }

    function _isTimeout(Step step) private pure returns (bool) {
        return step >= Step.TimeoutAgree;
    }

    function _label(Step step, Situation situation) private pure returns (string memory) {
        string[11] memory steps = [
            "agree(RP)",
            "agree(JC)",
            "addResult",
            "acceptResult",
            "checkResult",
            "mediationAccept",
            "mediationReject",
            "timeoutAgree",
            "timeoutSubmitResults",
            "timeoutJudgeResults",
            "timeoutMediateResults"
        ];
        string[13] memory situations = [
            "no deal",
            "RP agreed",
            "JC agreed",
            "DealAgreed",
            "ResultsSubmitted",
            "ResultsAccepted",
            "ResultsChecked",
            "MediationAccepted",
            "MediationRejected",
            "TimeoutAgree",
            "TimeoutSubmitResults",
            "TimeoutJudgeResults",
            "TimeoutMediateResults"
        ];
        return string.concat(steps[uint256(step)], " in ", situations[uint256(situation)]);
    }

    function test_sourceOfEveryAdvanceableState() public view {
        cheats.assertEq(
            uint256(dealStorage.sourceOf(DealState.ResultsAccepted)), uint256(DealState.ResultsSubmitted), "accept"
        );
        cheats.assertEq(
            uint256(dealStorage.sourceOf(DealState.ResultsChecked)), uint256(DealState.ResultsSubmitted), "check"
        );
        cheats.assertEq(
            uint256(dealStorage.sourceOf(DealState.MediationAccepted)), uint256(DealState.ResultsChecked), "med accept"
        );
        cheats.assertEq(
            uint256(dealStorage.sourceOf(DealState.MediationRejected)), uint256(DealState.ResultsChecked), "med reject"
        );
        cheats.assertEq(
            uint256(dealStorage.sourceOf(DealState.TimeoutAgree)), uint256(DealState.DealNegotiating), "t agree"
        );
        cheats.assertEq(
            uint256(dealStorage.sourceOf(DealState.TimeoutSubmitResults)), uint256(DealState.DealAgreed), "t submit"
        );
        cheats.assertEq(
            uint256(dealStorage.sourceOf(DealState.TimeoutJudgeResults)), uint256(DealState.ResultsSubmitted), "t judge"
        );
        cheats.assertEq(
            uint256(dealStorage.sourceOf(DealState.TimeoutMediateResults)),
            uint256(DealState.ResultsChecked),
            "t mediate"
        );
    }

    function test_statesReachedOnlyThroughDedicatedStepsAreNotAdvanceable() public {
        DealState[3] memory dedicated = [DealState.DealNegotiating, DealState.DealAgreed, DealState.ResultsSubmitted];
        for (uint256 i; i < dedicated.length; ++i) {
            vm.expectRevert(abi.encodeWithSelector(LilypadStorage.NotAdvanceable.selector, dedicated[i]));
            dealStorage.sourceOf(dedicated[i]);
        }
    }

    function test_recordKeepsWhoAgreedWhenAndHowManyInstructions() public {
        DealTerms memory terms = _terms();
        bytes32 dealId = keccak256("record");
        vm.warp(1_000);
        vm.prank(jc);
        controller.agree(dealId, terms);
        bytes32 key = _key(dealId, terms);
        cheats.assertTrue(dealStorage.agreement(key).jobCreatorAgreed, "JC agreed");
        cheats.assertFalse(dealStorage.agreement(key).resourceProviderAgreed, "RP not yet");
        cheats.assertEq(dealStorage.agreement(key).stateSince, 1_000, "since first agreement");
        vm.warp(1_050);
        vm.prank(rp);
        controller.agree(dealId, terms);
        cheats.assertEq(dealStorage.agreement(key).stateSince, 1_050, "since both agreed");
        vm.prank(rp);
        controller.addResult(dealId, terms, RESULTS, 3); // cost 30: exactly the payment collateral
        cheats.assertEq(dealStorage.agreement(key).instructionCount, 3, "instruction count");
        cheats.assertEq(dealStorage.resultsIdOf(key), RESULTS, "results id");
    }
}
