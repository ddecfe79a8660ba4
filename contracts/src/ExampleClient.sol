// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {LilypadOnChainJobCreator, ILilypadJobClient} from "./LilypadOnChainJobCreator.sol";

/// @title ExampleClient
/// @notice A contract that asks Lilypad to run `cowsay:v0.0.1` and stores the results CID.
/// Shows how a dapp uses LilypadOnChainJobCreator.
/// @dev The user approves this contract for the job creator's `requiredDeposit`; the client
/// pulls it, approves the job creator and asks for the job, with the user as refund address.
/// Only the job creator contract may report results or failures.
contract ExampleClient is ILilypadJobClient {
    using SafeERC20 for IERC20;

    string public constant MODULE = "cowsay:v0.0.1";

    LilypadOnChainJobCreator public immutable jobCreator;

    /// Digest of the results CID of each finished job (zero while pending or failed).
    mapping(uint256 jobId => bytes32 resultsId) public jobResults;
    /// The deal that ran each finished job.
    mapping(uint256 jobId => bytes32 dealKey) public jobDeals;
    /// Why a job failed (empty unless it did).
    mapping(uint256 jobId => string reason) public jobFailures;

    event JobCreated(uint256 indexed jobId, address indexed requester, string message);
    event JobCompleted(uint256 indexed jobId, bytes32 dealKey, bytes32 resultsId);
    event JobFailed(uint256 indexed jobId, string reason);

    /// Only the job creator contract reports results.
    error NotJobCreator(address caller);

    constructor(LilypadOnChainJobCreator jobCreator_) {
        jobCreator = jobCreator_;
    }

    /// Asks for `cowsay` to say `message`; the caller pays the deposit.
    function runCowsay(string calldata message) external returns (uint256 jobId) {
        IERC20 token = jobCreator.token();
        uint256 deposit = jobCreator.requiredDeposit();
        token.safeTransferFrom(msg.sender, address(this), deposit);
        token.forceApprove(address(jobCreator), deposit);
        string[] memory inputs = new string[](1);
        inputs[0] = string.concat("Message=", message);
        jobId = jobCreator.runJob(MODULE, inputs, msg.sender);
        emit JobCreated(jobId, msg.sender, message);
    }

    /// The results CID digest of a finished job.
    function getJobResult(uint256 jobId) external view returns (bytes32) {
        return jobResults[jobId];
    }

    function submitResults(uint256 jobId, bytes32 dealKey, bytes32 resultsId) external override {
        if (msg.sender != address(jobCreator)) revert NotJobCreator(msg.sender);
        jobResults[jobId] = resultsId;
        jobDeals[jobId] = dealKey;
        emit JobCompleted(jobId, dealKey, resultsId);
    }

    function jobFailed(uint256 jobId, string calldata reason) external override {
        if (msg.sender != address(jobCreator)) revert NotJobCreator(msg.sender);
        jobFailures[jobId] = reason;
        emit JobFailed(jobId, reason);
    }
}
