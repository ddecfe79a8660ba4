// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title LilypadToken
/// @notice The "Lilypad Token" (LP), an ordinary fixed-supply ERC-20.
/// @dev The protocol does not depend on it: Payments escrows whichever ERC-20 the deployer picks.
/// There is no escrow logic and no privileged role in the token itself.
contract LilypadToken is ERC20 {
    /// Mints `initialSupply` (in wei, 18 decimals) to the deployer.
    constructor(uint256 initialSupply) ERC20("Lilypad Token", "LP") {
        _mint(msg.sender, initialSupply);
    }
}
