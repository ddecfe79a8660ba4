//! Command-line definitions (clap). Every flag has an environment variable (named in its
//! help) and a `lilypad.toml` key (the variable in lower case); flags win over both.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Lilypad: run Docker jobs on other people's machines, paid and settled on an EVM chain.
///
/// One binary plays every role of the network: the solver that matches offers, the
/// resource provider that runs jobs, the job creator that asks for them, and a whole local
/// network for development. Settings come from defaults < lilypad.toml < environment <
/// flags; keys come only from WEB3_PRIVATE_KEY or a key file, never from a flag.
///
/// Try it: `lilypad run cowsay:v0.0.1 -i Message=moo` (starts a local network if none is
/// configured), or `lilypad dev` in one terminal and the same `lilypad run` in another.
#[derive(Debug, Parser)]
#[command(name = "lilypad", version, about, long_about)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Settings every role shares.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Settings file (TOML; keys are the environment names in lower case) [env: LILYPAD_CONFIG] [default: ./lilypad.toml if present]
    #[arg(long, global = true, env = "LILYPAD_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where roles keep their databases, results and keys [env: DATA_DIR] [default: ~/.lilypad]
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Log filter, e.g. info or lilypad=debug [env: LOG_LEVEL] [default: info]
    #[arg(long, global = true, value_name = "FILTER")]
    pub log_level: Option<String>,
    /// Log format: pretty or json [env: LOG_FORMAT]
    #[arg(long, global = true, value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// The chain's JSON-RPC URL [env: WEB3_RPC_URL]
    #[arg(long, global = true, value_name = "URL")]
    pub rpc_url: Option<String>,
    /// Address of the LilypadController [env: WEB3_CONTROLLER_ADDRESS]
    #[arg(long, global = true, value_name = "ADDRESS")]
    pub controller: Option<String>,
    /// File holding this node's private key (hex); or set WEB3_PRIVATE_KEY [env: WEB3_PRIVATE_KEY_FILE]
    #[arg(long, global = true, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// The solver's address; both sides of a deal must name the same [env: SERVICE_SOLVER]
    #[arg(long, global = true, value_name = "ADDRESS")]
    pub solver: Option<String>,
    /// Comma-separated mediator addresses you trust [env: SERVICE_MEDIATORS]
    #[arg(long, global = true, value_name = "ADDRESSES")]
    pub mediators: Option<String>,
    /// The solver's URL [env: SOLVER_URL] [default: the URL the solver published in the Users contract]
    #[arg(long, global = true, value_name = "URL")]
    pub solver_url: Option<String>,
    /// How often roles poll the chain and the solver, in ms [env: POLL_INTERVAL_MS] [default: 1000]
    #[arg(long, global = true, value_name = "MS")]
    pub poll_interval_ms: Option<u64>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the solver: the HTTP/WebSocket market that matches offers into deals
    Solver(SolverArgs),
    /// Run a resource provider: sell this machine's CPU/RAM/GPUs and run jobs in Docker
    Rp(RpArgs),
    /// Run one job: post a job offer, pay, wait, download and print the result
    Run(RunArgs),
    /// Run a mediator: re-run disputed jobs and accept or reject their results on chain
    Mediator(MediatorArgs),
    /// Run the on-chain job creator service: serve jobs that contracts request through
    /// LilypadOnChainJobCreator, and report results (or failures, refunded) back to them
    Jc(JcArgs),
    /// Ask the example client contract to run cowsay, as a dapp user would, and print the
    /// result CID and the cow
    #[command(name = "run-cowsay-onchain")]
    RunCowsayOnchain(OnchainArgs),
    /// Start a whole local network in this process: anvil, contracts, solver, resource provider, mediator
    Dev(DevArgs),
    /// Deploy the contracts, fund accounts and read balances on any chain
    #[command(subcommand)]
    Chain(ChainCommand),
    /// Manage key files
    #[command(subcommand)]
    Keys(KeysCommand),
}

/// Flags of `lilypad solver`.
#[derive(Debug, Args)]
pub struct SolverArgs {
    /// Interface to listen on [env: SERVER_HOST] [default: 127.0.0.1]
    #[arg(long, value_name = "HOST")]
    pub server_host: Option<String>,
    /// Port to listen on [env: SERVER_PORT] [default: 8080]
    #[arg(long, value_name = "PORT")]
    pub server_port: Option<u16>,
    /// Public URL, published in the Users contract so clients find this solver [env: SERVER_URL] [default: http://HOST:PORT]
    #[arg(long, value_name = "URL")]
    pub server_url: Option<String>,
    /// Seconds a resource offer stays matchable after its last refresh [env: OFFER_TTL] [default: 30]
    #[arg(long, value_name = "SECS")]
    pub offer_ttl: Option<u64>,
    /// Largest request body (results uploads), bytes [env: MAX_UPLOAD_BYTES] [default: 67108864]
    #[arg(long, value_name = "BYTES")]
    pub max_upload_bytes: Option<u64>,
}

