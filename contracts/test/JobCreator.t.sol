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

    /// Terms of a deal the operator runs as job creator.
    function _operatorTerms() private view returns (DealTerms memory terms) {
        terms = _terms();
        terms.members.jobCreator = operator;
    }

    /// The operator binds deal `dealId` to the job, then both parties agree.
    function _startedDeal(uint256 jobId, bytes32 dealId) private returns (DealTerms memory terms) {
        terms = _operatorTerms();
        vm.prank(operator);
        jobCreator.startJob(jobId, dealId, terms);
        vm.prank(operator);
        token.approve(address(payments), type(uint256).max);
        _agreeBoth(dealId, terms);
    }

    /// A deal for the job, run by the operator, that ends in ResultsAccepted.
    function _settledDeal(uint256 jobId, bytes32 dealId) private returns (bytes32 key) {
        DealTerms memory terms = _startedDeal(jobId, dealId);
        vm.prank(rp);
        controller.addResult(dealId, terms, RESULTS, INSTRUCTIONS);
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
        bytes32 key = _settledDeal(jobId, keccak256("cowsay deal"));
        uint256 operatorBefore = token.balanceOf(operator);
        vm.prank(operator);
        jobCreator.completeJob(jobId);
        cheats.assertEq(client.getJobResult(jobId), RESULTS, "client stored the results CID committed on chain");
        cheats.assertEq(client.jobDeals(jobId), key, "and the deal");
        cheats.assertEq(token.balanceOf(operator) - operatorBefore, DEPOSIT, "operator paid the deposit");
        cheats.assertEq(token.balanceOf(address(jobCreator)), 0, "nothing left behind");
        LilypadOnChainJobCreator.Job memory job = jobCreator.getJob(jobId);
        cheats.assertEq(uint256(job.status), uint256(LilypadOnChainJobCreator.JobStatus.Completed), "completed");
        cheats.assertEq(job.resultsId, RESULTS, "results recorded");
        // Reported once only.
        vm.prank(operator);
        vm.expectRevert(
            abi.encodeWithSelector(
                LilypadOnChainJobCreator.NotPending.selector, jobId, LilypadOnChainJobCreator.JobStatus.Completed
            )
        );
        jobCreator.completeJob(jobId);
    }

    /// Attack: the operator claims a request's deposit with a settled deal it never paid for
    /// (between two unrelated parties). It can neither bind that deal nor complete unbound.
    function test_attack_completeJobWithSomeoneElsesSettledDeal_isRefused() public {
        uint256 jobId = _request("moo");
        DealTerms memory unrelated = _terms(); // job creator: jc, not the operator
        bytes32 dealId = keccak256("unrelated deal");
        _submitted(dealId, unrelated, INSTRUCTIONS);
        vm.prank(jc);
        controller.acceptResult(dealId, unrelated);
        bytes32 key = _key(dealId, unrelated);
        _assertState(dealId, unrelated, DealState.ResultsAccepted);
        uint256 operatorBefore = token.balanceOf(operator);

        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(LilypadOnChainJobCreator.NotOperatorsDeal.selector, key, jc));
        jobCreator.startJob(jobId, dealId, unrelated);
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(LilypadOnChainJobCreator.NoDeal.selector, jobId));
        jobCreator.completeJob(jobId);

        cheats.assertEq(token.balanceOf(operator), operatorBefore, "the operator took nothing");
        cheats.assertEq(token.balanceOf(address(jobCreator)), DEPOSIT, "the deposit is still held");
    }

    function test_completeJob_onlyOnceTheBoundDealHasAcceptedResults() public {
        uint256 jobId = _request("moo");
        bytes32 dealId = keccak256("running deal");
        DealTerms memory terms = _startedDeal(jobId, dealId);
        vm.prank(rp);
        controller.addResult(dealId, terms, RESULTS, INSTRUCTIONS);
        bytes32 key = _key(dealId, terms);
        vm.prank(operator);
        vm.expectRevert(
            abi.encodeWithSelector(LilypadOnChainJobCreator.DealNotSettled.selector, key, DealState.ResultsSubmitted)
        );
        jobCreator.completeJob(jobId);
        // Results a mediator rejected never complete the job either.
        vm.prank(operator);
        controller.checkResult(dealId, terms);
        vm.prank(terms.members.mediator);
        mediation.mediationRejectResult(dealId, terms);
        vm.prank(operator);
        vm.expectRevert(
            abi.encodeWithSelector(LilypadOnChainJobCreator.DealNotSettled.selector, key, DealState.MediationRejected)
        );
        jobCreator.completeJob(jobId);
    }

    function test_startJob_oneDealServesOneRequestOnly() public {
        uint256 first = _request("moo");
        uint256 second = _request("moo again");
        bytes32 dealId = keccak256("cowsay deal");
        bytes32 key = _settledDeal(first, dealId);
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(LilypadOnChainJobCreator.DealAlreadyUsed.selector, key, first));
        jobCreator.startJob(second, dealId, _operatorTerms());
        cheats.assertEq(jobCreator.jobOfDeal(key), first, "the deal belongs to the first request");
    }

    function test_startJob_aJobMovesToANewDealOnlyWhenItsDealFailed() public {
        uint256 jobId = _request("moo");
        bytes32 firstId = keccak256("first deal");
        DealTerms memory terms = _operatorTerms();
        vm.prank(operator);
        jobCreator.startJob(jobId, firstId, terms);
        vm.prank(operator);
        token.approve(address(payments), type(uint256).max);
        vm.prank(operator);
        controller.agree(firstId, terms);
        bytes32 firstKey = _key(firstId, terms);
        // The operator escrowed money in the first deal: it holds the job.
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(LilypadOnChainJobCreator.DealUnderWay.selector, jobId, firstKey));
        jobCreator.startJob(jobId, keccak256("second deal"), terms);
        // The RP never agreed; once the negotiation is ended, the job takes another deal.
        vm.warp(block.timestamp + AGREE_TIMEOUT + 1);
        controller.timeoutAgree(firstId, terms);
        vm.prank(operator);
        jobCreator.startJob(jobId, keccak256("second deal"), terms);
        cheats.assertEq(
            jobCreator.getJob(jobId).dealKey, _key(keccak256("second deal"), terms), "bound to the second deal"
        );
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
        cheats.assertEq(jobCreator.getJob(jobId).cancellableAt, cancellableAt, "fixed at the request");
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

    /// Attack: the requester waits until the operator has fronted the deal's escrow, then
    /// cancels and takes the deposit back. Refused while the deal can still succeed; once it
    /// ends without results (here the RP never submits), the requester is refunded.
    function test_attack_cancelAfterTheOperatorFrontedTheEscrow_isRefusedUntilTheDealFails() public {
        uint256 jobId = _request("moo");
        bytes32 dealId = keccak256("fronted deal");
        uint256 operatorBefore = token.balanceOf(operator);
        DealTerms memory terms = _startedDeal(jobId, dealId);
        bytes32 key = _key(dealId, terms);
        cheats.assertEq(
            operatorBefore - token.balanceOf(operator), PAYMENT_COLLATERAL + JUDGE_COLLATERAL, "operator fronted P + Cj"
        );
        vm.warp(jobCreator.getJob(jobId).cancellableAt + 1);
        vm.prank(user);
        vm.expectRevert(abi.encodeWithSelector(LilypadOnChainJobCreator.DealUnderWay.selector, jobId, key));
        jobCreator.cancelJob(jobId);

        // The RP never submits; anyone may end the deal once its deadline passed.
        vm.warp(block.timestamp + SUBMIT_TIMEOUT + 1);
        vm.prank(user);
        controller.timeoutSubmitResults(dealId, terms);
        uint256 userBefore = token.balanceOf(user);
        vm.prank(user);
        jobCreator.cancelJob(jobId);
        cheats.assertEq(token.balanceOf(user) - userBefore, DEPOSIT, "requester refunded to the wei");
        cheats.assertEq(token.balanceOf(operator), operatorBefore, "operator got its escrow back, to the wei");
        cheats.assertEq(token.balanceOf(address(jobCreator)), 0, "nothing left behind");
    }

    function test_cancelJob_aDealTheOperatorNeverAgreedToDoesNotHoldTheJob() public {
        uint256 jobId = _request("moo");
        DealTerms memory terms = _operatorTerms();
        bytes32 dealId = keccak256("never agreed");
        vm.prank(operator);
        jobCreator.startJob(jobId, dealId, terms);
        uint256 agreeBy = block.timestamp + AGREE_TIMEOUT;
        cheats.assertEq(jobCreator.getJob(jobId).agreeBy, agreeBy, "agree-by recorded");
        vm.warp(jobCreator.getJob(jobId).cancellableAt + 1);
        cheats.assertTrue(block.timestamp > agreeBy, "past agree-by");
        uint256 before = token.balanceOf(user);
        vm.prank(user);
        jobCreator.cancelJob(jobId);
        cheats.assertEq(token.balanceOf(user) - before, DEPOSIT, "refunded");
    }

    function test_cancelJob_aSucceededDealKeepsTheDepositForTheOperator() public {
        uint256 jobId = _request("moo");
        bytes32 key = _settledDeal(jobId, keccak256("done"));
        vm.warp(jobCreator.getJob(jobId).cancellableAt + 1);
        vm.prank(user);
        vm.expectRevert(abi.encodeWithSelector(LilypadOnChainJobCreator.DealUnderWay.selector, jobId, key));
        jobCreator.cancelJob(jobId);
    }

    /// Attack: the owner raises the request timeout to block pending refunds. A job keeps the
    /// timeout it was requested with; only later requests get the new one.
    function test_attack_ownerChangesTheTimeoutToBlockPendingRefunds_isIneffective() public {
        uint256 jobId = _request("moo");
        uint256 cancellableAt = block.timestamp + jobCreator.requestTimeout();
        vm.prank(owner);
        jobCreator.setRequestTimeout(365 days);
        vm.warp(cancellableAt + 1);
        uint256 before = token.balanceOf(user);
        vm.prank(user);
        jobCreator.cancelJob(jobId);
        cheats.assertEq(token.balanceOf(user) - before, DEPOSIT, "refunded on the original timeout");
        uint256 later = _request("later");
        cheats.assertEq(
            jobCreator.getJob(later).cancellableAt, block.timestamp + 365 days, "new requests get the new timeout"
        );
    }

    /// Attack: a client whose callback reverts with a huge payload, to make the operator's
    /// report expensive (copying and logging all of it once cost ~80x a plain revert and ran
    /// out of gas under a 4M limit). Only a bounded prefix is kept.
    function test_attack_hugeRevertPayloadInTheCallback_costsTheOperatorNothingExtra() public {
        RevertingClient plain = new RevertingClient();
        HugeRevertClient huge = new HugeRevertClient();
        require(token.transfer(address(plain), DEPOSIT), "funding failed");
        require(token.transfer(address(huge), DEPOSIT), "funding failed");
        uint256 plainJob = plain.request(jobCreator);
        uint256 hugeJob = huge.request(jobCreator);

        cheats.recordLogs();
        vm.prank(operator);
        uint256 start = gasleft();
        jobCreator.failJob{gas: 4_000_000}(plainJob, "failed");
        uint256 plainGas = start - gasleft();
        vm.prank(operator);
        start = gasleft();
        jobCreator.failJob{gas: 4_000_000}(hugeJob, "failed");
        uint256 hugeGas = start - gasleft();

        // The callback itself burns gas building its payload (at most CALLBACK_GAS); the
        // report around it costs the same as for a plain revert.
        cheats.assertLe(hugeGas, plainGas + jobCreator.CALLBACK_GAS(), "bounded by the callback's own gas");
        cheats.assertEq(
            uint256(jobCreator.getJob(hugeJob).status), uint256(LilypadOnChainJobCreator.JobStatus.Failed), "failed"
        );
        Cheats.Log[] memory logs = cheats.getRecordedLogs();
        bytes32 callbackFailed = keccak256("ClientCallbackFailed(uint256,bytes)");
        uint256 seen;
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].topics[0] != callbackFailed) continue;
            bytes memory reason = abi.decode(logs[i].data, (bytes));
            if (uint256(logs[i].topics[1]) == hugeJob) {
                cheats.assertEq(reason.length, jobCreator.MAX_REVERT_DATA(), "only a prefix is kept");
                cheats.assertEq(bytes32(reason[0]), bytes32(bytes1(0xAB)), "the prefix of the payload");
            } else {
                cheats.assertEq(keccak256(reason), keccak256(abi.encodeWithSignature("Error(string)", "no")), "short");
            }
            ++seen;
        }
        cheats.assertEq(seen, 2, "both failures logged");
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

/// A client whose callbacks revert with as much data as their gas allows.
contract HugeRevertClient {
    function request(LilypadOnChainJobCreator jobCreator) external returns (uint256) {
        jobCreator.token().approve(address(jobCreator), type(uint256).max);
        string[] memory inputs = new string[](0);
        return jobCreator.runJob("cowsay:v0.0.1", inputs, address(this));
    }

    function submitResults(uint256, bytes32, bytes32) external pure {
        _revertHuge();
    }

    function jobFailed(uint256, string calldata) external pure {
        _revertHuge();
    }

    /// 200 kB of revert data (about 95k gas of memory expansion), starting with 0xAB bytes.
    function _revertHuge() private pure {
        assembly {
            for { let i := 0 } lt(i, 512) { i := add(i, 32) } {
                mstore(i, 0xABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABAB)
            }
            revert(0, 200000)
        }
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
