// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @title LilypadUsers
/// @notice A public directory: each address publishes its URL, a metadata CID and the roles
/// it plays, and may list itself under each role. The solver publishes its URL here so
/// every other role can find it from the chain.
/// @dev Self-service only: every mutator acts on `msg.sender`'s own record. Listing is
/// not an endorsement; clients decide whom to trust (e.g. `SERVICE_SOLVER`).
contract LilypadUsers {
    enum Role {
        Solver,
        Mediator,
        ResourceProvider,
        JobCreator
    }

    struct User {
        string metadataCid;
        string url;
        Role[] roles;
    }

    mapping(address => User) private _users;
    mapping(Role => address[]) private _lists;
    /// Position in `_lists[role]` plus one; zero means not listed.
    mapping(Role => mapping(address => uint256)) private _listPosition;

    event UserUpdated(address indexed user, string metadataCid, string url, Role[] roles);
    event UserListed(address indexed user, Role indexed role);
    event UserUnlisted(address indexed user, Role indexed role);

    /// The caller does not declare `role` (see updateUser).
    error RoleNotHeld(address user, Role role);
    /// The caller is already listed under `role`.
    error AlreadyListed(address user, Role role);
    /// The caller is not listed under `role`.
    error NotListed(address user, Role role);

    /// The record of `user` (empty if it never registered).
    function getUser(address user) external view returns (User memory) {
        return _users[user];
    }

    /// Every address listed under `role`.
    function showUsersInList(Role role) external view returns (address[] memory) {
        return _lists[role];
    }

    /// Whether `user` is listed under `role`.
    function isListed(address user, Role role) public view returns (bool) {
        return _listPosition[role][user] != 0;
    }

    /// Replaces the caller's record. Dropping a role also unlists the caller from it.
    function updateUser(string calldata metadataCid, string calldata url, Role[] calldata roles) external {
        Role[] storage previous = _users[msg.sender].roles;
        for (uint256 i; i < previous.length; ++i) {
            Role role = previous[i];
            if (!_contains(roles, role) && isListed(msg.sender, role)) _unlist(msg.sender, role);
        }
        _users[msg.sender] = User({metadataCid: metadataCid, url: url, roles: roles});
        emit UserUpdated(msg.sender, metadataCid, url, roles);
    }

    /// Lists the caller under a role its record declares.
    function addUserToList(Role role) external {
        if (!_contains(_users[msg.sender].roles, role)) revert RoleNotHeld(msg.sender, role);
        if (isListed(msg.sender, role)) revert AlreadyListed(msg.sender, role);
        _lists[role].push(msg.sender);
        _listPosition[role][msg.sender] = _lists[role].length;
        emit UserListed(msg.sender, role);
    }

    /// Removes the caller from a role's list.
    function removeUserFromList(Role role) external {
        if (!isListed(msg.sender, role)) revert NotListed(msg.sender, role);
        _unlist(msg.sender, role);
    }

    function _unlist(address user, Role role) private {
        address[] storage list = _lists[role];
        uint256 index = _listPosition[role][user] - 1;
        address last = list[list.length - 1];
        list[index] = last;
        _listPosition[role][last] = index + 1;
        list.pop();
        delete _listPosition[role][user];
        emit UserUnlisted(user, role);
    }

    function _contains(Role[] memory roles, Role role) private pure returns (bool) {
        for (uint256 i; i < roles.length; ++i) {
            if (roles[i] == role) return true;
        }
        return false;
    }
}