/// Deal terms a party offers. Both sides must offer the same collaterals and timeouts.
#[derive(Debug, Args)]
pub struct TermsArgs {
    /// Price per instruction, wei or e.g. 1lp (JC: the most it pays; RP: what it asks) [env: PRICING_INSTRUCTION_PRICE] [default: 1lp]
    #[arg(long, value_name = "AMOUNT")]
    pub instruction_price: Option<String>,
    /// Payment collateral the JC escrows [env: PRICING_PAYMENT_COLLATERAL] [default: 2lp]
    #[arg(long, value_name = "AMOUNT")]
    pub payment_collateral: Option<String>,
    /// Results collateral = this x cost, escrowed by the RP [env: PRICING_RESULTS_COLLATERAL_MULTIPLE] [default: 2]
    #[arg(long, value_name = "N")]
    pub results_collateral_multiple: Option<u64>,
    /// Fee paid to a mediator if the JC disputes [env: PRICING_MEDIATION_FEE] [default: 1lp]
    #[arg(long, value_name = "AMOUNT")]
    pub mediation_fee: Option<String>,
    /// Seconds both sides have to agree [env: TIMEOUT_AGREE_TIME] [default: 3600]
    #[arg(long, value_name = "SECS")]
    pub agree_timeout: Option<u64>,
    /// Seconds the RP has to submit results [env: TIMEOUT_SUBMIT_RESULTS_TIME] [default: 3600]
    #[arg(long, value_name = "SECS")]
    pub submit_results_timeout: Option<u64>,
    /// RP's stake on submitting in time [env: TIMEOUT_SUBMIT_RESULTS_COLLATERAL] [default: 1lp]
    #[arg(long, value_name = "AMOUNT")]
    pub submit_results_collateral: Option<String>,
    /// Seconds the JC has to accept or dispute [env: TIMEOUT_JUDGE_RESULTS_TIME] [default: 3600]
    #[arg(long, value_name = "SECS")]
    pub judge_results_timeout: Option<u64>,
    /// JC's stake on judging in time [env: TIMEOUT_JUDGE_RESULTS_COLLATERAL] [default: 1lp]
    #[arg(long, value_name = "AMOUNT")]
    pub judge_results_collateral: Option<String>,
    /// Seconds the mediator has to decide [env: TIMEOUT_MEDIATE_RESULTS_TIME] [default: 3600]
    #[arg(long, value_name = "SECS")]
    pub mediate_results_timeout: Option<u64>,
}

/// What a resource provider sells.
#[derive(Debug, Args)]
pub struct OfferArgs {
    /// CPU per slot, millicores [env: OFFER_CPU] [default: 1000]
    #[arg(long, value_name = "MILLICORES")]
    pub offer_cpu: Option<u64>,
    /// RAM per slot, MiB [env: OFFER_RAM] [default: 1024]
    #[arg(long, value_name = "MIB")]
    pub offer_ram: Option<u64>,
    /// GPUs per slot; GPU jobs get NVIDIA device requests [env: OFFER_GPU] [default: 0]
    #[arg(long, value_name = "N")]
    pub offer_gpu: Option<u64>,
    /// Memory per GPU, MiB (0: unknown) [env: OFFER_VRAM] [default: 0]
    #[arg(long, value_name = "MIB")]
    pub offer_vram: Option<u64>,
    /// Slots: jobs that may run at once, one offer each [env: OFFER_COUNT] [default: 1]
    #[arg(long, value_name = "N")]
    pub offer_count: Option<u32>,
    /// Comma-separated modules to run (NAME or NAME:TAG); empty: any [env: OFFER_MODULES]
    #[arg(long, value_name = "LIST")]
    pub offer_modules: Option<String>,
    /// Let jobs that ask for network access have it [env: ALLOW_NETWORK] [default: false]
    #[arg(long)]
    pub allow_network: bool,
}

