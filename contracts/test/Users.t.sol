// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {LilypadTest} from "./utils/LilypadTest.sol";
import {LilypadUsers} from "../src/LilypadUsers.sol";

/// The directory: self-service records, role lists kept consistent with declared roles.
contract UsersTest is LilypadTest {
    function _roles(LilypadUsers.Role a) private pure returns (LilypadUsers.Role[] memory roles) {
        roles = new LilypadUsers.Role[](1);
        roles[0] = a;
    }

    function _roles(LilypadUsers.Role a, LilypadUsers.Role b) private pure returns (LilypadUsers.Role[] memory roles) {
        roles = new LilypadUsers.Role[](2);
        roles[0] = a;
        roles[1] = b;
    }

    function test_solverPublishesItsUrl() public {
        vm.prank(solver);
        users.updateUser("QmMetadata", "http://127.0.0.1:8080", _roles(LilypadUsers.Role.Solver));
        vm.prank(solver);
        users.addUserToList(LilypadUsers.Role.Solver);
        LilypadUsers.User memory record = users.getUser(solver);
        cheats.assertEq(record.url, "http://127.0.0.1:8080", "url");
        cheats.assertEq(record.metadataCid, "QmMetadata", "metadata");
        cheats.assertEq(record.roles.length, 1, "one role");
        address[] memory solvers = users.showUsersInList(LilypadUsers.Role.Solver);
        cheats.assertEq(solvers.length, 1, "one solver listed");
        cheats.assertEq(solvers[0], solver, "the solver");
    }

    function test_listingNeedsTheRoleAndHappensOnce() public {
        vm.prank(rp);
        vm.expectRevert(
            abi.encodeWithSelector(LilypadUsers.RoleNotHeld.selector, rp, LilypadUsers.Role.ResourceProvider)
        );
        users.addUserToList(LilypadUsers.Role.ResourceProvider);

        vm.startPrank(rp);
        users.updateUser("", "", _roles(LilypadUsers.Role.ResourceProvider));
        users.addUserToList(LilypadUsers.Role.ResourceProvider);
        vm.expectRevert(
            abi.encodeWithSelector(LilypadUsers.AlreadyListed.selector, rp, LilypadUsers.Role.ResourceProvider)
        );
        users.addUserToList(LilypadUsers.Role.ResourceProvider);
        vm.stopPrank();
    }

    function test_removeKeepsTheOthersListed() public {
        address[3] memory mediators = [mediator1, mediator2, stranger];
        for (uint256 i; i < mediators.length; ++i) {
            vm.startPrank(mediators[i]);
            users.updateUser("", "", _roles(LilypadUsers.Role.Mediator));
            users.addUserToList(LilypadUsers.Role.Mediator);
            vm.stopPrank();
        }
        vm.prank(mediator1);
        users.removeUserFromList(LilypadUsers.Role.Mediator);
        address[] memory listed = users.showUsersInList(LilypadUsers.Role.Mediator);
        cheats.assertEq(listed.length, 2, "two left");
        cheats.assertFalse(users.isListed(mediator1, LilypadUsers.Role.Mediator), "removed");
        cheats.assertTrue(users.isListed(mediator2, LilypadUsers.Role.Mediator), "still listed");
        cheats.assertTrue(users.isListed(stranger, LilypadUsers.Role.Mediator), "still listed");
        cheats.assertTrue(listed[0] != mediator1 && listed[1] != mediator1, "not in the list");
        // The moved entry is still removable (its position was updated).
        vm.prank(stranger);
        users.removeUserFromList(LilypadUsers.Role.Mediator);
        cheats.assertEq(users.showUsersInList(LilypadUsers.Role.Mediator).length, 1, "one left");
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(LilypadUsers.NotListed.selector, stranger, LilypadUsers.Role.Mediator));
        users.removeUserFromList(LilypadUsers.Role.Mediator);
    }

    function test_droppingARoleUnlistsIt() public {
        vm.startPrank(rp);
        users.updateUser("", "", _roles(LilypadUsers.Role.ResourceProvider, LilypadUsers.Role.Mediator));
        users.addUserToList(LilypadUsers.Role.ResourceProvider);
        users.addUserToList(LilypadUsers.Role.Mediator);
        users.updateUser("", "http://rp", _roles(LilypadUsers.Role.ResourceProvider));
        vm.stopPrank();
        cheats.assertTrue(users.isListed(rp, LilypadUsers.Role.ResourceProvider), "kept role still listed");
        cheats.assertFalse(users.isListed(rp, LilypadUsers.Role.Mediator), "dropped role unlisted");
        cheats.assertEq(users.showUsersInList(LilypadUsers.Role.Mediator).length, 0, "mediator list empty");
    }

    function test_nobodyEditsSomeoneElsesRecord() public {
        vm.prank(solver);
        users.updateUser("", "http://real-solver", _roles(LilypadUsers.Role.Solver));
        vm.prank(stranger);
        users.updateUser("", "http://fake", _roles(LilypadUsers.Role.Solver));
        cheats.assertEq(users.getUser(solver).url, "http://real-solver", "the solver's own record is untouched");
        cheats.assertEq(users.getUser(stranger).url, "http://fake", "the stranger only wrote its own");
    }
}
