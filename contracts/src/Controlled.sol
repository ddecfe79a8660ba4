// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @title Controlled
/// @notice Base for the contracts only the Controller may change (Storage, Payments, Mediation).
/// @dev The controller is immutable: it is known before deployment (its CREATE address is
/// predicted) and the Controller's constructor checks that every part points back at it.
/// Immutable wiring costs no storage reads on the hot path and cannot be re-pointed later.
abstract contract Controlled {
    /// The only address allowed to call functions marked `onlyController`.
    address public immutable controller;

    /// `caller` is not the controller.
    error NotController(address caller);
    /// A constructor was given the zero address.
    error ZeroAddress();

    constructor(address controller_) {
        if (controller_ == address(0)) revert ZeroAddress();
        controller = controller_;
    }

    modifier onlyController() {
        if (msg.sender != controller) revert NotController(msg.sender);
        _;
    }
}
