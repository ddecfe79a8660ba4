// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {LilypadTest} from "./utils/LilypadTest.sol";
import {LilypadToken} from "../src/LilypadToken.sol";
import {DealState, DealTerms} from "../src/Types.sol";

/// A token that, while armed, calls back into the Controller from inside every transfer
/// and records what happened. Payments accepts any ERC-20, so this is a token a deployer
/// could pick.
contract HostileToken is LilypadToken {
    address public target;
    bytes public reentry;
    bool public attempted;
    bool public reentered;
    bytes public reentryError;

    constructor(uint256 supply) LilypadToken(supply) {}

    function arm(address target_, bytes calldata reentry_) external {
        target = target_;
        reentry = reentry_;
    }

    function _update(address from, address to, uint256 value) internal override {
        if (target != address(0) && !attempted) {
            attempted = true;
            bool ok;
            (ok, reentryError) = target.call(reentry);
            reentered = ok;
        }
        super._update(from, to, value);
    }
}

/// Every Controller mutator is nonReentrant and writes state before moving tokens, so a
/// hostile token cannot run a step twice or pay anyone twice.
contract ReentrancyTest is LilypadTest {
    bytes32 internal constant DEAL = keccak256("reentrancy");

    function _newToken() internal override returns (LilypadToken) {
        return new HostileToken(SUPPLY);
    }

    function _hostile() private view returns (HostileToken) {
        return HostileToken(address(token));
    }

    function test_payoutCannotReenterToBePaidTwice() public {
        DealTerms memory terms = _dealIn(DEAL, DealState.ResultsSubmitted);
        _hostile().arm(address(controller), abi.encodeCall(controller.acceptResult, (DEAL, terms)));
        Ledger memory before = _balances();
        vm.prank(jc);
        controller.acceptResult(DEAL, terms);
        _assertBlocked();
        // Paid exactly once.
        uint256 cost = PRICE * INSTRUCTIONS;
        _assertDeltas(
            before,
            Ledger({
                jobCreator: _i(PAYMENT_COLLATERAL - cost + JUDGE_COLLATERAL),
                resourceProvider: _i(cost + cost * MULTIPLE + SUBMIT_COLLATERAL),
                mediator1: 0,
                mediator2: 0,
                treasury: 0,
                escrow: -_i(PAYMENT_COLLATERAL + JUDGE_COLLATERAL + cost * MULTIPLE + SUBMIT_COLLATERAL)
            }),
            "acceptResult under attack"
        );
    }

    function test_depositCannotReenterAnotherStep() public {
        DealTerms memory terms = _dealIn(DEAL, DealState.DealNegotiating);
        _hostile().arm(address(controller), abi.encodeCall(controller.timeoutAgree, (DEAL, terms)));
        vm.prank(jc);
        controller.agree(DEAL, terms);
        _assertBlocked();
        _assertState(DEAL, terms, DealState.DealAgreed);
    }

    function test_mediationPayoutCannotReenter() public {
        DealTerms memory terms = _dealIn(DEAL, DealState.ResultsChecked);
        address picked = terms.members.mediator;
        _hostile().arm(address(controller), abi.encodeCall(controller.mediationRejectResult, (DEAL, terms, picked)));
        vm.prank(picked);
        mediation.mediationAcceptResult(DEAL, terms);
        _assertBlocked();
        _assertState(DEAL, terms, DealState.MediationAccepted);
    }

    function _assertBlocked() private view {
        cheats.assertTrue(_hostile().attempted(), "the token tried to re-enter");
        cheats.assertFalse(_hostile().reentered(), "re-entry was refused");
        cheats.assertEq(
            keccak256(_hostile().reentryError()),
            keccak256(abi.encodeWithSelector(ReentrancyGuardTransient.ReentrancyGuardReentrantCall.selector)),
            "refused by the reentrancy guard"
        );
    }
}
