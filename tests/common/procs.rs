//! Roles as separate `lilypad` processes, configured the way the README tells operators (a
//! data directory, a key file, environment variables), which a test can kill, stop and
//! start again on the same data; optionally inside a network namespace (`ip netns exec`).
//! Also what a deal's end does to each party's tokens, for checking balances to the wei.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use ethers::signers::LocalWallet;
use ethers::types::Address;
use lilypad::chain::terms::{deal_key, terms_of};
use lilypad::chain::Chain;
use lilypad::client::SolverClient;
use lilypad::data::{Deal, DealState};
use tokio::process::{Child, Command};

/// One process of the network, started again (on the same data directory) after each kill.
pub struct Proc {
    pub name: String,
    pub args: Vec<String>,
    pub key: PathBuf,
    pub data_dir: PathBuf,
    pub env: Vec<(String, String)>,
    /// The network namespace it runs in (its host), if not this one.
    pub netns: Option<String>,
    pub child: Option<Child>,
    pub starts: usize,
    /// How it ended by itself (a `lilypad run` or `run-cowsay-onchain`).
    pub exit: Option<std::process::ExitStatus>,
}

impl Proc {
    /// A process of `lilypad ARGS` signing with `wallet`, its data in `data_dir` (the key
    /// is written there, 0600) and `env` as its settings.
    pub fn new(
        name: &str,
        args: &[&str],
        wallet: &LocalWallet,
        data_dir: PathBuf,
        env: Vec<(String, String)>,
    ) -> Proc {
        std::fs::create_dir_all(&data_dir).unwrap();
        let key = data_dir.join("key");
        lilypad::keys::write_key(&key, wallet).unwrap();
        Proc {
            name: name.to_string(),
            args: args.iter().map(|arg| arg.to_string()).collect(),
            key,
            data_dir,
            env,
            netns: None,
            child: None,
            starts: 0,
            exit: None,
        }
    }

    fn log(&self, start: usize, stream: &str) -> PathBuf {
        self.data_dir.join(format!("{stream}.{start}.log"))
    }

