// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Vm} from "forge-std/Vm.sol";
import {Cheats} from "./Cheats.sol";
import {LilypadToken} from "../../src/LilypadToken.sol";
import {LilypadUsers} from "../../src/LilypadUsers.sol";
import {LilypadStorage} from "../../src/LilypadStorage.sol";
import {LilypadPayments} from "../../src/LilypadPayments.sol";
import {LilypadMediation} from "../../src/LilypadMediation.sol";
import {LilypadOnChainJobCreator} from "../../src/LilypadOnChainJobCreator.sol";
import {LilypadController} from "../../src/LilypadController.sol";
import {ExampleClient} from "../../src/ExampleClient.sol";
import {DealMembers, DealPricing, DealState, DealTerms, DealTimeout, DealTimeouts} from "../../src/Types.sol";

/// Base for every forge test: deploys the system the way `lilypad chain deploy` does (parts
/// first, pointing at the Controller's predicted address, then the Controller, which checks
/// the wiring), names the actors, funds them, and offers helpers to build terms, walk a deal
/// through its states and check balances to the wei.
abstract contract LilypadTest {
    address internal constant VM_ADDRESS = address(uint160(uint256(keccak256("hevm cheat code"))));
    Vm internal constant vm = Vm(VM_ADDRESS);
    Cheats internal constant cheats = Cheats(VM_ADDRESS);

    uint256 internal constant SUPPLY = 1_000_000_000 ether;
    uint256 internal constant FUNDS = 1_000_000 ether;

    LilypadToken internal token;
    LilypadUsers internal users;
    LilypadStorage internal dealStorage;
    LilypadPayments internal payments;
    LilypadMediation internal mediation;
    LilypadOnChainJobCreator internal jobCreator;
    LilypadController internal controller;
    ExampleClient internal client;

    address internal owner;
    address internal treasury;
    address internal solver;
    address internal jc;
    address internal rp;
    address internal mediator1;
    address internal mediator2;
    address internal operator;
    address internal stranger;

    function setUp() public virtual {
        owner = _actor(1, "owner");
        treasury = _actor(2, "treasury");
        solver = _actor(3, "solver");
        jc = _actor(4, "jobCreator");
        rp = _actor(5, "resourceProvider");
        mediator1 = _actor(6, "mediator1");
        mediator2 = _actor(7, "mediator2");
        operator = _actor(8, "operator");
        stranger = _actor(9, "stranger");
        _deploy();
        address[5] memory funded = [jc, rp, mediator1, mediator2, operator];
        for (uint256 i; i < funded.length; ++i) {
            require(token.transfer(funded[i], FUNDS), "funding failed");
            vm.prank(funded[i]);
            token.approve(address(payments), type(uint256).max);
        }
    }

    function _actor(uint256 key, string memory name) private returns (address who) {
        who = vm.addr(key);
        vm.label(who, name);
    }

    function _deploy() private {
        uint256 nonce = vm.getNonce(address(this));
        // token, users, storage, payments, mediation, job creator, then the controller.
        address predicted = cheats.computeCreateAddress(address(this), nonce + 6);
        token = _newToken();
        users = new LilypadUsers();
        dealStorage = new LilypadStorage(predicted);
        payments = new LilypadPayments(predicted, token, treasury, owner);
        mediation = new LilypadMediation(predicted);
        jobCreator = new LilypadOnChainJobCreator(token, dealStorage, operator, 2 ether, 1 days, owner);
        controller = new LilypadController(dealStorage, payments, mediation, address(users), address(jobCreator));
        cheats.assertEq(address(controller), predicted, "controller deployed at its predicted address");
        client = new ExampleClient(jobCreator);
    }

    /// The token deals are paid in; a test may deploy a hostile one instead.
    function _newToken() internal virtual returns (LilypadToken) {
        return new LilypadToken(SUPPLY);
    }

    // ---------------------------------------------------------------------------------
    // Terms
    // ---------------------------------------------------------------------------------

    /// Distinct numbers everywhere, so a flow that pays the wrong amount cannot pass by luck.
    uint256 internal constant PRICE = 10;
    uint256 internal constant PAYMENT_COLLATERAL = 30;
    uint256 internal constant MULTIPLE = 4;
    uint256 internal constant MEDIATION_FEE = 5;
    uint256 internal constant SUBMIT_COLLATERAL = 7;
    uint256 internal constant JUDGE_COLLATERAL = 11;
    uint64 internal constant INSTRUCTIONS = 2; // cost 20, results collateral 80
    uint256 internal constant AGREE_TIMEOUT = 100;
    uint256 internal constant SUBMIT_TIMEOUT = 200;
    uint256 internal constant JUDGE_TIMEOUT = 300;
    uint256 internal constant MEDIATE_TIMEOUT = 400;
    bytes32 internal constant RESULTS = keccak256("results tar");

    function _terms() internal view returns (DealTerms memory terms) {
        return _terms(PRICE, PAYMENT_COLLATERAL, MULTIPLE, MEDIATION_FEE, SUBMIT_COLLATERAL, JUDGE_COLLATERAL);
    }

    function _terms(
        uint256 price,
        uint256 paymentCollateral,
        uint256 multiple,
        uint256 mediationFee,
        uint256 submitCollateral,
        uint256 judgeCollateral
    ) internal view returns (DealTerms memory terms) {
        terms.members = DealMembers({solver: solver, jobCreator: jc, resourceProvider: rp, mediator: mediator1});
        terms.timeouts = DealTimeouts({
            agree: DealTimeout({timeout: AGREE_TIMEOUT, collateral: 0}),
            submitResults: DealTimeout({timeout: SUBMIT_TIMEOUT, collateral: submitCollateral}),
            judgeResults: DealTimeout({timeout: JUDGE_TIMEOUT, collateral: judgeCollateral}),
            mediateResults: DealTimeout({timeout: MEDIATE_TIMEOUT, collateral: 0})
        });
        terms.pricing = DealPricing({
            instructionPrice: price,
            paymentCollateral: paymentCollateral,
            resultsCollateralMultiple: multiple,
            mediationFee: mediationFee
        });
    }

    // ---------------------------------------------------------------------------------
    // Walking a deal
    // ---------------------------------------------------------------------------------

    function _agreeBoth(bytes32 dealId, DealTerms memory terms) internal {
        vm.prank(terms.members.resourceProvider);
        controller.agree(dealId, terms);
        vm.prank(terms.members.jobCreator);
        controller.agree(dealId, terms);
    }

    function _submitted(bytes32 dealId, DealTerms memory terms, uint64 instructions) internal {
        _agreeBoth(dealId, terms);
        vm.prank(terms.members.resourceProvider);
        controller.addResult(dealId, terms, RESULTS, instructions);
    }

    function _checked(bytes32 dealId, DealTerms memory terms, uint64 instructions) internal returns (address picked) {
        _submitted(dealId, terms, instructions);
        vm.prank(terms.members.jobCreator);
        controller.checkResult(dealId, terms);
        picked = terms.members.mediator;
    }

    /// Walks a fresh deal to `state` with the standard terms.
    function _dealIn(bytes32 dealId, DealState state) internal returns (DealTerms memory terms) {
        terms = _terms();
        if (state == DealState.DealNegotiating) {
            vm.prank(rp);
            controller.agree(dealId, terms);
        } else if (state == DealState.DealAgreed) {
            _agreeBoth(dealId, terms);
        } else if (state == DealState.ResultsSubmitted) {
            _submitted(dealId, terms, INSTRUCTIONS);
        } else if (state == DealState.ResultsChecked) {
            _checked(dealId, terms, INSTRUCTIONS);
        } else {
            revert("_dealIn: not a resting state");
        }
        _assertState(dealId, terms, state);
    }

    function _key(bytes32 dealId, DealTerms memory terms) internal view returns (bytes32) {
        return controller.dealKey(dealId, terms);
    }

    function _assertState(bytes32 dealId, DealTerms memory terms, DealState expected) internal view {
        cheats.assertEq(uint256(dealStorage.stateOf(_key(dealId, terms))), uint256(expected), "deal state");
    }

    // ---------------------------------------------------------------------------------
    // Balances, to the wei
    // ---------------------------------------------------------------------------------

    /// Token balances of everyone a deal can pay, or expected changes of them.
    struct Ledger {
        int256 jobCreator;
        int256 resourceProvider;
        int256 mediator1;
        int256 mediator2;
        int256 treasury;
        int256 escrow;
    }

    function _balances() internal view returns (Ledger memory b) {
        b.jobCreator = _i(token.balanceOf(jc));
        b.resourceProvider = _i(token.balanceOf(rp));
        b.mediator1 = _i(token.balanceOf(mediator1));
        b.mediator2 = _i(token.balanceOf(mediator2));
        b.treasury = _i(token.balanceOf(treasury));
        b.escrow = _i(token.balanceOf(address(payments)));
    }

    /// Each balance changed by exactly `expected` since `before`, and no token appeared or vanished.
    function _assertDeltas(Ledger memory before, Ledger memory expected, string memory step) internal view {
        Ledger memory afterwards = _balances();
        cheats.assertEq(afterwards.jobCreator - before.jobCreator, expected.jobCreator, string.concat(step, ": JC"));
        cheats.assertEq(
            afterwards.resourceProvider - before.resourceProvider,
            expected.resourceProvider,
            string.concat(step, ": RP")
        );
        cheats.assertEq(afterwards.mediator1 - before.mediator1, expected.mediator1, string.concat(step, ": mediator1"));
        cheats.assertEq(afterwards.mediator2 - before.mediator2, expected.mediator2, string.concat(step, ": mediator2"));
        cheats.assertEq(afterwards.treasury - before.treasury, expected.treasury, string.concat(step, ": treasury"));
        cheats.assertEq(afterwards.escrow - before.escrow, expected.escrow, string.concat(step, ": escrow"));
        int256 total = afterwards.jobCreator + afterwards.resourceProvider + afterwards.mediator1 + afterwards.mediator2
            + afterwards.treasury + afterwards.escrow;
        int256 totalBefore = before.jobCreator + before.resourceProvider + before.mediator1 + before.mediator2
            + before.treasury + before.escrow;
        cheats.assertEq(total, totalBefore, string.concat(step, ": tokens are conserved"));
    }

    function _i(uint256 x) internal pure returns (int256) {
        require(x <= uint256(type(int256).max), "amount does not fit int256");
        // forge-lint: disable-next-line(unsafe-typecast)
        return int256(x);
    }
}
