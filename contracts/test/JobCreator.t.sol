// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Cheats} from "./utils/Cheats.sol";
import {LilypadTest} from "./utils/LilypadTest.sol";
import {DealState, DealTerms} from "../src/Types.sol";
import {ExampleClient} from "../src/ExampleClient.sol";
import {LilypadOnChainJobCreator} from "../src/LilypadOnChainJobCreator.sol";

/// Smart contracts asking for jobs: the example client's request, the operator's report,
/// the callback, refunds on failure and cancellation, and forged callbacks refused.
contract JobCreatorTest is LilypadTest {
    uint256 internal constant DEPOSIT = 2 ether;
    address internal user;

    function setUp() public override {
        super.setUp();
        user = vm.addr(0xD0D0);
        require(token.transfer(user, 10 ether), "funding failed");
        vm.prank(user);
        token.approve(address(client), type(uint256).max);
    }

    /// The user asks the client for a cowsay; returns the job id.
    function _request(string memory message) private returns (uint256 jobId) {
        vm.prank(user);
        jobId = client.runCowsay(message);
    }

    /// A deal run by the operator (as job creator) that ends in ResultsAccepted.
    function _settledDeal(bytes32 dealId) private returns (bytes32 key) {
        DealTerms memory terms = _terms();
        terms.members.jobCreator = operator;
        vm.prank(operator);
        token.approve(address(payments), type(uint256).max);
        _submitted(dealId, terms, INSTRUCTIONS);
        vm.prank(operator);
        controller.acceptResult(dealId, terms);
        key = _key(dealId, terms);
    }

    function test_runCowsay_emitsJobAddedWithTheMessageAndTakesTheDeposit() public {
        uint256 before = token.balanceOf(user);
        cheats.recordLogs();
        uint256 jobId = _request("moo");
        Cheats.Log[] memory logs = cheats.getRecordedLogs();
        bytes32 jobAdded = keccak256("JobAdded(uint256,address,address,string,string[],uint256)");
        bool found;
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].emitter != address(jobCreator) || logs[i].topics[0] != jobAdded) continue;
            found = true;
            cheats.assertEq(uint256(logs[i].topics[1]), jobId, "job id");
            cheats.assertEq(address(uint160(uint256(logs[i].topics[2]))), address(client), "client");
            (address refundTo, string memory module, string[] memory inputs, uint256 deposit) =
                abi.decode(logs[i].data, (address, string, string[], uint256));
            cheats.assertEq(refundTo, user, "refunds go to the user");
            cheats.assertEq(module, "cowsay:v0.0.1", "module");
            cheats.assertEq(inputs.length, 1, "one input");
            cheats.assertEq(inputs[0], "Message=moo", "input");
            cheats.assertEq(deposit, DEPOSIT, "deposit");
        }
        cheats.assertTrue(found, "JobAdded emitted");
        cheats.assertEq(before - token.balanceOf(user), DEPOSIT, "user paid the deposit");
        cheats.assertEq(token.balanceOf(address(jobCreator)), DEPOSIT, "job creator holds it");
        cheats.assertEq(token.balanceOf(address(client)), 0, "client keeps nothing");
    }

    function test_completeJob_callsTheClientBackAndPaysTheOperator() public {
        uint256 jobId = _request("moo");
        bytes32 key = _settledDeal(keccak256("cowsay deal"));
        uint256 operatorBefore = token.balanceOf(operator);
        vm.prank(operator);
        jobCreator.completeJob(jobId, key, RESULTS);
        cheats.assertEq(client.getJobResult(jobId), RESULTS, "client stored the results CID");
        cheats.assertEq(client.jobDeals(jobId), key, "and the deal");
        cheats.assertEq(token.balanceOf(operator) - operatorBefore, DEPOSIT, "operator paid the deposit");
        cheats.assertEq(token.balanceOf(address(jobCreator)), 0, "nothing left behind");
        cheats.assertEq(
            uint256(jobCreator.getJob(jobId).status), uint256(LilypadOnChainJobCreator.JobStatus.Completed), "completed"
        );
        // Reported once only.
        vm.prank(operator);
        vm.expectRevert(
            abi.encodeWithSelector(
                LilypadOnChainJobCreator.NotPending.selector, jobId, LilypadOnChainJobCreator.JobStatus.Completed
            )
        );
        jobCreator.completeJob(jobId, key, RESULTS);
    }

    function test_completeJob_onlyWithAnAcceptedDealAndItsExactResults() public {
        uint256 jobId = _request("moo");
        DealTerms memory terms = _terms();
        bytes32 open = keccak256("open deal");
        _submitted(open, terms, INSTRUCTIONS);
        bytes32 openKey = _key(open, terms);
        vm.prank(operator);
        vm.expectRevert(
            abi.encodeWithSelector(
                LilypadOnChainJobCreator.DealNotSettled.selector, openKey, DealState.ResultsSubmitted
            )
        );
        jobCreator.completeJob(jobId, openKey, RESULTS);

        bytes32 key = _settledDeal(keccak256("settled"));
        bytes32 forged = keccak256("other results");
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(LilypadOnChainJobCreator.ResultsMismatch.selector, key, RESULTS, forged));
        jobCreator.completeJob(jobId, key, forged);
    }

    function test_completeJob_oneDealCompletesOneRequestOnly() public {
        uint256 first = _request("moo");
        uint256 second = _request("moo again");
        bytes32 key = _settledDeal(keccak256("cowsay deal"));
        vm.prank(operator);
        jobCreator.completeJob(first, key, RESULTS);
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(LilypadOnChainJobCreator.DealAlreadyUsed.selector, key, first));
        jobCreator.completeJob(second, key, RESULTS);
        cheats.assertEq(jobCreator.jobOfDeal(key), first, "the deal belongs to the first request");
    }

    function test_failJob_refundsTheUserAndTellsTheClient() public {
        uint256 jobId = _request("moo");
        uint256 before = token.balanceOf(user);
        vm.prank(operator);
        jobCreator.failJob(jobId, "no resource provider matched");
        cheats.assertEq(token.balanceOf(user) - before, DEPOSIT, "user refunded to the wei");
        cheats.assertEq(client.jobFailures(jobId), "no resource provider matched", "client told why");
        cheats.assertEq(client.getJobResult(jobId), bytes32(0), "no result");
        cheats.assertEq(token.balanceOf(address(jobCreator)), 0, "nothing left behind");
    }

    function test_cancelJob_afterTheRequestTimeoutOnly() public {
        uint256 jobId = _request("moo");
        uint256 cancellableAt = block.timestamp + jobCreator.requestTimeout();
        vm.warp(cancellableAt);
        vm.prank(user);
        vm.expectRevert(
            abi.encodeWithSelector(LilypadOnChainJobCreator.TooEarlyToCancel.selector, jobId, cancellableAt)
        );
        jobCreator.cancelJob(jobId);
        vm.warp(cancellableAt + 1);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(LilypadOnChainJobCreator.NotRequester.selector, jobId, stranger));
        jobCreator.cancelJob(jobId);
        uint256 before = token.balanceOf(user);
        vm.prank(user);
        jobCreator.cancelJob(jobId);
        cheats.assertEq(token.balanceOf(user) - before, DEPOSIT, "user refunded to the wei");
        // The operator can no longer claim it.
        vm.prank(operator);
        vm.expectRevert(
            abi.encodeWithSelector(
                LilypadOnChainJobCreator.NotPending.selector, jobId, LilypadOnChainJobCreator.JobStatus.Cancelled
            )
        );
        jobCreator.failJob(jobId, "late");
    }

    function test_forgedCallbacksAreRefused() public {
        uint256 jobId = _request("moo");
        address[3] memory forgers = [stranger, operator, user];
        for (uint256 i; i < forgers.length; ++i) {
            vm.prank(forgers[i]);
            vm.expectRevert(abi.encodeWithSelector(ExampleClient.NotJobCreator.selector, forgers[i]));
            client.submitResults(jobId, keccak256("deal"), keccak256("forged"));
            vm.prank(forgers[i]);
            vm.expectRevert(abi.encodeWithSelector(ExampleClient.NotJobCreator.selector, forgers[i]));
            client.jobFailed(jobId, "forged");
        }
        cheats.assertEq(client.getJobResult(jobId), bytes32(0), "no forged result stored");
    }

    function test_aRevertingClientDoesNotBlockSettlement() public {
        RevertingClient bad = new RevertingClient();
        require(token.transfer(address(bad), DEPOSIT), "funding failed");
        uint256 jobId = bad.request(jobCreator);
        uint256 before = token.balanceOf(address(bad));
        vm.prank(operator);
        jobCreator.failJob(jobId, "failed");
        cheats.assertEq(token.balanceOf(address(bad)) - before, DEPOSIT, "refund still paid");
        cheats.assertEq(
            uint256(jobCreator.getJob(jobId).status), uint256(LilypadOnChainJobCreator.JobStatus.Failed), "failed"
        );
    }

    function test_aReportWithoutGasForTheCallbackRevertsInsteadOfSkippingTheClient() public {
        uint256 jobId = _request("moo");
        vm.prank(operator);
        (bool ok, bytes memory revertData) =
            address(jobCreator).call{gas: 150_000}(abi.encodeCall(jobCreator.failJob, (jobId, "no provider")));
        cheats.assertFalse(ok, "a report short of callback gas fails");
        cheats.assertEq(
            bytes32(bytes4(revertData)),
            bytes32(LilypadOnChainJobCreator.NotEnoughGasForCallback.selector),
            "and says why"
        );
        cheats.assertEq(
            uint256(jobCreator.getJob(jobId).status),
            uint256(LilypadOnChainJobCreator.JobStatus.Pending),
            "still pending"
        );
        // A long reason stored by the client still fits in the callback's gas.
        string memory reason = "no resource provider took the job offer within 3600 s; the solver explains: "
            "{compatible: 0, offline: 0, rejected: {price: 2}, resource_offers: 2} and more words to make it long";
        vm.prank(operator);
        jobCreator.failJob(jobId, reason);
        cheats.assertEq(client.jobFailures(jobId), reason, "the client heard why");
    }

    function test_aRequestFromAnAccountWithoutCodeIsSettledWithoutACallback() public {
        vm.prank(user);
        token.approve(address(jobCreator), DEPOSIT);
        string[] memory inputs = new string[](1);
        inputs[0] = "Message=moo";
        vm.prank(user);
        uint256 jobId = jobCreator.runJob("cowsay:v0.0.1", inputs, user);
        uint256 before = token.balanceOf(user);
        vm.prank(operator);
        jobCreator.failJob(jobId, "failed");
        cheats.assertEq(token.balanceOf(user) - before, DEPOSIT, "refunded to the wei");
        cheats.assertEq(
            uint256(jobCreator.getJob(jobId).status), uint256(LilypadOnChainJobCreator.JobStatus.Failed), "failed"
        );
    }

    function test_settingsOnlyValidValues() public {
        vm.startPrank(owner);
        vm.expectRevert(abi.encodeWithSelector(LilypadOnChainJobCreator.InvalidSetting.selector));
        jobCreator.setOperator(address(0));
        vm.expectRevert(abi.encodeWithSelector(LilypadOnChainJobCreator.InvalidSetting.selector));
        jobCreator.setRequestTimeout(0);
        jobCreator.setRequiredDeposit(3 ether);
        jobCreator.setOperator(stranger);
        vm.stopPrank();
        cheats.assertEq(jobCreator.requiredDeposit(), 3 ether, "deposit");
        cheats.assertEq(jobCreator.operator(), stranger, "operator");
    }
}

/// A client whose callbacks always revert.
contract RevertingClient {
    function request(LilypadOnChainJobCreator jobCreator) external returns (uint256) {
        jobCreator.token().approve(address(jobCreator), type(uint256).max);
        string[] memory inputs = new string[](0);
        return jobCreator.runJob("cowsay:v0.0.1", inputs, address(this));
    }

    function submitResults(uint256, bytes32, bytes32) external pure {
        revert("no");
    }

    function jobFailed(uint256, string calldata) external pure {
        revert("no");
    }
}
