// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// Cheatcodes forge provides that the npm build of forge-std (1.1.2, whose Vm.sol we use for
/// the rest) predates; used by tests and scripts. Same cheatcode address, declared here by their public signatures.
interface Cheats {
    /// A log recorded after `recordLogs()`.
    struct Log {
        bytes32[] topics;
        bytes data;
        address emitter;
    }

    function getRecordedLogs() external returns (Log[] memory);
    function envUint(string calldata name) external view returns (uint256);
    function startBroadcast(uint256 privateKey) external;
    function envOr(string calldata name, address defaultValue) external view returns (address);
    function envOr(string calldata name, uint256 defaultValue) external view returns (uint256);
    function computeCreateAddress(address deployer, uint256 nonce) external pure returns (address);
    function assertEq(uint256 left, uint256 right, string calldata message) external pure;
    function assertEq(int256 left, int256 right, string calldata message) external pure;
    function assertEq(address left, address right, string calldata message) external pure;
    function assertEq(bytes32 left, bytes32 right, string calldata message) external pure;
    function assertEq(string calldata left, string calldata right, string calldata message) external pure;
    function assertTrue(bool condition, string calldata message) external pure;
    function assertFalse(bool condition, string calldata message) external pure;
    function assertLe(uint256 left, uint256 right, string calldata message) external pure;
    function assertGe(uint256 left, uint256 right, string calldata message) external pure;
    function expectEmit(bool topic1, bool topic2, bool topic3, bool data, address emitter) external;
    function recordLogs() external;
    /// Marks an account and its storage cold again, as at the start of a new transaction.
    function cool(address target) external;
    /// Sets `block.prevrandao`.
    function prevrandao(bytes32 value) external;
    /// Saves the whole EVM state; `revertToState` goes back to it.
    function snapshotState() external returns (uint256 snapshotId);
    function revertToState(uint256 snapshotId) external returns (bool success);
}
