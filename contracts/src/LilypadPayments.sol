// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Controlled} from "./Controlled.sol";

/// @title LilypadPayments
/// @notice Holds every deal's escrow, in one ERC-20 chosen at deployment.
/// @dev Only the Controller moves money, and only as the money table in README.md says.
/// Parties approve this contract once; the Controller then pulls deposits with
/// `transferFrom(party, this, amount)` — the party is always the caller of the Controller,
/// never `tx.origin`. Where one step both takes from and returns to the same party
/// (addResult, checkResult), only the difference moves: the balances end the same,
/// for one token transfer instead of two. Slashed funds go to the treasury.
///
/// The token must move exactly the amounts asked: fee-on-transfer and rebasing tokens
/// would break the escrow's accounting and are not supported.
contract LilypadPayments is Controlled, Ownable {
    using SafeERC20 for IERC20;

    /// The ERC-20 every deal is paid in.
    IERC20 public immutable token;
    /// Where slashed collateral goes.
    address public treasury;

    event TreasuryChanged(address indexed previous, address indexed current);
    /// `amount` was slashed from a party of the deal and sent to the treasury.
    event Slashed(bytes32 indexed dealKey, address indexed party, uint256 amount);

    constructor(address controller_, IERC20 token_, address treasury_, address owner_)
        Controlled(controller_)
        Ownable(owner_)
    {
        if (address(token_) == address(0) || treasury_ == address(0)) revert ZeroAddress();
        token = token_;
        treasury = treasury_;
    }

    /// Points slashed funds at a new treasury.
    function setTreasury(address treasury_) external onlyOwner {
        if (treasury_ == address(0)) revert ZeroAddress();
        emit TreasuryChanged(treasury, treasury_);
        treasury = treasury_;
    }

    /// `party` pays `paidIn` into escrow and receives `paidOut` from it, as one net transfer.
    function exchange(address party, uint256 paidIn, uint256 paidOut) external onlyController {
        if (paidIn > paidOut) {
            token.safeTransferFrom(party, address(this), paidIn - paidOut);
        } else if (paidOut > paidIn) {
            token.safeTransfer(party, paidOut - paidIn);
        }
    }

    /// Pays `amount` out of escrow to `to`.
    function pay(address to, uint256 amount) external onlyController {
        if (amount != 0) token.safeTransfer(to, amount);
    }

    /// Pays two parties out of escrow in one call (the common settlement shape).
    function payBoth(address first, uint256 firstAmount, address second, uint256 secondAmount) external onlyController {
        if (firstAmount != 0) token.safeTransfer(first, firstAmount);
        if (secondAmount != 0) token.safeTransfer(second, secondAmount);
    }

    /// Sends `amount` that `party` staked on the deal to the treasury.
    function slash(bytes32 dealKey, address party, uint256 amount) external onlyController {
        if (amount == 0) return;
        emit Slashed(dealKey, party, amount);
        token.safeTransfer(treasury, amount);
    }
}
