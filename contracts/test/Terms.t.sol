// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {LilypadTest} from "./utils/LilypadTest.sol";
import {DealState, DealTerms} from "../src/Types.sol";
import {LilypadController} from "../src/LilypadController.sol";
import {LilypadStorage} from "../src/LilypadStorage.sol";

/// Terms a deal can be created with, and how a deal is bound to the exact terms agreed.
contract TermsTest is LilypadTest {
    bytes32 internal constant DEAL = keccak256("terms");

    function _agreeExpecting(DealTerms memory terms, bytes4 selector) private {
        vm.prank(rp);
        vm.expectRevert(abi.encodeWithSelector(selector));
        controller.agree(DEAL, terms);
    }

    function test_membersMustBeDistinctAndNonZero() public {
        DealTerms memory terms = _terms();
        terms.members.jobCreator = rp;
        _agreeExpecting(terms, LilypadController.InvalidMembers.selector);

        terms = _terms();
        terms.members.solver = address(0);
        _agreeExpecting(terms, LilypadController.InvalidMembers.selector);

        terms = _terms();
        terms.members.jobCreator = address(0);
        _agreeExpecting(terms, LilypadController.InvalidMembers.selector);

        terms = _terms();
        terms.members.mediator = rp; // a party may not judge its own deal
        _agreeExpecting(terms, LilypadController.InvalidMembers.selector);

        terms = _terms();
        terms.members.mediator = jc;
        _agreeExpecting(terms, LilypadController.InvalidMembers.selector);

        terms = _terms();
        terms.members.mediator = address(0);
        _agreeExpecting(terms, LilypadController.InvalidMembers.selector);
    }

    function test_unusedCollateralsMustBeZero() public {
        DealTerms memory terms = _terms();
        terms.timeouts.agree.collateral = 1;
        _agreeExpecting(terms, LilypadController.UnsupportedCollateral.selector);
        terms = _terms();
        terms.timeouts.mediateResults.collateral = 1;
        _agreeExpecting(terms, LilypadController.UnsupportedCollateral.selector);
    }

    /// The submit-results collateral is what a rejected result always costs the RP, so a
    /// deal without one is refused (by the job creator's agreement as much as the RP's).
    function test_submitResultsCollateralMustNotBeZero() public {
        DealTerms memory terms = _terms();
        terms.timeouts.submitResults.collateral = 0;
        _agreeExpecting(terms, LilypadController.UnsupportedCollateral.selector);
        vm.prank(jc);
        vm.expectRevert(abi.encodeWithSelector(LilypadController.UnsupportedCollateral.selector));
        controller.agree(DEAL, terms);
    }

    function test_timeoutsMustBePositiveAndBounded() public {
        DealTerms memory terms = _terms();
        terms.timeouts.judgeResults.timeout = 0;
        _agreeExpecting(terms, LilypadController.InvalidTimeout.selector);
        terms = _terms();
        terms.timeouts.agree.timeout = uint256(type(uint64).max) + 1;
        _agreeExpecting(terms, LilypadController.InvalidTimeout.selector);
    }

    function test_amountsAreBoundedSoNothingOverflows() public {
        DealTerms memory terms = _terms();
        terms.pricing.paymentCollateral = uint256(type(uint128).max) + 1;
        _agreeExpecting(terms, LilypadController.AmountTooLarge.selector);
        terms = _terms();
        terms.pricing.resultsCollateralMultiple = uint256(type(uint64).max) + 1;
        _agreeExpecting(terms, LilypadController.AmountTooLarge.selector);
        terms = _terms();
        terms.timeouts.submitResults.collateral = type(uint256).max;
        _agreeExpecting(terms, LilypadController.AmountTooLarge.selector);
    }

    function test_resultsMustBeNamedAndAffordable() public {
        DealTerms memory terms = _dealIn(DEAL, DealState.DealAgreed);
        vm.prank(rp);
        vm.expectRevert(abi.encodeWithSelector(LilypadController.EmptyResults.selector, DEAL));
        controller.addResult(DEAL, terms, bytes32(0), INSTRUCTIONS);
        // price 10 x 4 = 40 > payment collateral 30: the RP cannot bill more than was escrowed.
        vm.prank(rp);
        vm.expectRevert(abi.encodeWithSelector(LilypadController.CostExceedsPaymentCollateral.selector, DEAL, 40, 30));
        controller.addResult(DEAL, terms, RESULTS, 4);
        // An astronomically large count is refused the same way, without overflowing.
        uint256 huge = uint256(PRICE) * type(uint64).max;
        vm.prank(rp);
        vm.expectRevert(abi.encodeWithSelector(LilypadController.CostExceedsPaymentCollateral.selector, DEAL, huge, 30));
        controller.addResult(DEAL, terms, RESULTS, type(uint64).max);
        vm.prank(rp);
        controller.addResult(DEAL, terms, RESULTS, 3); // cost 30: exactly the collateral
    }

    function test_zeroInstructionJobCostsNothing() public {
        DealTerms memory terms = _dealIn(DEAL, DealState.DealAgreed);
        Ledger memory before = _balances();
        vm.prank(rp);
        controller.addResult(DEAL, terms, RESULTS, 0);
        vm.prank(jc);
        controller.acceptResult(DEAL, terms);
        // Only the two agreements' deposits come back; nobody pays anybody.
        _assertDeltas(
            before,
            Ledger({
                jobCreator: _i(PAYMENT_COLLATERAL + JUDGE_COLLATERAL),
                resourceProvider: _i(SUBMIT_COLLATERAL),
                mediator1: 0,
                mediator2: 0,
                treasury: 0,
                escrow: -_i(PAYMENT_COLLATERAL + JUDGE_COLLATERAL + SUBMIT_COLLATERAL)
            }),
            "zero-instruction job"
        );
    }

    function test_eachDealIsBoundToTheExactTermsAgreed() public {
        DealTerms memory agreed = _dealIn(DEAL, DealState.DealAgreed);
        DealTerms memory cheaper = _terms();
        cheaper.pricing.instructionPrice = PRICE - 1;
        bytes32 otherKey = _key(DEAL, cheaper);
        // Other terms lead to another (non-existent) record, never to the agreed deal.
        vm.prank(rp);
        vm.expectRevert(abi.encodeWithSelector(LilypadStorage.UnknownDeal.selector, otherKey));
        controller.addResult(DEAL, cheaper, RESULTS, INSTRUCTIONS);
        vm.prank(rp);
        controller.addResult(DEAL, agreed, RESULTS, INSTRUCTIONS);
        _assertState(DEAL, agreed, DealState.ResultsSubmitted);
    }

    function test_partiesAgreeingToDifferentTermsNeverFormADeal() public {
        DealTerms memory rpTerms = _terms();
        DealTerms memory jcTerms = _terms();
        jcTerms.pricing.paymentCollateral = PAYMENT_COLLATERAL + 1;
        vm.prank(rp);
        controller.agree(DEAL, rpTerms);
        vm.prank(jc);
        controller.agree(DEAL, jcTerms);
        _assertState(DEAL, rpTerms, DealState.DealNegotiating);
        _assertState(DEAL, jcTerms, DealState.DealNegotiating);
        // Both get their deposits back once the agree window closes.
        Ledger memory before = _balances();
        vm.warp(block.timestamp + AGREE_TIMEOUT + 1);
        vm.prank(rp);
        controller.timeoutAgree(DEAL, rpTerms);
        vm.prank(jc);
        controller.timeoutAgree(DEAL, jcTerms);
        _assertDeltas(
            before,
            Ledger({
                jobCreator: _i(PAYMENT_COLLATERAL + 1 + JUDGE_COLLATERAL),
                resourceProvider: _i(SUBMIT_COLLATERAL),
                mediator1: 0,
                mediator2: 0,
                treasury: 0,
                escrow: -_i(PAYMENT_COLLATERAL + 1 + JUDGE_COLLATERAL + SUBMIT_COLLATERAL)
            }),
            "both refunded"
        );
    }

    function test_dealKeyIsKeccakOfIdAndTerms() public view {
        DealTerms memory terms = _terms();
        cheats.assertEq(controller.dealKey(DEAL, terms), keccak256(abi.encode(DEAL, terms)), "key derivation");
    }
}
