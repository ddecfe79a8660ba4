// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {LilypadTest} from "./utils/LilypadTest.sol";
import {DealTerms} from "../src/Types.sol";

/// Fuzzed prices, collaterals, multiples, instruction counts and outcomes: every deal ends
/// with each party's balance changed by exactly what the money table (README.md) says, escrow holding
/// exactly the model's amount after every step, and nothing left in escrow at the end.
contract FuzzTest is LilypadTest {
    bytes32 internal constant DEAL = keccak256("fuzz");

    enum Outcome {
        Accept,
        MediationAccept,
        MediationReject,
        TimeoutAgreeResourceProvider,
        TimeoutAgreeJobCreator,
        TimeoutSubmitResults,
        TimeoutJudgeResults,
        TimeoutMediateResults
    }

    struct Amounts {
        uint256 price;
        uint256 instructions;
        uint256 paymentCollateral;
        uint256 multiple;
        uint256 mediationFee;
        uint256 submitCollateral;
        uint256 judgeCollateral;
    }

    function testFuzz_everyOutcomeSettlesExactly(
        uint256 price,
        uint256 instructions,
        uint256 paymentSlack,
        uint256 multiple,
        uint256 mediationFee,
        uint256 submitCollateral,
        uint256 judgeCollateral,
        uint8 outcomeSeed
    ) public {
        Amounts memory a;
        a.price = _bound(price, 0, 1e18);
        a.instructions = _bound(instructions, 0, 10_000);
        a.paymentCollateral = a.price * a.instructions + _bound(paymentSlack, 0, 1e22);
        a.multiple = _bound(multiple, 0, 50);
        a.mediationFee = _bound(mediationFee, 0, 1e22);
        a.submitCollateral = _bound(submitCollateral, 1, 1e22);
        a.judgeCollateral = _bound(judgeCollateral, 0, 1e22);
        Outcome outcome = Outcome(outcomeSeed % 8);
        _run(a, outcome);
    }

    function _run(Amounts memory a, Outcome outcome) private {
        DealTerms memory terms =
            _terms(a.price, a.paymentCollateral, a.multiple, a.mediationFee, a.submitCollateral, a.judgeCollateral);
        uint256 cost = a.price * a.instructions;
        uint256 resultsCollateral = cost * a.multiple;
        Ledger memory start = _balances();

        if (outcome == Outcome.TimeoutAgreeJobCreator) {
            vm.prank(jc);
            controller.agree(DEAL, terms);
            _escrowIs(a.paymentCollateral + a.judgeCollateral, "after JC agree");
            vm.warp(block.timestamp + AGREE_TIMEOUT + 1);
            vm.prank(jc);
            controller.timeoutAgree(DEAL, terms);
            return _endsWith(start, 0, 0, 0, 0, "timeoutAgree (JC)");
        }
        vm.prank(rp);
        controller.agree(DEAL, terms);
        _escrowIs(a.submitCollateral, "after RP agree");
        if (outcome == Outcome.TimeoutAgreeResourceProvider) {
            vm.warp(block.timestamp + AGREE_TIMEOUT + 1);
            vm.prank(rp);
            controller.timeoutAgree(DEAL, terms);
            return _endsWith(start, 0, 0, 0, 0, "timeoutAgree (RP)");
        }
        vm.prank(jc);
        controller.agree(DEAL, terms);
        _escrowIs(a.submitCollateral + a.paymentCollateral + a.judgeCollateral, "after both agree");
        if (outcome == Outcome.TimeoutSubmitResults) {
            vm.warp(block.timestamp + SUBMIT_TIMEOUT + 1);
            vm.prank(jc);
            controller.timeoutSubmitResults(DEAL, terms);
            return _endsWith(start, 0, -_i(a.submitCollateral), 0, _i(a.submitCollateral), "timeoutSubmitResults");
        }
        vm.prank(rp);
        // forge-lint: disable-next-line(unsafe-typecast)
        controller.addResult(DEAL, terms, RESULTS, uint64(a.instructions));
        _escrowIs(a.paymentCollateral + a.judgeCollateral + resultsCollateral + a.submitCollateral, "after addResult");
        if (outcome == Outcome.Accept) {
            vm.prank(jc);
            controller.acceptResult(DEAL, terms);
            return _endsWith(start, -_i(cost), _i(cost), 0, 0, "acceptResult");
        }
        if (outcome == Outcome.TimeoutJudgeResults) {
            vm.warp(block.timestamp + JUDGE_TIMEOUT + 1);
            vm.prank(rp);
            controller.timeoutJudgeResults(DEAL, terms);
            return _endsWith(start, -_i(cost + a.judgeCollateral), _i(cost), 0, _i(a.judgeCollateral), "timeoutJudge");
        }
        vm.prank(jc);
        controller.checkResult(DEAL, terms);
        _escrowIs(a.paymentCollateral + a.mediationFee + resultsCollateral + a.submitCollateral, "after checkResult");
        address picked = terms.members.mediator;
        if (outcome == Outcome.MediationAccept) {
            vm.prank(picked);
            mediation.mediationAcceptResult(DEAL, terms);
            return _endsWith(start, -_i(cost + a.mediationFee), _i(cost), _i(a.mediationFee), 0, "mediation accepts");
        }
        if (outcome == Outcome.MediationReject) {
            vm.prank(picked);
            mediation.mediationRejectResult(DEAL, terms);
            uint256 slashed = resultsCollateral + a.submitCollateral;
            return _endsWith(start, -_i(a.mediationFee), -_i(slashed), _i(a.mediationFee), _i(slashed), "rejects");
        }
        vm.warp(block.timestamp + MEDIATE_TIMEOUT + 1);
        vm.prank(jc);
        controller.timeoutMediateResults(DEAL, terms);
        _endsWith(start, 0, 0, 0, 0, "timeoutMediateResults");
    }

    function _escrowIs(uint256 expected, string memory when) private view {
        cheats.assertEq(token.balanceOf(address(payments)), expected, string.concat("escrow ", when));
    }

    /// Net change over the whole deal; `mediatorGain` goes to whichever mediator was picked.
    function _endsWith(
        Ledger memory start,
        int256 jobCreator,
        int256 resourceProvider,
        int256 mediatorGain,
        int256 treasuryGain,
        string memory outcome
    ) private view {
        Ledger memory now_ = _balances();
        int256 mediators = (now_.mediator1 - start.mediator1) + (now_.mediator2 - start.mediator2);
        cheats.assertEq(now_.jobCreator - start.jobCreator, jobCreator, string.concat(outcome, ": JC"));
        cheats.assertEq(
            now_.resourceProvider - start.resourceProvider, resourceProvider, string.concat(outcome, ": RP")
        );
        cheats.assertEq(mediators, mediatorGain, string.concat(outcome, ": mediator"));
        cheats.assertEq(now_.treasury - start.treasury, treasuryGain, string.concat(outcome, ": treasury"));
        cheats.assertEq(token.balanceOf(address(payments)), 0, string.concat(outcome, ": escrow empty"));
    }

    function _bound(uint256 x, uint256 min, uint256 max) private pure returns (uint256) {
        return min + (x % (max - min + 1));
    }
}
