// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Vm} from "forge-std/Vm.sol";
import {console2} from "forge-std/console2.sol";
import {LilypadTest} from "./utils/LilypadTest.sol";
import {LilypadController} from "../src/LilypadController.sol";
import {LilypadStorage} from "../src/LilypadStorage.sol";
import {LilypadMediation} from "../src/LilypadMediation.sol";
import {LilypadToken} from "../src/LilypadToken.sol";
import {Agreement, DealMembers, DealPricing, DealState, DealTerms, DealTimeout, DealTimeouts} from "../src/Types.sol";

/// Drives many deals at once through random legal steps, random amounts and random waits,
/// and keeps, per deal, a ghost ledger of what actually moved in or out of escrow.
contract DealHandler {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    LilypadController internal immutable controller;
    LilypadStorage internal immutable dealStorage;
    LilypadMediation internal immutable mediation;
    LilypadToken internal immutable token;
    address internal immutable escrow;
    address[2] internal resourceProviders;
    address[2] internal jobCreators;
    address[2] internal mediators;
    address internal solver;

    bytes32[] public dealIds;
    mapping(bytes32 dealId => DealTerms) internal _terms;
    /// Net tokens each deal's calls moved into escrow (out is negative).
    mapping(bytes32 dealId => int256) public ghostEscrow;
    uint256 public calls;

    constructor(
        LilypadController controller_,
        address[2] memory resourceProviders_,
        address[2] memory jobCreators_,
        address[2] memory mediators_,
        address solver_
    ) {
        controller = controller_;
        dealStorage = controller_.dealStorage();
        mediation = controller_.mediation();
        token = LilypadToken(address(controller_.token()));
        escrow = address(controller_.payments());
        resourceProviders = resourceProviders_;
        jobCreators = jobCreators_;
        mediators = mediators_;
        solver = solver_;
    }

    function dealCount() external view returns (uint256) {
        return dealIds.length;
    }

    function termsOf(bytes32 dealId) external view returns (DealTerms memory) {
        return _terms[dealId];
    }

    function keyOf(bytes32 dealId) public view returns (bytes32) {
        return controller.dealKey(dealId, _terms[dealId]);
    }

    // ------------------------------------------------------------------ actions

    /// A new deal with random terms; one party (chosen by `seed`) agrees. While a few deals
    /// are open already, moves one of them on instead, so deals reach every state.
    function open(uint256 seed) external {
        if (_openDeals() >= 3) return advance(seed, seed >> 128);
        bytes32 dealId = keccak256(abi.encode("invariant deal", dealIds.length));
        DealTerms storage terms = _terms[dealId];
        terms.members.solver = solver;
        terms.members.resourceProvider = resourceProviders[seed % 2];
        terms.members.jobCreator = jobCreators[(seed >> 1) % 2];
        terms.members.mediator = mediators[(seed >> 2) % 2];
        uint256 price = (seed >> 8) % 1e15;
        uint256 maxInstructions = 1 + (seed >> 64) % 1000;
        terms.pricing = DealPricing({
            instructionPrice: price,
            paymentCollateral: price * maxInstructions + (seed >> 96) % 1e15,
            resultsCollateralMultiple: (seed >> 128) % 5,
            mediationFee: (seed >> 136) % 1e15
        });
        terms.timeouts = DealTimeouts({
            agree: DealTimeout({timeout: 100 + (seed >> 160) % 300, collateral: 0}),
            submitResults: DealTimeout({timeout: 100 + (seed >> 176) % 300, collateral: 1 + (seed >> 192) % 1e15}),
            judgeResults: DealTimeout({timeout: 100 + (seed >> 208) % 300, collateral: (seed >> 216) % 1e15}),
            mediateResults: DealTimeout({timeout: 100 + (seed >> 240) % 300, collateral: 0})
        });
        dealIds.push(dealId);
        address first = (seed >> 4) % 2 == 0 ? terms.members.resourceProvider : terms.members.jobCreator;
        _act(dealId, first, abi.encodeCall(controller.agree, (dealId, terms)));
    }

    /// Takes the chosen open deal one legal step further: usually the next step of the
    /// protocol (accept or dispute, mediator accepts or rejects, chosen by `choice`); one
    /// time in six, time runs past the step's deadline and the entitled party calls the
    /// timeout instead.
    function advance(uint256 index, uint256 choice) public {
        // The fuzzer favours small and edge values; hash them so every deal and every
        // branch is as likely.
        index = uint256(keccak256(abi.encode(index, calls)));
        choice = uint256(keccak256(abi.encode(choice, calls)));
        (bytes32 dealId, Agreement memory a, bool found) = _pickOpen(index);
        if (!found) return;
        DealTerms storage terms = _terms[dealId];
        uint256 window = a.state == DealState.DealNegotiating
            ? terms.timeouts.agree.timeout
            : a.state == DealState.DealAgreed
                ? terms.timeouts.submitResults.timeout
                : a.state == DealState.ResultsSubmitted
                    ? terms.timeouts.judgeResults.timeout
                    : terms.timeouts.mediateResults.timeout;
        uint256 deadline = a.stateSince + window;
        if (choice % 6 == 0 || block.timestamp > deadline) {
            if (block.timestamp <= deadline) vm.warp(deadline + 1);
            return _timeout(dealId, a, terms);
        }
        bool yes = (choice >> 2) % 2 == 0;
        if (a.state == DealState.DealNegotiating) {
            address second = a.resourceProviderAgreed ? terms.members.jobCreator : terms.members.resourceProvider;
            _act(dealId, second, abi.encodeCall(controller.agree, (dealId, terms)));
        } else if (a.state == DealState.DealAgreed) {
            uint256 price = terms.pricing.instructionPrice;
            uint256 affordable = price == 0 ? 1000 : terms.pricing.paymentCollateral / price;
            uint64 count = uint64((choice >> 8) % (affordable + 1));
            bytes32 results = keccak256(abi.encode(dealId));
            _act(
                dealId,
                terms.members.resourceProvider,
                abi.encodeCall(controller.addResult, (dealId, terms, results, count))
            );
        } else if (a.state == DealState.ResultsSubmitted) {
            bytes memory call = yes
                ? abi.encodeCall(controller.acceptResult, (dealId, terms))
                : abi.encodeCall(controller.checkResult, (dealId, terms));
            _act(dealId, terms.members.jobCreator, call);
        } else {
            address picked = terms.members.mediator;
            bytes memory call = yes
                ? abi.encodeCall(mediation.mediationAcceptResult, (dealId, terms))
                : abi.encodeCall(mediation.mediationRejectResult, (dealId, terms));
            _actOn(dealId, picked, address(mediation), call);
        }
    }

    /// Calls the timeout the deal's state allows (it is due), as a party or as an outsider:
    /// anyone may end a deal whose deadline passed.
    function _timeout(bytes32 dealId, Agreement memory a, DealTerms storage terms) private {
        DealMembers storage m = terms.members;
        address[4] memory callers = [m.jobCreator, m.resourceProvider, m.mediator, address(0xCA11E4)];
        address caller = callers[uint256(keccak256(abi.encode(dealId, calls))) % 4];
        _act(dealId, caller, timeoutCall(dealId, a.state));
    }

    /// The call that ends deal `dealId`, in `state`, once its deadline passed.
    function timeoutCall(bytes32 dealId, DealState state) public view returns (bytes memory) {
        DealTerms storage terms = _terms[dealId];
        if (state == DealState.DealNegotiating) return abi.encodeCall(controller.timeoutAgree, (dealId, terms));
        if (state == DealState.DealAgreed) return abi.encodeCall(controller.timeoutSubmitResults, (dealId, terms));
        if (state == DealState.ResultsSubmitted) {
            return abi.encodeCall(controller.timeoutJudgeResults, (dealId, terms));
        }
        return abi.encodeCall(controller.timeoutMediateResults, (dealId, terms));
    }

    function wait(uint256 seconds_) external {
        vm.warp(block.timestamp + seconds_ % 50);
    }

    // ------------------------------------------------------------------ internals

    function _openDeals() private view returns (uint256 open_) {
        for (uint256 i; i < dealIds.length; ++i) {
            if (_isOpen(dealStorage.stateOf(keyOf(dealIds[i])))) ++open_;
        }
    }

    function _isOpen(DealState state) private pure returns (bool) {
        return state == DealState.DealNegotiating || state == DealState.DealAgreed
            || state == DealState.ResultsSubmitted || state == DealState.ResultsChecked;
    }

    /// The first deal that is still open, starting from `index` (wrapping around).
    function _pickOpen(uint256 index) private view returns (bytes32 dealId, Agreement memory a, bool found) {
        uint256 count = dealIds.length;
        for (uint256 i; i < count; ++i) {
            dealId = dealIds[(index % count + i) % count];
            a = dealStorage.agreement(keyOf(dealId));
            if (_isOpen(a.state)) return (dealId, a, true);
        }
        return (dealId, a, false);
    }

    function _act(bytes32 dealId, address caller, bytes memory call) private {
        _actOn(dealId, caller, address(controller), call);
    }

    /// Makes one call as `caller` and books the escrow balance change against `dealId`.
    function _actOn(bytes32 dealId, address caller, address target, bytes memory call) private {
        uint256 before = token.balanceOf(escrow);
        vm.prank(caller);
        (bool ok, bytes memory returned) = target.call(call);
        if (!ok) {
            // Every action above is legal by construction: a revert is a bug.
            assembly {
                revert(add(returned, 32), mload(returned))
            }
        }
        ++calls;
        // Balances stay far below 2**255 (the whole supply is 1e27).
        // forge-lint: disable-next-line(unsafe-typecast)
        ghostEscrow[dealId] += int256(token.balanceOf(escrow)) - int256(before);
    }
}