#[derive(Debug, Args)]
pub struct RpArgs {
    /// Alter every job's output before submitting it, to demonstrate that a mediator
    /// rejects it and the results collateral is slashed. Refused unless the chain is a
    /// local dev chain (chain id 31337)
    #[arg(long)]
    pub dishonest: bool,
    #[command(flatten)]
    pub offer: OfferArgs,
    #[command(flatten)]
    pub terms: TermsArgs,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The module: NAME:TAG from the built-in catalog (cowsay:v0.0.1) or a directory with lilypad_module.json.tmpl
    #[arg(required_unless_present = "resume")]
    pub module: Option<String>,
    /// Continue a job this machine started and did not see to the end (its job offer id, as
    /// `run` printed it; saved under DATA_DIR/jobs): follows the same deal, calls the
    /// timeouts the job creator is entitled to, downloads and judges the results
    #[arg(long, value_name = "JOB_OFFER_ID", conflicts_with_all = ["module", "inputs"])]
    pub resume: Option<String>,
    /// A module input, KEY=VALUE (repeatable)
    #[arg(short = 'i', long = "input", value_name = "KEY=VALUE")]
    pub inputs: Vec<String>,
    /// Give up if no resource provider takes the job within SECS. Once both sides agreed,
    /// run waits until the deal ends; the deal's deadlines bound that wait, and run calls
    /// the timeouts the job creator is entitled to
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub timeout: u64,
    /// Dispute the results whatever they are: a mediator re-runs the job and decides (costs
    /// the mediation fee)
    #[arg(long, conflicts_with = "mediation_chance")]
    pub check: bool,
    /// Dispute this percentage of results at random, to keep resource providers honest
    #[arg(long, value_name = "PERCENT", default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub mediation_chance: u8,
    /// Where to unpack results (one directory per deal) [default: DATA_DIR/downloaded-files]
    #[arg(long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// No progress display
    #[arg(long, short)]
    pub quiet: bool,
    #[command(flatten)]
    pub terms: TermsArgs,
}

/// Flags of `lilypad mediator`. The mediator's key must be one of the mediators that job
/// creators and resource providers trust (their SERVICE_MEDIATORS).
#[derive(Debug, Args)]
pub struct MediatorArgs {
    /// How many disputed jobs may be re-run at once
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub parallel: usize,
}

/// Flags of `lilypad jc`. Its key must be the job creator contract's operator; it pays
/// each deal like `lilypad run` does and is repaid from the request's deposit.
#[derive(Debug, Args)]
pub struct JcArgs {
    /// How long a requested job may wait for a resource provider before the request fails and the requester is refunded [env: JC_MATCH_TIMEOUT] [default: 3600]
    #[arg(long, value_name = "SECS")]
    pub match_timeout: Option<u64>,
    /// The block a brand-new jc starts reading requests from (later starts resume from the block saved under DATA_DIR/jc) [env: JC_FROM_BLOCK] [default: 0]
    #[arg(long, value_name = "BLOCK")]
    pub from_block: Option<u64>,
    /// Have a mediator check this percentage of results
    #[arg(long, value_name = "PERCENT", default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub mediation_chance: u8,
    #[command(flatten)]
    pub terms: TermsArgs,
}

/// Flags of `lilypad run-cowsay-onchain`.
#[derive(Debug, Args)]
pub struct OnchainArgs {
    /// What the cow says
    pub message: String,
    /// The example client contract [env: WEB3_EXAMPLE_CLIENT_ADDRESS] [default: the dev network's]
    #[arg(long, value_name = "ADDRESS")]
    pub example_client: Option<String>,
    /// Give up waiting for the result after this many seconds
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    pub timeout: u64,
    /// Where to unpack the results [default: DATA_DIR/downloaded-files]
    #[arg(long, value_name = "DIR")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DevArgs {
    /// anvil binary [default: contracts/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil, then PATH]
    #[arg(long, value_name = "FILE")]
    pub anvil_path: Option<PathBuf>,
    /// Solver port [env: SERVER_PORT] [default: 8080]
    #[arg(long, value_name = "PORT")]
    pub server_port: Option<u16>,
    /// Start the resource provider in dishonest mode (it alters every job's results), to
    /// see `lilypad run --check` end in MediationRejected
    #[arg(long)]
    pub dishonest: bool,
    #[command(flatten)]
    pub offer: OfferArgs,
    #[command(flatten)]
    pub terms: TermsArgs,
}