    /// Starts the process (again); a killed `run` resumes the job it saved, if it saved one.
    pub fn start(&mut self) {
        let mut args = self.args.clone();
        if self.args[0] == "run" {
            if let Some(id) = saved_job(&self.data_dir) {
                args = [
                    "run",
                    "--resume",
                    id.as_str(),
                    "--quiet",
                    "--timeout",
                    "600",
                ]
                .iter()
                .map(|arg| arg.to_string())
                .collect();
            }
        }
        self.starts += 1;
        let stdout = std::fs::File::create(self.log(self.starts, "stdout")).unwrap();
        let stderr = std::fs::File::create(self.log(self.starts, "stderr")).unwrap();
        let binary = env!("CARGO_BIN_EXE_lilypad");
        let mut command = match &self.netns {
            Some(netns) => {
                let mut command = Command::new("ip");
                command.args(["netns", "exec", netns, binary]);
                command
            }
            None => Command::new(binary),
        };
        let child = command
            .args(&args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.data_dir)
            .env("DATA_DIR", &self.data_dir)
            .env("LOG_LEVEL", "info")
            .env("WEB3_PRIVATE_KEY_FILE", &self.key)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::from(stderr))
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.name));
        self.child = Some(child);
    }

    /// Whether it is running (a finished `run` is reaped here).
    pub fn alive(&mut self) -> bool {
        let Some(child) = self.child.as_mut() else {
            return false;
        };
        match child.try_wait() {
            Ok(None) => true,
            Ok(Some(status)) => {
                self.exit = Some(status);
                self.child = None;
                false
            }
            Err(_) => false,
        }
    }

    /// Waits (at most `limit`) for it to end by itself; its exit status, or None.
    pub async fn wait(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = tokio::time::Instant::now() + limit;
        while self.alive() {
            if tokio::time::Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.exit
    }

    /// SIGKILL, as `kill -9` does.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }

    /// SIGTERM, and waits for it to stop (the way an operator stops a role).
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                let _ = std::process::Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status();
            }
            if tokio::time::timeout(Duration::from_secs(20), child.wait())
                .await
                .is_err()
            {
                let _ = child.start_kill();
                let _ = child.wait().await;
            }
        }
    }

    /// The output of its last start.
    pub fn last(&self, stream: &str) -> String {
        std::fs::read_to_string(self.log(self.starts, stream)).unwrap_or_default()
    }

    /// The last lines of every start's stderr, for a failure message.
    pub fn tails(&self) -> String {
        (1..=self.starts)
            .map(|start| {
                let text = std::fs::read_to_string(self.log(start, "stderr")).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                let tail = lines[lines.len().saturating_sub(15)..].join("\n");
                format!("--- {} start {start}:\n{tail}", self.name)
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The id of the job a killed `lilypad run` saved under its data dir, if it saved one.
pub fn saved_job(data_dir: &Path) -> Option<String> {
    let entries = std::fs::read_dir(data_dir.join("jobs")).ok()?;
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            entry
                .file_name()
                .to_str()?
                .strip_suffix(".json")
                .map(str::to_string)
        })
        .next()
}

/// What a deal's end does to each party's tokens (signed wei), as the contracts settle it:
/// job creator, resource provider, mediator, and the treasury (as the zero address).
pub fn settlement(deal: &Deal, state: DealState, instructions: u64) -> [(Address, i128); 4] {
    let cost = i128::try_from(deal.pricing.instruction_price).unwrap() * i128::from(instructions);
    let fee = i128::try_from(deal.pricing.mediation_fee).unwrap();
    let results = cost * i128::from(deal.pricing.results_collateral_multiple);
    let submit = i128::try_from(deal.timeouts.submit_results_collateral).unwrap();
    let judge = i128::try_from(deal.timeouts.judge_results_collateral).unwrap();
    let [jc, rp, mediator, treasury] = match state {
        DealState::ResultsAccepted => [-cost, cost, 0, 0],
        DealState::MediationAccepted => [-cost - fee, cost, fee, 0],
        DealState::MediationRejected => [-fee, -results - submit, fee, results + submit],
        DealState::TimeoutAgree | DealState::TimeoutMediateResults => [0, 0, 0, 0],
        DealState::TimeoutSubmitResults => [0, -submit, 0, submit],
        DealState::TimeoutJudgeResults => [-cost - judge, cost, 0, judge],
        active => panic!("deal {} is still {active}", deal.id),
    };
    [
        (deal.members.job_creator, jc),
        (deal.members.resource_provider, rp),
        (deal.members.mediator, mediator),
        (Address::zero(), treasury),
    ]
}

/// Every deal the solver made with `rps`, each once it is over on chain (or after a minute
/// of waiting, still active): (deal, state, instructions paid for).
pub async fn deal_ends(
    solver: &SolverClient,
    reader: &Chain,
    rps: &[Address],
) -> Vec<(Deal, DealState, u64)> {
    let mut ends = Vec::new();
    for rp in rps {
        let query = format!("resource_provider={rp:?}");
        for record in solver.deals(&query).await.unwrap() {
            let deal = record.deal;
            let key = deal_key(deal.chain_id().unwrap(), &terms_of(&deal));
            let started = std::time::Instant::now();
            let mut agreement = reader.agreement(key).await.unwrap();
            while DealState::try_from(agreement.state).unwrap().is_active()
                && started.elapsed() < Duration::from_secs(60)
            {
                tokio::time::sleep(Duration::from_millis(200)).await;
                agreement = reader.agreement(key).await.unwrap();
            }
            let state = DealState::try_from(agreement.state).unwrap();
            ends.push((deal, state, agreement.instruction_count));
        }
    }
    ends
}

/// Waits (at most 30 s) until the solver answers: it may have just been started again.
pub async fn wait_for_health(solver: &SolverClient) {
    for _ in 0..300 {
        if solver.health().await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the solver does not answer at {}", solver.base_url());
}