/// Invariants over random sequences of deals and steps (10,000+ calls in CI's profile):
/// Payments' token balance is exactly what the open deals hold in escrow, every deal holds
/// exactly what the money table says for its state, and terminal deals hold nothing.
contract InvariantTest is LilypadTest {
    DealHandler internal handler;

    function setUp() public override {
        super.setUp();
        address rp2 = vm.addr(0xB0B);
        address jc2 = vm.addr(0xCA7);
        address[2] memory extra = [rp2, jc2];
        for (uint256 i; i < extra.length; ++i) {
            require(token.transfer(extra[i], FUNDS), "funding failed");
            vm.prank(extra[i]);
            token.approve(address(payments), type(uint256).max);
        }
        handler = new DealHandler(controller, [rp, rp2], [jc, jc2], [mediator1, mediator2], solver);
    }

    /// Only the handler is called at random (forge reads this function).
    function targetContracts() public view returns (address[] memory targets) {
        targets = new address[](1);
        targets[0] = address(handler);
    }

    function invariant_escrowBalanceIsTheSumOfOpenDeals() public view {
        uint256 sum;
        for (uint256 i; i < handler.dealCount(); ++i) {
            sum += _expectedEscrow(handler.dealIds(i));
        }
        cheats.assertEq(token.balanceOf(address(payments)), sum, "Payments balance == sum of open deals' escrow");
    }

    function invariant_eachDealHoldsWhatItsStateSays() public view {
        for (uint256 i; i < handler.dealCount(); ++i) {
            bytes32 dealId = handler.dealIds(i);
            uint256 expected = _expectedEscrow(dealId);
            cheats.assertEq(handler.ghostEscrow(dealId), _i(expected), "deal's escrow matches its state");
            if (_isTerminal(dealStorage.stateOf(handler.keyOf(dealId)))) {
                cheats.assertEq(handler.ghostEscrow(dealId), 0, "terminal deal holds nothing");
            }
        }
    }

    /// From whatever state the campaign reached, a caller who is none of the deal's members
    /// ends every open deal by waiting out its deadlines and calling the timeouts, and then
    /// escrow holds nothing: no deal can keep money locked. (Explored on a snapshot, which is
    /// thrown away afterwards.)
    function invariant_anyoneCanEndEveryDeal() public {
        uint256 snapshot = cheats.snapshotState();
        address outsider = vm.addr(0x0DD);
        for (uint256 i; i < handler.dealCount(); ++i) {
            bytes32 dealId = handler.dealIds(i);
            bytes32 key = handler.keyOf(dealId);
            DealState state = dealStorage.stateOf(key);
            if (_isTerminal(state)) continue;
            // Every timeout is at most 399 s and ends the deal.
            vm.warp(block.timestamp + 400);
            vm.prank(outsider);
            (bool ok, bytes memory returned) = address(controller).call(handler.timeoutCall(dealId, state));
            if (!ok) {
                assembly {
                    revert(add(returned, 32), mload(returned))
                }
            }
            cheats.assertTrue(_isTerminal(dealStorage.stateOf(key)), "an outsider ended the deal");
        }
        cheats.assertEq(token.balanceOf(address(payments)), 0, "all escrow paid out");
        cheats.assertEq(token.balanceOf(outsider), 0, "the outsider gained nothing");
        cheats.revertToState(snapshot);
    }

    /// After each run: how many deals ended in each state (shown with -vv), so a campaign
    /// that never reaches some state is visible.
    function afterInvariant() public view {
        uint256[11] memory reached;
        for (uint256 i; i < handler.dealCount(); ++i) {
            ++reached[uint256(dealStorage.stateOf(handler.keyOf(handler.dealIds(i))))];
        }
        console2.log("deals per state 0..10 after", handler.calls(), "calls:");
        for (uint256 s; s < reached.length; ++s) {
            console2.log("  state", s, reached[s]);
        }
    }

    function _isTerminal(DealState state) private pure returns (bool) {
        return state == DealState.ResultsAccepted || state >= DealState.MediationAccepted;
    }

    /// What the money table says a deal holds in escrow in its current state.
    function _expectedEscrow(bytes32 dealId) private view returns (uint256) {
        DealTerms memory t = handler.termsOf(dealId);
        Agreement memory a = dealStorage.agreement(handler.keyOf(dealId));
        uint256 p = t.pricing.paymentCollateral;
        uint256 cs = t.timeouts.submitResults.collateral;
        uint256 cj = t.timeouts.judgeResults.collateral;
        uint256 r = t.pricing.instructionPrice * a.instructionCount * t.pricing.resultsCollateralMultiple;
        if (a.state == DealState.DealNegotiating) {
            return (a.resourceProviderAgreed ? cs : 0) + (a.jobCreatorAgreed ? p + cj : 0);
        }
        if (a.state == DealState.DealAgreed) return cs + p + cj;
        if (a.state == DealState.ResultsSubmitted) return p + cj + r + cs;
        if (a.state == DealState.ResultsChecked) return p + t.pricing.mediationFee + r + cs;
        return 0;
    }
}
