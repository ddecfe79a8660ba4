// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {console2} from "forge-std/console2.sol";
import {LilypadTest} from "./utils/LilypadTest.sol";
import {DealTerms} from "../src/Types.sol";

/// Execution gas of a happy-path job: RP agree, JC agree, addResult, acceptResult.
///
/// Measured on a second deal, after a first one has run, so balances and counters are
/// already non-zero, as on a live network. Before each step every contract is cooled
/// (`vm.cool`), so storage reads and writes cost what they cost in a transaction of their
/// own. Each figure is a `gasleft()` delta around the call: execution gas, plus the ~2,600
/// of the test's own cold call into the Controller (a real transaction pays its 21,000
/// intrinsic gas instead). Refunds are not subtracted. `make gas` prints the table; the
/// Go system's contracts take about 1,190,000 measured the same way.
contract GasTest is LilypadTest {
    /// The target from the foundation issue.
    uint256 internal constant BUDGET = 200_000;

    function test_gas_happyPath() public {
        DealTerms memory terms = _terms();
        bytes32 warmup = keccak256("first deal");
        _submitted(warmup, terms, INSTRUCTIONS);
        vm.prank(jc);
        controller.acceptResult(warmup, terms);

        bytes32 deal = keccak256("second deal");
        uint256 rpAgree = _measureAgree(deal, terms, rp);
        uint256 jcAgree = _measureAgree(deal, terms, jc);

        _coolAll();
        vm.prank(rp);
        uint256 start = gasleft();
        controller.addResult(deal, terms, RESULTS, INSTRUCTIONS);
        uint256 addResult = start - gasleft();

        _coolAll();
        vm.prank(jc);
        start = gasleft();
        controller.acceptResult(deal, terms);
        uint256 acceptResult = start - gasleft();

        uint256 total = rpAgree + jcAgree + addResult + acceptResult;
        console2.log("happy-path execution gas (second deal, cold storage per step)");
        console2.log("  RP agree     ", rpAgree);
        console2.log("  JC agree     ", jcAgree);
        console2.log("  addResult    ", addResult);
        console2.log("  acceptResult ", acceptResult);
        console2.log("  total        ", total);
        console2.log("  budget       ", BUDGET);
        cheats.assertLe(total, BUDGET, "happy-path gas over budget");
    }

    function _measureAgree(bytes32 deal, DealTerms memory terms, address party) private returns (uint256 used) {
        _coolAll();
        vm.prank(party);
        uint256 start = gasleft();
        controller.agree(deal, terms);
        used = start - gasleft();
    }

    function _coolAll() private {
        cheats.cool(address(controller));
        cheats.cool(address(dealStorage));
        cheats.cool(address(payments));
        cheats.cool(address(mediation));
        cheats.cool(address(token));
        cheats.cool(rp);
        cheats.cool(jc);
    }
}
