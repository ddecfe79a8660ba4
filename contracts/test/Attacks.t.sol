// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Cheats} from "./utils/Cheats.sol";
import {LilypadTest} from "./utils/LilypadTest.sol";
import {LilypadController} from "../src/LilypadController.sol";
import {LilypadMediation} from "../src/LilypadMediation.sol";
import {LilypadToken} from "../src/LilypadToken.sol";
import {DealState, DealTerms} from "../src/Types.sol";

/// Attacks on who decides and who pays, each performed as an attacker would and shown to
/// fail, with the balances to the wei. (The on-chain job creator's attacks are in JobCreator.)
contract AttacksTest is LilypadTest {
    // Small constants: the casts cannot truncate.
    // forge-lint: disable-start(unsafe-typecast)
    int256 internal constant P = int256(PAYMENT_COLLATERAL);
    int256 internal constant CS = int256(SUBMIT_COLLATERAL);
    int256 internal constant CJ = int256(JUDGE_COLLATERAL);
    int256 internal constant M = int256(MEDIATION_FEE);
    int256 internal constant COST = int256(PRICE) * int256(uint256(INSTRUCTIONS));

    // forge-lint: disable-end(unsafe-typecast)

    /// A contract job creator that disputes only in a block where the old on-chain draw
    /// (`keccak256(prevrandao, dealKey) % mediators`) would name its accomplice.
    /// The mediator is now part of the terms, so the timing buys nothing: in every deal the
    /// dispute goes to the terms' mediator, the accomplice cannot rule, and the RP is paid.
    function test_attack_timingTheDisputeToPickTheMediator_picksNobody() public {
        TimingJobCreator attacker = new TimingJobCreator(controller);
        require(token.transfer(address(attacker), 1 ether), "funding failed");
        attacker.approve(address(payments));
        address accomplice = mediator2;
        uint256 accompliceBefore = token.balanceOf(accomplice);
        for (uint256 deal; deal < 8; ++deal) {
            bytes32 dealId = keccak256(abi.encode("timed", deal));
            DealTerms memory terms = _terms();
            terms.members.jobCreator = address(attacker);
            vm.prank(rp);
            controller.agree(dealId, terms);
            attacker.agree(dealId, terms);
            vm.prank(rp);
            controller.addResult(dealId, terms, RESULTS, INSTRUCTIONS);
            int256 rpBefore = _i(token.balanceOf(rp));

            cheats.recordLogs();
            bool disputed;
            for (uint256 blockNumber = 1; blockNumber <= 15 && !disputed; ++blockNumber) {
                vm.roll(block.number + 1);
                cheats.prevrandao(keccak256(abi.encode(deal, blockNumber)));
                disputed = attacker.disputeIfAccomplice(dealId, terms, accomplice, mediator1);
            }
            cheats.assertTrue(disputed, "the attacker found a block it liked");
            cheats.assertEq(_requestedMediator(), mediator1, "the dispute went to the terms' mediator");

            bytes32 key = _key(dealId, terms);
            vm.prank(accomplice);
            vm.expectRevert(abi.encodeWithSelector(LilypadMediation.NotMediator.selector, key, accomplice));
            mediation.mediationRejectResult(dealId, terms);
            vm.prank(mediator1);
            mediation.mediationAcceptResult(dealId, terms);
            cheats.assertEq(
                _i(token.balanceOf(rp)) - rpBefore,
                COST + COST * int256(MULTIPLE) + CS,
                "the RP is paid and keeps its collaterals"
            );
        }
        cheats.assertEq(token.balanceOf(accomplice), accompliceBefore, "the accomplice earned nothing");
    }

    /// An RP that did nothing submits garbage claiming zero instructions at the deadline.
    /// Its submit-results collateral stays staked, so the rejected result costs it Cs
    /// (before, it got Cs back at submission and a rejection slashed nothing).
    function test_attack_garbageWithZeroInstructions_isSlashedOnRejection() public {
        bytes32 dealId = keccak256("no work");
        DealTerms memory terms = _terms();
        Ledger memory before = _balances();
        _agreeBoth(dealId, terms);
        vm.warp(block.timestamp + SUBMIT_TIMEOUT);
        vm.prank(rp);
        controller.addResult(dealId, terms, keccak256("garbage"), 0);
        vm.prank(jc);
        controller.checkResult(dealId, terms);
        vm.prank(terms.members.mediator);
        mediation.mediationRejectResult(dealId, terms);
        _assertDeltas(
            before,
            Ledger({jobCreator: -M, resourceProvider: -CS, mediator1: M, mediator2: 0, treasury: CS, escrow: 0}),
            "whole deal: garbage rejected"
        );
    }

    /// The RP never ends a deal whose judgement never came (it may have nothing to gain).
    /// The job creator, or anyone, ends it after the deadline with the same payouts, so the
    /// job creator's escrow is not locked forever.
    function test_attack_resourceProviderNeverEndsTheDeal_theJobCreatorDoes() public {
        bytes32 dealId = keccak256("abandoned");
        DealTerms memory terms = _dealIn(dealId, DealState.ResultsSubmitted);
        Ledger memory before = _balances();
        vm.warp(block.timestamp + JUDGE_TIMEOUT + 1);
        vm.prank(jc);
        controller.timeoutJudgeResults(dealId, terms);
        _assertDeltas(
            before,
            Ledger({
                jobCreator: P - COST,
                resourceProvider: COST + COST * int256(MULTIPLE) + CS,
                mediator1: 0,
                mediator2: 0,
                treasury: CJ,
                escrow: -(P + CJ + COST * int256(MULTIPLE) + CS)
            }),
            "timeoutJudgeResults called by the job creator"
        );
        cheats.assertEq(token.balanceOf(address(payments)), 0, "nothing stays locked");
    }

    /// The mediator named by the MediationRequested log just recorded.
    function _requestedMediator() private returns (address mediator) {
        Cheats.Log[] memory logs = cheats.getRecordedLogs();
        bytes32 requested = keccak256("MediationRequested(bytes32,address)");
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].emitter == address(mediation) && logs[i].topics[0] == requested) {
                mediator = address(uint160(uint256(logs[i].topics[2])));
            }
        }
    }
}

/// A job creator contract that times its dispute, as a contract can: it computes the old
/// on-chain draw in the same transaction and disputes only when it favours its accomplice.
contract TimingJobCreator {
    LilypadController internal immutable controller;

    constructor(LilypadController controller_) {
        controller = controller_;
    }

    function approve(address payments) external {
        LilypadToken(address(controller.token())).approve(payments, type(uint256).max);
    }

    function agree(bytes32 dealId, DealTerms calldata terms) external {
        controller.agree(dealId, terms);
    }

    /// Disputes if the draw over [honest, accomplice] in this block names the accomplice.
    function disputeIfAccomplice(bytes32 dealId, DealTerms calldata terms, address accomplice, address honest)
        external
        returns (bool disputed)
    {
        address[2] memory list = [honest, accomplice];
        bytes32 key = controller.dealKey(dealId, terms);
        address pick = list[uint256(keccak256(abi.encode(block.prevrandao, key))) % 2];
        if (pick != accomplice) return false;
        controller.checkResult(dealId, terms);
        return true;
    }
}
