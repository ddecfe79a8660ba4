// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Script} from "forge-std/Script.sol";
import {console2} from "forge-std/console2.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {Strings} from "@openzeppelin/contracts/utils/Strings.sol";
import {Cheats} from "../test/utils/Cheats.sol";
import {LilypadToken} from "../src/LilypadToken.sol";
import {LilypadUsers} from "../src/LilypadUsers.sol";
import {LilypadStorage} from "../src/LilypadStorage.sol";
import {LilypadPayments} from "../src/LilypadPayments.sol";
import {LilypadMediation} from "../src/LilypadMediation.sol";
import {LilypadOnChainJobCreator} from "../src/LilypadOnChainJobCreator.sol";
import {LilypadController} from "../src/LilypadController.sol";
import {ExampleClient} from "../src/ExampleClient.sol";

/// Deploys every Lilypad contract to the chain at --rpc-url and prints the addresses as
/// env lines. See deploy/README.md.
///
/// Reads (env only, so the key never appears in a process's arguments):
///   WEB3_PRIVATE_KEY          deployer key (hex, 0x optional); owns Payments and the job creator
///   LILYPAD_TOKEN_ADDRESS     an existing ERC-20 to pay deals in (default: deploy LilypadToken)
///   LILYPAD_TOKEN_SUPPLY      LilypadToken's supply in wei (default 1e9 LP)
///   LILYPAD_TREASURY          receives slashed collateral (default: the deployer)
///   LILYPAD_JC_OPERATOR       the `lilypad jc` account (default: the deployer)
///   LILYPAD_JOB_DEPOSIT       what an on-chain job request costs, wei (default 2 LP)
///   LILYPAD_REQUEST_TIMEOUT   seconds before an unanswered request can be cancelled (default 1 day)
///
/// Order matters: Storage, Payments and Mediation are created pointing at the address the
/// Controller will get (the deployer's nonce + k); the Controller's constructor then checks
/// every part points back at it, so a wrong prediction fails the deployment instead of
/// leaving a half-wired system.
contract Deploy is Script {
    Cheats internal constant cheats = Cheats(address(uint160(uint256(keccak256("hevm cheat code")))));

    struct Settings {
        uint256 key;
        address deployer;
        address treasury;
        address operator;
        address existingToken;
        uint256 supply;
        uint256 deposit;
        uint256 requestTimeout;
    }

    function run() external {
        Settings memory settings = _settings();
        cheats.startBroadcast(settings.key);
        IERC20 token = settings.existingToken == address(0)
            ? IERC20(address(new LilypadToken(settings.supply)))
            : IERC20(settings.existingToken);
        // Users, Storage, Payments, Mediation, job creator, then the Controller.
        address predicted = cheats.computeCreateAddress(settings.deployer, vm.getNonce(settings.deployer) + 5);
        LilypadUsers users = new LilypadUsers();
        LilypadStorage dealStorage = new LilypadStorage(predicted);
        LilypadPayments payments = new LilypadPayments(predicted, token, settings.treasury, settings.deployer);
        LilypadMediation mediation = new LilypadMediation(predicted);
        LilypadOnChainJobCreator jobCreator = _jobCreator(settings, token, dealStorage);
        LilypadController controller =
            new LilypadController(dealStorage, payments, mediation, address(users), address(jobCreator));
        ExampleClient client = new ExampleClient(jobCreator);
        vm.stopBroadcast();

        _print("WEB3_CONTROLLER_ADDRESS", address(controller));
        _print("WEB3_TOKEN_ADDRESS", address(token));
        _print("WEB3_USERS_ADDRESS", address(users));
        _print("WEB3_STORAGE_ADDRESS", address(dealStorage));
        _print("WEB3_PAYMENTS_ADDRESS", address(payments));
        _print("WEB3_MEDIATION_ADDRESS", address(mediation));
        _print("WEB3_JOBCREATOR_ADDRESS", address(jobCreator));
        _print("WEB3_EXAMPLE_CLIENT_ADDRESS", address(client));
    }

    function _settings() private returns (Settings memory settings) {
        settings.key = cheats.envUint("WEB3_PRIVATE_KEY");
        settings.deployer = vm.addr(settings.key);
        settings.treasury = cheats.envOr("LILYPAD_TREASURY", settings.deployer);
        settings.operator = cheats.envOr("LILYPAD_JC_OPERATOR", settings.deployer);
        settings.existingToken = cheats.envOr("LILYPAD_TOKEN_ADDRESS", address(0));
        settings.supply = cheats.envOr("LILYPAD_TOKEN_SUPPLY", uint256(1_000_000_000 ether));
        settings.deposit = cheats.envOr("LILYPAD_JOB_DEPOSIT", uint256(2 ether));
        settings.requestTimeout = cheats.envOr("LILYPAD_REQUEST_TIMEOUT", uint256(1 days));
    }

    function _jobCreator(Settings memory settings, IERC20 token, LilypadStorage dealStorage)
        private
        returns (LilypadOnChainJobCreator)
    {
        return new LilypadOnChainJobCreator(
            token, dealStorage, settings.operator, settings.deposit, settings.requestTimeout, settings.deployer
        );
    }

    function _print(string memory name, address where) private view {
        console2.log(string.concat(name, "=", Strings.toChecksumHexString(where)));
    }
}
