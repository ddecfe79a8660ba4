//! `lilypad run` and `lilypad run-cowsay-onchain`: the client commands. They find the
//! network (configured, a running `lilypad dev`, or an embedded one for this command), run
//! one job and report how it ended.

use std::time::Duration;

use anyhow::{bail, Context};

use crate::cli::{OnchainArgs, RunArgs};
use crate::config::Settings;
use crate::module::{GitModules, Located};
use crate::network::ClientNetwork;
use crate::onchain::OnchainOutcome;
use crate::run::{follow_job, job_offer, JobOutcome, JobRequest, UnfinishedJob, UnfinishedJobs};

pub(super) async fn run(args: RunArgs, settings: Settings) -> anyhow::Result<()> {
    let results_dir = args
        .output
        .clone()
        .unwrap_or_else(|| settings.data_dir.join("downloaded-files"));
    let timeout = Duration::from_secs(args.timeout);
    let unfinished = UnfinishedJobs::new(&settings.data_dir);
    let resumed = match &args.resume {
        Some(id) => Some(unfinished.load(id)?),
        None => None,
    };
    // The user's own command: local module repositories are theirs to read.
    let modules = GitModules::from_settings(&settings).with_local_repositories(true);
    let new_job = match &resumed {
        Some(_) => None,
        None => {
            let (module, located) = match (&args.module_repo, &args.module) {
                (Some(repo), _) => {
                    let reference = args.module_ref.clone().unwrap_or_default();
                    let located = Located::Git {
                        repo: repo.clone(),
                        reference: reference.clone(),
                        path: args
                            .module_path
                            .clone()
                            .unwrap_or_else(|| crate::module::TEMPLATE_FILE.to_string()),
                    };
                    (format!("{repo}:{reference}"), located)
                }
                (None, Some(module)) => (
                    module.clone(),
                    crate::module::locate(module, modules.shortcut_prefix())?,
                ),
                (None, None) => {
                    bail!("name a module (e.g. cowsay:v0.0.1) or --resume JOB_OFFER_ID")
                }
            };
            let inputs = crate::module::parse_inputs(&args.inputs).map_err(anyhow::Error::msg)?;
            // Fail fast (before any network starts) on a bad module or input: a module kept
            // in git is fetched and pinned here, and the offer is made from this pin (its
            // commit is then read from the cache, not fetched again).
            let (name, given, cache) = (module.clone(), inputs.clone(), modules.clone());
            let located = tokio::task::spawn_blocking(move || {
                let source = crate::module::pin(&located, &name, &cache)?;
                crate::module::resolve(&name, source.as_ref(), &given, &cache)?;
                Ok::<_, crate::module::ModuleError>(match source {
                    Some(source) => Located::Git {
                        repo: source.repo,
                        reference: source.commit,
                        path: source.path,
                    },
                    None => located,
                })
            })
            .await??;
            Some((module, inputs, located))
        }
    };
    let network = ClientNetwork::open(&settings, resumed.is_none()).await?;
    let job = match resumed {
        Some(job) => job,
        None => {
            let (module, inputs, located) =
                new_job.context("name a module or --resume JOB_OFFER_ID")?;
            let mediation_chance = if args.check {
                100
            } else {
                args.mediation_chance
            };
            let request = JobRequest {
                module,
                inputs,
                pricing: settings.pricing()?,
                timeouts: settings.timeouts()?,
                services: network.services.clone(),
                results_dir: results_dir.clone(),
                timeout,
                poll: network.poll,
                progress: !args.quiet,
                mediation_chance,
                accept_failures: args.accept_failures,
                results_reader: None,
                on_chain_job: None,
                modules: modules.clone(),
                location: Some(located),
                ipfs: settings.ipfs()?,
            };
            let job = UnfinishedJob {
                offer: job_offer(network.chain.address(), &request).await?,
                mediation_chance,
                accept_failures: args.accept_failures,
            };
            if !network.is_embedded() {
                unfinished.save(&job)?;
                eprintln!(
                    "job offer {id}: if this command stops, `lilypad run --resume {id}` continues it",
                    id = job.offer.id
                );
            }
            job
        }
    };
    if job.offer.job_creator != network.chain.address() {
        bail!(
            "job offer {} belongs to {:?}, not to this key ({:?})",
            job.offer.id,
            job.offer.job_creator,
            network.chain.address()
        );
    }
    let request = job.request(
        network.poll,
        results_dir,
        timeout,
        !args.quiet,
        modules,
        settings.ipfs()?,
    );
    let outcome = follow_job(
        network.chain.clone(),
        network.client.clone(),
        request,
        job.offer.clone(),
    )
    .await;
    network.close().await;
    if outcome.is_ok()
        || outcome
            .as_ref()
            .is_err_and(|e| e.chain().any(|cause| cause.is::<crate::run::NoMatch>()))
    {
        unfinished.forget(&job.offer.id);
    }
    report(&outcome?)
}

/// Prints how the job ended; an error (non-zero exit) unless it ran and exited 0.
fn report(outcome: &JobOutcome) -> anyhow::Result<()> {
    if outcome.paid_for_results() {
        print!("{}", outcome.stdout());
    }
    if let Some(reason) = &outcome.disputed {
        eprintln!("disputed: {reason}");
    }
    eprintln!(
        "deal {} ended in {}: {}",
        outcome.deal_id,
        outcome.state.name(),
        outcome.settlement
    );
    let Some(results) = &outcome.results else {
        bail!(
            "the job produced no accepted results (deal ended in {})",
            outcome.state.name()
        );
    };
    eprintln!(
        "results {} (from {}) in {}",
        results.cid,
        results.source,
        results.dir.display()
    );
    if !outcome.paid_for_results() {
        bail!(
            "the results were not accepted (deal ended in {}); they are kept in {} for inspection",
            outcome.state.name(),
            results.dir.display()
        );
    }
    match results.exit_code {
        Some(0) => Ok(()),
        Some(code) => bail!(
            "the job exited with code {code}; see {}/stderr",
            results.dir.display()
        ),
        None => bail!("the job left no exit code; see {}", results.dir.display()),
    }
}

pub(super) async fn run_cowsay_onchain(
    args: OnchainArgs,
    settings: Settings,
) -> anyhow::Result<()> {
    let results_dir = args
        .output
        .clone()
        .unwrap_or_else(|| settings.data_dir.join("downloaded-files"));
    let network = ClientNetwork::open(&settings, true).await?;
    let outcome = match network.example_client {
        Some(example_client) => {
            let ipfs = settings.ipfs()?;
            let sources = crate::results::Sources {
                solver: &network.client,
                ipfs: ipfs.as_ref(),
            };
            crate::onchain::run_cowsay(
                &network.chain,
                sources,
                example_client,
                &args.message,
                &results_dir,
                Duration::from_secs(args.timeout),
                network.poll,
            )
            .await
        }
        None => Err(anyhow::anyhow!(
            "which example client? set WEB3_EXAMPLE_CLIENT_ADDRESS or --example-client (`lilypad chain deploy` prints it)"
        )),
    };
    network.close().await;
    match outcome? {
        OnchainOutcome::Completed {
            job_id,
            results_cid,
            deal_id,
            results_dir,
            stdout,
        } => {
            print!("{stdout}");
            eprintln!(
                "job {job_id}: results {results_cid} (deal {deal_id}), unpacked in {}",
                results_dir.display()
            );
            Ok(())
        }
        OnchainOutcome::Failed { job_id, reason } => {
            bail!("job {job_id} failed and the deposit was refunded: {reason}")
        }
    }
}