#[derive(Debug, Subcommand)]
pub enum ChainCommand {
    /// Deploy every contract with the key in WEB3_PRIVATE_KEY (same order as contracts/script/Deploy.s.sol)
    Deploy {
        /// Receives slashed collateral [default: the deployer]
        #[arg(long, value_name = "ADDRESS")]
        treasury: Option<String>,
        /// May complete on-chain job requests (`lilypad jc`'s address) [default: the deployer]
        #[arg(long, value_name = "ADDRESS")]
        operator: Option<String>,
        /// Use this ERC-20 instead of deploying the Lilypad token
        #[arg(long, value_name = "ADDRESS")]
        token: Option<String>,
        /// Token supply minted to the deployer
        #[arg(long, value_name = "AMOUNT", default_value = "1000000000lp")]
        supply: String,
        /// Deposit an on-chain job request must carry
        #[arg(long, value_name = "AMOUNT", default_value = "2lp")]
        job_deposit: String,
        /// Seconds before an unserved on-chain request may be cancelled
        #[arg(long, value_name = "SECS", default_value_t = 86_400)]
        request_timeout: u64,
    },
    /// Send ETH and tokens from the key in WEB3_PRIVATE_KEY to accounts
    Fund {
        /// Accounts to fund
        #[arg(required = true, value_name = "ADDRESS")]
        to: Vec<String>,
        /// Ether per account (wei or e.g. 1lp meaning 1 ether)
        #[arg(long, value_name = "AMOUNT", default_value = "1lp")]
        eth: String,
        /// Tokens per account (wei or e.g. 100lp)
        #[arg(long, value_name = "AMOUNT", default_value = "100lp")]
        lp: String,
    },
    /// Print ETH and token balances
    Balances {
        #[arg(required = true, value_name = "ADDRESS")]
        addresses: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Write a new private key to a file only you can read, and print its address
    Generate {
        /// Key file to create (never overwritten) [default: DATA_DIR/keys/ADDRESS.key]
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

/// Collects set flags as (settings key, value) overrides.
#[derive(Default)]
pub struct Overrides(pub Vec<(&'static str, String)>);

impl Overrides {
    fn set<T: ToString>(&mut self, key: &'static str, value: &Option<T>) {
        if let Some(value) = value {
            self.0.push((key, value.to_string()));
        }
    }
}

impl GlobalArgs {
    pub fn overrides(&self, out: &mut Overrides) {
        out.set(
            "data_dir",
            &self.data_dir.as_ref().map(|p| p.display().to_string()),
        );
        out.set("log_level", &self.log_level);
        out.set("log_format", &self.log_format);
        out.set("web3_rpc_url", &self.rpc_url);
        out.set("web3_controller_address", &self.controller);
        out.set(
            "web3_private_key_file",
            &self.key_file.as_ref().map(|p| p.display().to_string()),
        );
        out.set("service_solver", &self.solver);
        out.set("service_mediators", &self.mediators);
        out.set("solver_url", &self.solver_url);
        out.set("poll_interval_ms", &self.poll_interval_ms);
    }
}

impl SolverArgs {
    pub fn overrides(&self, out: &mut Overrides) {
        out.set("server_host", &self.server_host);
        out.set("server_port", &self.server_port);
        out.set("server_url", &self.server_url);
        out.set("offer_ttl", &self.offer_ttl);
        out.set("max_upload_bytes", &self.max_upload_bytes);
    }
}

impl TermsArgs {
    pub fn overrides(&self, out: &mut Overrides) {
        out.set("pricing_instruction_price", &self.instruction_price);
        out.set("pricing_payment_collateral", &self.payment_collateral);
        out.set(
            "pricing_results_collateral_multiple",
            &self.results_collateral_multiple,
        );
        out.set("pricing_mediation_fee", &self.mediation_fee);
        out.set("timeout_agree_time", &self.agree_timeout);
        out.set("timeout_submit_results_time", &self.submit_results_timeout);
        out.set(
            "timeout_submit_results_collateral",
            &self.submit_results_collateral,
        );
        out.set("timeout_judge_results_time", &self.judge_results_timeout);
        out.set(
            "timeout_judge_results_collateral",
            &self.judge_results_collateral,
        );
        out.set(
            "timeout_mediate_results_time",
            &self.mediate_results_timeout,
        );
    }
}

impl OfferArgs {
    pub fn overrides(&self, out: &mut Overrides) {
        out.set("offer_cpu", &self.offer_cpu);
        out.set("offer_ram", &self.offer_ram);
        out.set("offer_gpu", &self.offer_gpu);
        out.set("offer_vram", &self.offer_vram);
        out.set("offer_count", &self.offer_count);
        out.set("offer_modules", &self.offer_modules);
        if self.allow_network {
            out.0.push(("allow_network", "true".into()));
        }
    }
}

impl Cli {
    /// Every flag that was set, as settings overrides.
    pub fn overrides(&self) -> Overrides {
        let mut out = Overrides::default();
        self.global.overrides(&mut out);
        match &self.command {
            Some(Command::Solver(args)) => args.overrides(&mut out),
            Some(Command::Rp(args)) => {
                args.offer.overrides(&mut out);
                args.terms.overrides(&mut out);
            }
            Some(Command::Run(args)) => args.terms.overrides(&mut out),
            Some(Command::Jc(args)) => {
                out.set("jc_match_timeout", &args.match_timeout);
                out.set("jc_from_block", &args.from_block);
                args.terms.overrides(&mut out);
            }
            Some(Command::RunCowsayOnchain(args)) => {
                out.set("web3_example_client_address", &args.example_client);
            }
            Some(Command::Dev(args)) => {
                out.set("server_port", &args.server_port);
                args.offer.overrides(&mut out);
                args.terms.overrides(&mut out);
            }
            _ => {}
        }
        out
    }
}
