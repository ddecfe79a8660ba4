// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {LilypadTest} from "./utils/LilypadTest.sol";
import {DealState, DealTerms} from "../src/Types.sol";

/// Every row of the money table in README.md, asserted to the wei for the JC, the RP,
/// both mediators, the treasury and the escrow (Payments) — and that no token appears or
/// disappears. Standard terms: price 10, instructions 2 (cost 20), payment collateral 30,
/// multiple 4 (results collateral 80), mediation fee 5, Cs 7, Cj 11.
contract MoneyFlowsTest is LilypadTest {
    bytes32 internal constant DEAL = keccak256("deal");
    // Small constants: the casts cannot truncate.
    // forge-lint: disable-start(unsafe-typecast)
    int256 internal constant P = int256(PAYMENT_COLLATERAL);
    int256 internal constant CS = int256(SUBMIT_COLLATERAL);
    int256 internal constant CJ = int256(JUDGE_COLLATERAL);
    int256 internal constant M = int256(MEDIATION_FEE);
    int256 internal constant COST = int256(PRICE) * int256(uint256(INSTRUCTIONS));
    int256 internal constant R = COST * int256(MULTIPLE);
    // forge-lint: disable-end(unsafe-typecast)

    function test_agree_resourceProviderEscrowsSubmitCollateral() public {
        DealTerms memory terms = _terms();
        Ledger memory before = _balances();
        vm.prank(rp);
        controller.agree(DEAL, terms);
        _assertDeltas(
            before,
            Ledger({jobCreator: 0, resourceProvider: -CS, mediator1: 0, mediator2: 0, treasury: 0, escrow: CS}),
            "RP agree"
        );
    }

    function test_agree_jobCreatorEscrowsPaymentAndJudgeCollateral() public {
        DealTerms memory terms = _terms();
        Ledger memory before = _balances();
        vm.prank(jc);
        controller.agree(DEAL, terms);
        _assertDeltas(
            before,
            Ledger({
                jobCreator: -(P + CJ), resourceProvider: 0, mediator1: 0, mediator2: 0, treasury: 0, escrow: P + CJ
            }),
            "JC agree"
        );
    }

    function test_addResult_resourceProviderStakesResultsCollateralAndKeepsSubmitCollateralStaked() public {
        DealTerms memory terms = _dealIn(DEAL, DealState.DealAgreed);
        Ledger memory before = _balances();
        vm.prank(rp);
        controller.addResult(DEAL, terms, RESULTS, INSTRUCTIONS);
        _assertDeltas(
            before,
            Ledger({jobCreator: 0, resourceProvider: -R, mediator1: 0, mediator2: 0, treasury: 0, escrow: R}),
            "addResult"
        );
    }

    function test_addResult_withNoInstructions_movesNothingAndLeavesSubmitCollateralStaked() public {
        DealTerms memory terms = _dealIn(DEAL, DealState.DealAgreed);
        Ledger memory before = _balances();
        vm.prank(rp);
        controller.addResult(DEAL, terms, RESULTS, 0);
        _assertDeltas(
            before,
            Ledger({jobCreator: 0, resourceProvider: 0, mediator1: 0, mediator2: 0, treasury: 0, escrow: 0}),
            "addResult(0 instructions)"
        );
        cheats.assertEq(token.balanceOf(address(payments)), uint256(P + CJ + CS), "Cs still in escrow");
    }

    function test_acceptResult_paysResourceProviderAndReturnsCollateral() public {
        DealTerms memory terms = _dealIn(DEAL, DealState.ResultsSubmitted);
        Ledger memory before = _balances();
        vm.prank(jc);
        controller.acceptResult(DEAL, terms);
        _assertDeltas(
            before,
            Ledger({
                jobCreator: P - COST + CJ,
                resourceProvider: COST + R + CS,
                mediator1: 0,
                mediator2: 0,
                treasury: 0,
                escrow: -(P - COST + CJ + COST + R + CS)
            }),
            "acceptResult"
        );
        cheats.assertEq(token.balanceOf(address(payments)), 0, "escrow empty after the deal");
    }

    function test_happyPath_netEffectIsJobCreatorPaysCost() public {
        Ledger memory before = _balances();
        DealTerms memory terms = _dealIn(DEAL, DealState.ResultsSubmitted);
        vm.prank(jc);
        controller.acceptResult(DEAL, terms);
        _assertDeltas(
            before,
            Ledger({jobCreator: -COST, resourceProvider: COST, mediator1: 0, mediator2: 0, treasury: 0, escrow: 0}),
            "whole deal"
        );
    }

    function test_checkResult_returnsJudgeCollateralAndTakesMediationFee() public {
        DealTerms memory terms = _dealIn(DEAL, DealState.ResultsSubmitted);
        Ledger memory before = _balances();
        vm.prank(jc);
        controller.checkResult(DEAL, terms);
        _assertDeltas(
            before,
            Ledger({jobCreator: CJ - M, resourceProvider: 0, mediator1: 0, mediator2: 0, treasury: 0, escrow: M - CJ}),
            "checkResult"
        );
        cheats.assertEq(token.balanceOf(address(payments)), uint256(P + M + CS + R), "escrow: P + M + Cs + R");
    }

    function test_mediationAccept_paysResourceProviderAndMediator() public {
        DealTerms memory terms = _dealIn(DEAL, DealState.ResultsChecked);
        address picked = terms.members.mediator;
        Ledger memory before = _balances();
        vm.prank(picked);
        mediation.mediationAcceptResult(DEAL, terms);
        _assertDeltas(
            before,
            Ledger({
                jobCreator: P - COST,
                resourceProvider: COST + R + CS,
                mediator1: picked == mediator1 ? M : int256(0),
                mediator2: picked == mediator2 ? M : int256(0),
                treasury: 0,
                escrow: -(P - COST + COST + R + CS + M)
            }),
            "mediation accepts"
        );
        cheats.assertEq(token.balanceOf(address(payments)), 0, "escrow empty after the deal");
        _assertState(DEAL, terms, DealState.MediationAccepted);
    }

    function test_mediationReject_refundsJobCreatorAndSlashesBothResourceProviderCollaterals() public {
        DealTerms memory terms = _dealIn(DEAL, DealState.ResultsChecked);
        address picked = terms.members.mediator;
        Ledger memory before = _balances();
        vm.prank(picked);
        mediation.mediationRejectResult(DEAL, terms);
        _assertDeltas(
            before,
            Ledger({
                jobCreator: P,
                resourceProvider: 0,
                mediator1: picked == mediator1 ? M : int256(0),
                mediator2: picked == mediator2 ? M : int256(0),
                treasury: R + CS,
                escrow: -(P + M + R + CS)
            }),
            "mediation rejects"
        );
        cheats.assertEq(token.balanceOf(address(payments)), 0, "escrow empty after the deal");
        _assertState(DEAL, terms, DealState.MediationRejected);
    }

    function test_timeoutAgree_refundsResourceProviderExactly() public {
        DealTerms memory terms = _terms();
        Ledger memory before = _balances();
        vm.prank(rp);
        controller.agree(DEAL, terms);
        vm.warp(block.timestamp + AGREE_TIMEOUT + 1);
        vm.prank(rp);
        controller.timeoutAgree(DEAL, terms);
        _assertDeltas(
            before,
            Ledger({jobCreator: 0, resourceProvider: 0, mediator1: 0, mediator2: 0, treasury: 0, escrow: 0}),
            "timeoutAgree (RP)"
        );
        _assertState(DEAL, terms, DealState.TimeoutAgree);
    }

    function test_timeoutAgree_refundsJobCreatorExactly() public {
        DealTerms memory terms = _terms();
        Ledger memory before = _balances();
        vm.prank(jc);
        controller.agree(DEAL, terms);
        vm.warp(block.timestamp + AGREE_TIMEOUT + 1);
        vm.prank(jc);
        controller.timeoutAgree(DEAL, terms);
        _assertDeltas(
            before,
            Ledger({jobCreator: 0, resourceProvider: 0, mediator1: 0, mediator2: 0, treasury: 0, escrow: 0}),
            "timeoutAgree (JC)"
        );
    }

    function test_timeoutSubmitResults_refundsJobCreatorAndSlashesSubmitCollateral() public {
        DealTerms memory terms = _dealIn(DEAL, DealState.DealAgreed);
        Ledger memory before = _balances();
        vm.warp(block.timestamp + SUBMIT_TIMEOUT + 1);
        vm.prank(jc);
        controller.timeoutSubmitResults(DEAL, terms);
        _assertDeltas(
            before,
            Ledger({
                jobCreator: P + CJ,
                resourceProvider: 0,
                mediator1: 0,
                mediator2: 0,
                treasury: CS,
                escrow: -(P + CJ + CS)
            }),
            "timeoutSubmitResults"
        );
        cheats.assertEq(token.balanceOf(address(payments)), 0, "escrow empty after the deal");
    }

    function test_timeoutJudgeResults_paysResourceProviderAndSlashesJudgeCollateral() public {
        DealTerms memory terms = _dealIn(DEAL, DealState.ResultsSubmitted);
        Ledger memory before = _balances();
        vm.warp(block.timestamp + JUDGE_TIMEOUT + 1);
        vm.prank(rp);
        controller.timeoutJudgeResults(DEAL, terms);
        _assertDeltas(
            before,
            Ledger({
                jobCreator: P - COST,
                resourceProvider: COST + R + CS,
                mediator1: 0,
                mediator2: 0,
                treasury: CJ,
                escrow: -(P - COST + COST + R + CS + CJ)
            }),
            "timeoutJudgeResults"
        );
        cheats.assertEq(token.balanceOf(address(payments)), 0, "escrow empty after the deal");
    }

    function test_timeoutMediateResults_refundsEveryone() public {
        DealTerms memory terms = _dealIn(DEAL, DealState.ResultsChecked);
        Ledger memory before = _balances();
        vm.warp(block.timestamp + MEDIATE_TIMEOUT + 1);
        vm.prank(rp);
        controller.timeoutMediateResults(DEAL, terms);
        _assertDeltas(
            before,
            Ledger({
                jobCreator: P + M,
                resourceProvider: R + CS,
                mediator1: 0,
                mediator2: 0,
                treasury: 0,
                escrow: -(P + M + R + CS)
            }),
            "timeoutMediateResults"
        );
        cheats.assertEq(token.balanceOf(address(payments)), 0, "escrow empty after the deal");
    }

    function test_timeoutMediateResults_overWholeDealNobodyLosesAnything() public {
        Ledger memory before = _balances();
        DealTerms memory terms = _dealIn(DEAL, DealState.ResultsChecked);
        vm.warp(block.timestamp + MEDIATE_TIMEOUT + 1);
        vm.prank(jc);
        controller.timeoutMediateResults(DEAL, terms);
        _assertDeltas(
            before,
            Ledger({jobCreator: 0, resourceProvider: 0, mediator1: 0, mediator2: 0, treasury: 0, escrow: 0}),
            "whole deal"
        );
    }

    function test_slashGoesToTheCurrentTreasury() public {
        address newTreasury = vm.addr(0xBEEF);
        vm.prank(owner);
        payments.setTreasury(newTreasury);
        DealTerms memory terms = _dealIn(DEAL, DealState.DealAgreed);
        vm.warp(block.timestamp + SUBMIT_TIMEOUT + 1);
        vm.prank(jc);
        controller.timeoutSubmitResults(DEAL, terms);
        cheats.assertEq(token.balanceOf(newTreasury), SUBMIT_COLLATERAL, "new treasury got the slashed collateral");
        cheats.assertEq(token.balanceOf(treasury), 0, "old treasury got nothing");
    }
}
