//! `lilypad run-cowsay-onchain MESSAGE`: what a dapp user does with the example client
//! contract. Approves the client for the request deposit, calls `runCowsay(message)`, waits
//! for the client contract to be called back (by `lilypad jc` through the job creator
//! contract), then fetches the results through the solver (the job offer names the
//! requester as a results reader) and checks them against the CID stored on chain.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use ethers::types::{Address, U256};

use crate::chain::bindings::example_client::{ExampleClient, JobCreatedFilter};
use crate::chain::Chain;
use crate::data::ids::results_cid_from_digest;
use crate::results;

/// How an on-chain request ended.
#[derive(Debug, Clone)]
pub enum OnchainOutcome {
    /// The client contract holds the results CID; the results were fetched and verified.
    Completed {
        job_id: U256,
        results_cid: String,
        deal_id: String,
        results_dir: PathBuf,
        stdout: String,
    },
    /// The job creator reported a failure (the deposit went back to the requester).
    Failed { job_id: U256, reason: String },
}

/// Sends the request and waits (at most `timeout`) for its outcome.
pub async fn run_cowsay(
    chain: &Chain,
    results: results::Sources<'_>,
    example_client: Address,
    message: &str,
    results_dir: &std::path::Path,
    timeout: Duration,
    poll: Duration,
) -> anyhow::Result<OnchainOutcome> {
    let client = results.solver;
    let example = ExampleClient::new(example_client, chain.client.clone());
    let deposit = chain
        .contracts
        .job_creator
        .required_deposit()
        .call()
        .await
        .context("cannot read the request deposit")?;
    let balance = chain.token_balance(chain.address()).await?;
    if balance < deposit {
        bail!("{:?} holds {balance} token wei but a request costs {deposit}; fund it with `lilypad chain fund`", chain.address());
    }
    chain
        .send(
            "approve the example client for the deposit",
            chain.contracts.token.approve(example_client, deposit),
        )
        .await?;
    let receipt = chain
        .send("request cowsay", example.run_cowsay(message.to_string()))
        .await?;
    let job_id = receipt
        .logs
        .into_iter()
        .filter(|log| log.address == example_client)
        .find_map(|log| ethers::contract::parse_log::<JobCreatedFilter>(log).ok())
        .map(|created| created.job_id)
        .context("the request's receipt has no JobCreated event")?;
    eprintln!("job {job_id} requested on chain; waiting for `lilypad jc` to run it");

    let started = Instant::now();
    let results_id = loop {
        let results_id = example
            .get_job_result(job_id)
            .call()
            .await
            .context("cannot read the job's result")?;
        if results_id != [0u8; 32] {
            break results_id;
        }
        let reason = example
            .job_failures(job_id)
            .call()
            .await
            .context("cannot read the job's failure")?;
        if !reason.is_empty() {
            return Ok(OnchainOutcome::Failed { job_id, reason });
        }
        if started.elapsed() > timeout {
            bail!(
                "job {job_id} has no result after {} s; is `lilypad jc` running?",
                timeout.as_secs()
            );
        }
        tokio::time::sleep(poll).await;
    };
    let results_cid = results_cid_from_digest(results_id);
    let deal_key = example
        .job_deals(job_id)
        .call()
        .await
        .context("cannot read the job's deal")?;
    let key = format!("0x{}", hex::encode(deal_key));
    // The solver may be restarting: wait for it as long as we would wait for the result.
    let (deal, dir, verified) = loop {
        let fetched = async {
            let deal = client
                .deals(&format!("deal_key={key}"))
                .await?
                .pop()
                .with_context(|| format!("the solver has no deal with key {key}"))?;
            let dir = results_dir.join(&deal.deal.id);
            let verified = results::fetch_verified(results, &deal.deal.id, results_id, &dir)
                .await?
                .map_err(anyhow::Error::msg)
                .context("refusing the downloaded results")?;
            anyhow::Ok((deal, dir, verified))
        }
        .await;
        match fetched {
            Err(error) if crate::client::is_transient(&error) && started.elapsed() < timeout => {
                tracing::warn!("{error:#}; trying again");
                tokio::time::sleep(poll.max(Duration::from_millis(500))).await;
            }
            other => break other?,
        }
    };
    let stdout = verified.stdout;
    Ok(OnchainOutcome::Completed {
        job_id,
        results_cid,
        deal_id: deal.deal.id,
        results_dir: dir,
        stdout,
    })
}
