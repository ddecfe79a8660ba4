//! Command-line definitions (clap). Each subcommand lists only the options it uses.
//!
//! A setting is written once, here: its flag, its help, its environment variable and its
//! default. The settings key is the environment variable in lower case (`OFFER_CPU` is
//! `offer_cpu` in `lilypad.toml`); [`overrides`] and [`defaults`] read this table, so the
//! layers (defaults < lilypad.toml < environment < flags) need no list of their own.
//! Options without an environment variable are per-invocation choices (`run --timeout`,
//! `chain deploy --treasury`), not settings.

use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, Parser, Subcommand};

/// Lilypad: run Docker jobs on other people's machines, paid and settled on an EVM chain.
///
/// One binary plays every role of the network: the solver that matches offers, the
/// resource provider that runs jobs, the job creator that asks for them, the mediator that
/// re-runs disputed jobs, the service that runs jobs contracts ask for, and a whole local
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

/// Options every subcommand takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Settings file (TOML; keys are the environment names in lower case) [default: ./lilypad.toml if present]
    #[arg(long, global = true, env = "LILYPAD_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where roles keep their databases, results and keys [default: ~/.lilypad]
    #[arg(long, global = true, env = "DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The network to join: a profile's name (DATA_DIR/networks/NAME.toml, where `lilypad
    /// dev` writes `dev`, or one built in) or a profile file's path. It sets the chain, the
    /// contracts, the solver and the mediators; settings and flags still override each
    #[arg(long, global = true, env = "LILYPAD_NETWORK", value_name = "NAME")]
    pub network: Option<String>,
    /// PEM file of certificates to trust for https:// and wss:// besides the public web
    /// roots: the CA of a solver (or chain RPC) behind a TLS proxy with a private
    /// certificate [default: public roots only]
    #[arg(long, global = true, env = "TLS_CA_FILE", value_name = "FILE")]
    pub tls_ca_file: Option<PathBuf>,
    /// Log filter, e.g. info or lilypad=debug
    #[arg(
        long,
        global = true,
        env = "LOG_LEVEL",
        value_name = "FILTER",
        default_value = "info"
    )]
    pub log_level: String,
    /// Log format: pretty or json
    #[arg(
        long,
        global = true,
        env = "LOG_FORMAT",
        value_name = "FORMAT",
        default_value = "pretty"
    )]
    pub log_format: String,
    /// Where NAME:TAG modules live (not built in, not a local directory): the git repository
    /// https://PREFIX + NAME, at TAG. Modules are checked out into DATA_DIR/modules.
    #[arg(
        long,
        global = true,
        env = "MODULE_SHORTCUT_PREFIX",
        value_name = "PREFIX",
        default_value = "github.com/Lilypad-Tech/lilypad-module-"
    )]
    pub module_shortcut_prefix: String,
    /// Read modules from local git repositories (file:// URLs, paths) when another party
    /// names them: a job offer's pinned module (rp, mediator) or a contract's request (jc).
    /// Off by default, so a stranger cannot make this node open repositories on its disk;
    /// `lilypad dev` turns it on (its roles share one host), and `lilypad run` and
    /// `lilypad module` always read your own local modules
    #[arg(long, global = true, env = "ALLOW_LOCAL_MODULES")]
    pub allow_local_modules: bool,
}

/// How a node reaches the chain.
#[derive(Debug, Args)]
pub struct ChainArgs {
    /// The chain's JSON-RPC URL
    #[arg(long, env = "WEB3_RPC_URL", value_name = "URL")]
    pub rpc_url: Option<String>,
    /// The chain's WebSocket URL (ws:// or wss://): roles then react to each new block
    /// instead of waiting for their next poll [default: none; polling only]
    #[arg(long, env = "WEB3_WS_URL", value_name = "URL")]
    pub ws_url: Option<String>,
    /// File holding this node's private key (hex); or set WEB3_PRIVATE_KEY
    #[arg(long, env = "WEB3_PRIVATE_KEY_FILE", value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// Refuse to start unless the node's chain id is this
    #[arg(long, env = "WEB3_CHAIN_ID", value_name = "ID")]
    pub chain_id: Option<u64>,
    /// How often to poll the chain and the solver, in ms
    #[arg(
        long,
        env = "POLL_INTERVAL_MS",
        value_name = "MS",
        default_value = "1000"
    )]
    pub poll_interval_ms: u64,
}

/// Where the contracts are.
#[derive(Debug, Args)]
pub struct ControllerArgs {
    /// Address of the LilypadController (printed by `lilypad chain deploy`)
    #[arg(long, env = "WEB3_CONTROLLER_ADDRESS", value_name = "ADDRESS")]
    pub controller: Option<String>,
}

/// Which solver a party uses.
#[derive(Debug, Args)]
pub struct SolverRefArgs {
    /// The solver's address; both sides of a deal must name the same
    #[arg(long, env = "SERVICE_SOLVER", value_name = "ADDRESS")]
    pub solver: Option<String>,
    /// The solver's URL [default: the URL the solver published in the Users contract]
    #[arg(long, env = "SOLVER_URL", value_name = "URL")]
    pub solver_url: Option<String>,
}

/// Where results travel besides the solver's relay.
#[derive(Debug, Args)]
pub struct IpfsArgs {
    /// A kubo (IPFS) daemon's RPC API, as a multiaddr (/ip4/127.0.0.1/tcp/5001) or URL: the
    /// resource provider adds and pins its results there (their CID is the results id on
    /// chain); job creators and mediators fetch results from it by CID, and fall back to the
    /// solver's relay when it fails [default: none; the solver relay only]
    #[arg(long, env = "IPFS_CONNECT", value_name = "ADDRESS")]
    pub ipfs_connect: Option<String>,
}

/// Which mediators a party trusts.
#[derive(Debug, Args)]
pub struct MediatorsArgs {
    /// Comma-separated mediator addresses you trust
    #[arg(long, env = "SERVICE_MEDIATORS", value_name = "ADDRESSES")]
    pub mediators: Option<String>,
}

/// The engine jobs run on.
#[derive(Debug, Args)]
pub struct ExecutorArgs {
    /// The engine that runs jobs: docker (this host's Docker engine), bacalhau (a Bacalhau
    /// network, through its orchestrator at BACALHAU_API_HOST), or noop (runs nothing and
    /// reports what it would have run: for trying a network before Docker is installed)
    #[arg(long, env = "EXECUTOR", value_name = "ENGINE", default_value = "docker",
          value_parser = ["docker", "bacalhau", "noop"])]
    pub executor: String,
    /// With `--executor bacalhau`: the Bacalhau orchestrator's API, as a URL (or host:port).
    /// Its compute nodes must run Docker jobs and publish results with the local publisher
    #[arg(long, env = "BACALHAU_API_HOST", value_name = "URL",
          default_value = crate::executor::bacalhau::DEFAULT_API)]
    pub bacalhau_api_host: String,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the solver: the HTTP/WebSocket market that matches offers into deals
    ///
    /// Its store is SQLite under DATA_DIR, or the PostgreSQL database SOLVER_DATABASE_URL names
    /// (postgres://USER:PASSWORD@HOST:5432/DB; environment or settings file only, never a flag).
    Solver(SolverArgs),
    /// Run a resource provider: sell this machine's CPU/RAM/GPUs and run jobs in Docker
    Rp(RpArgs),
    /// Run one job as its job creator: post a job offer, pay, wait, download and print the result
    Run(RunArgs),
    /// Run a mediator: re-run disputed jobs and accept or reject their results on chain
    Mediator(MediatorArgs),
    /// Run the on-chain job service: serve jobs that contracts request through
    /// LilypadOnChainJobCreator, and report results (or failures, refunded) back to them
    Jc(JcArgs),
    /// Ask the example client contract to run cowsay, as a dapp user would, and print the
    /// result CID and the cow
    #[command(name = "run-cowsay-onchain")]
    RunCowsayOnchain(OnchainArgs),
    /// Run a faucet: a web page and `POST /api/claim {address}` that give test accounts
    /// ether and LP from this node's key, once per address and per client IP each period
    Faucet(FaucetArgs),
    /// Run the SaaS API: accounts, credits, API keys and jobs for people without a wallet,
    /// run through the network with this node's key. `lilypad saas grant EMAIL AMOUNT`
    /// gives an account credits
    Saas(SaasArgs),
    /// Start a whole local network in this process: anvil, contracts, funded keys, the
    /// solver, a resource provider, a mediator, the on-chain job service (jc) and a faucet
    Dev(DevArgs),
    /// Deploy the contracts, fund accounts and read balances on any chain
    #[command(subcommand)]
    Chain(ChainCommand),
    /// Manage key files
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Render, fetch and list modules: check a module before paying for a job
    #[command(subcommand)]
    Module(ModuleCommand),
}

/// Flags of `lilypad saas`. Its store is SQLite under DATA_DIR, or the PostgreSQL database
/// DATABASE_URL names (environment or settings file only, never a flag).
#[derive(Debug, Args)]
pub struct SaasArgs {
    #[command(subcommand)]
    pub command: Option<SaasCommand>,
    #[command(flatten)]
    pub chain: ChainArgs,
    #[command(flatten)]
    pub controller: ControllerArgs,
    #[command(flatten)]
    pub solver: SolverRefArgs,
    #[command(flatten)]
    pub mediators: MediatorsArgs,
    #[command(flatten)]
    pub terms: TermsArgs,
    #[command(flatten)]
    pub service: SaasServiceArgs,
    #[command(flatten)]
    pub proxies: ProxyArgs,
}

/// Where the SaaS service listens and what it offers (`lilypad saas`, `lilypad dev`).
#[derive(Debug, Args)]
pub struct SaasServiceArgs {
    /// JSON file listing the modules on offer: [{"module", "title", "cost", "inputs": [names]}]
    /// [default: cowsay:v0.0.1 for 1 credit, input Message]
    #[arg(long, env = "SAAS_CATALOG", value_name = "FILE")]
    pub saas_catalog: Option<PathBuf>,
    /// Address the SaaS API listens on
    #[arg(
        long,
        env = "SAAS_LISTEN",
        value_name = "ADDR:PORT",
        default_value = "127.0.0.1:8082"
    )]
    pub saas_listen: String,
}

#[derive(Debug, Subcommand)]
pub enum SaasCommand {
    /// Give the account with this email AMOUNT credits (an operator's grant, in the ledger)
    Grant {
        email: String,
        #[arg(value_name = "AMOUNT")]
        amount: u32,
    },
}

/// Who a server's clients are behind a reverse proxy (`lilypad solver`, `lilypad faucet`).
#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// Reverse proxies in front of this server (nginx: 1): the client's IP is then the one
    /// the farthest of them saw, from X-Forwarded-For. 0: the connection's own address
    #[arg(
        long,
        env = "TRUSTED_PROXY_HOPS",
        value_name = "N",
        default_value = "0"
    )]
    pub trusted_proxy_hops: usize,
}

/// What a faucet claim gives and how often (`lilypad faucet`, `lilypad dev`).
#[derive(Debug, Args)]
pub struct FaucetPayoutArgs {
    /// Address the faucet's page and API listen on
    #[arg(
        long,
        env = "FAUCET_LISTEN",
        value_name = "ADDR:PORT",
        default_value = "127.0.0.1:8081"
    )]
    pub faucet_listen: String,
    /// Ether per claim (wei, or e.g. 1lp meaning 1 ether)
    #[arg(long, env = "FAUCET_ETH", value_name = "AMOUNT", default_value = "1lp")]
    pub faucet_eth: String,
    /// Tokens per claim (wei, or e.g. 100lp)
    #[arg(
        long,
        env = "FAUCET_LP",
        value_name = "AMOUNT",
        default_value = "100lp"
    )]
    pub faucet_lp: String,
    /// Seconds an address, and a client IP, wait between claims
    #[arg(
        long,
        env = "FAUCET_PERIOD",
        value_name = "SECS",
        default_value = "86400"
    )]
    pub faucet_period: u64,
}

/// Flags of `lilypad faucet`.
#[derive(Debug, Args)]
pub struct FaucetArgs {
    #[command(flatten)]
    pub chain: ChainArgs,
    #[command(flatten)]
    pub controller: ControllerArgs,
    #[command(flatten)]
    pub payout: FaucetPayoutArgs,
    #[command(flatten)]
    pub proxies: ProxyArgs,
    /// hCaptcha site key; with HCAPTCHA_SECRET_FILE, every claim needs a solved captcha
    /// [default: no captcha]
    #[arg(long, env = "HCAPTCHA_SITE_KEY", value_name = "KEY")]
    pub hcaptcha_site_key: Option<String>,
    /// File holding the hCaptcha secret (never a flag's value)
    #[arg(long, env = "HCAPTCHA_SECRET_FILE", value_name = "FILE")]
    pub hcaptcha_secret_file: Option<PathBuf>,
    /// Where hCaptcha responses are verified
    #[arg(
        long,
        env = "HCAPTCHA_VERIFY_URL",
        value_name = "URL",
        default_value = "https://api.hcaptcha.com/siteverify"
    )]
    pub hcaptcha_verify_url: String,
}

/// Flags of `lilypad solver`.
#[derive(Debug, Args)]
pub struct SolverArgs {
    #[command(flatten)]
    pub chain: ChainArgs,
    #[command(flatten)]
    pub controller: ControllerArgs,
    /// Interface to listen on
    #[arg(
        long,
        env = "SERVER_HOST",
        value_name = "HOST",
        default_value = "127.0.0.1"
    )]
    pub server_host: String,
    #[command(flatten)]
    pub port: PortArgs,
    /// Public URL, published in the Users contract so clients find this solver [default: http://HOST:PORT]
    #[arg(long, env = "SERVER_URL", value_name = "URL")]
    pub server_url: Option<String>,
    #[command(flatten)]
    pub offer_ttl: OfferTtlArgs,
    /// Largest request body (results uploads), bytes
    #[arg(
        long,
        env = "MAX_UPLOAD_BYTES",
        value_name = "BYTES",
        default_value = "67108864"
    )]
    pub max_upload_bytes: u64,
    /// Unmatched job offers one job creator may have open at once; more are refused with
    /// 429 until some are matched or withdrawn (job offers cost nothing to post)
    #[arg(
        long,
        env = "MAX_OPEN_JOB_OFFERS",
        value_name = "N",
        default_value = "50"
    )]
    pub max_open_job_offers: u32,
    /// Requests a second one client IP may send (bursts of twice that); more are answered
    /// 429 with Retry-After. 0: no limit
    #[arg(
        long,
        env = "RATE_LIMIT_PER_IP",
        value_name = "N",
        default_value = "500"
    )]
    pub rate_limit_per_ip: u32,
    /// Signed requests a second one key may send (bursts of twice that); more are answered
    /// 429 with Retry-After. 0: no limit
    #[arg(
        long,
        env = "RATE_LIMIT_PER_ADDRESS",
        value_name = "N",
        default_value = "100"
    )]
    pub rate_limit_per_address: u32,
    /// Event streams (/ws) open at once, in all; more are answered 503. 0: no limit
    #[arg(
        long,
        env = "MAX_WS_CLIENTS",
        value_name = "N",
        default_value = "10000"
    )]
    pub max_ws_clients: usize,
    /// Event streams (/ws) one client IP may hold open at once. 0: no limit
    #[arg(
        long,
        env = "MAX_WS_CLIENTS_PER_IP",
        value_name = "N",
        default_value = "256"
    )]
    pub max_ws_clients_per_ip: usize,
    #[command(flatten)]
    pub proxies: ProxyArgs,
    /// Seconds a deal that ended (or never got past negotiating) is kept, with its offers,
    /// result and transactions; offers left unmatched this long are dropped too
    #[arg(
        long,
        env = "RETAIN_DEALS",
        value_name = "SECS",
        default_value = "2592000"
    )]
    pub retain_deals: u64,
    #[command(flatten)]
    pub retain_results: RetainResultsArgs,
    /// Newest events kept for `/ws` subscribers that reconnect
    #[arg(
        long,
        env = "RETAIN_EVENTS",
        value_name = "N",
        default_value = "100000"
    )]
    pub retain_events: u64,
}

/// How long results files are kept once their deal no longer needs them.
#[derive(Debug, Args)]
pub struct RetainResultsArgs {
    /// Seconds results files are kept once their deal ended: the solver's copies, and the
    /// job directories of the resource provider and the mediator (the job creator has its
    /// own download; with IPFS they stay there too)
    #[arg(
        long,
        env = "RETAIN_RESULTS",
        value_name = "SECS",
        default_value = "604800"
    )]
    pub retain_results: u64,
}

/// The solver's port.
#[derive(Debug, Args)]
pub struct PortArgs {
    /// Port the solver listens on
    #[arg(long, env = "SERVER_PORT", value_name = "PORT", default_value = "8080")]
    pub server_port: u16,
}

/// How long a resource offer lives without a refresh.
#[derive(Debug, Args)]
pub struct OfferTtlArgs {
    /// Seconds a resource offer stays matchable after its last refresh (the solver drops
    /// it after this; a resource provider refreshes three times as often)
    #[arg(long, env = "OFFER_TTL", value_name = "SECS", default_value = "30")]
    pub offer_ttl: u64,
}

/// Deal terms a party offers. Both sides must offer the same collaterals and timeouts.
#[derive(Debug, Args)]
pub struct TermsArgs {
    /// Price per instruction, wei or e.g. 1lp (job creator: the most it pays; resource provider: what it asks)
    #[arg(
        long,
        env = "PRICING_INSTRUCTION_PRICE",
        value_name = "AMOUNT",
        default_value = "1lp"
    )]
    pub instruction_price: String,
    /// Payment collateral the job creator escrows
    #[arg(
        long,
        env = "PRICING_PAYMENT_COLLATERAL",
        value_name = "AMOUNT",
        default_value = "2lp"
    )]
    pub payment_collateral: String,
    /// Results collateral = this x cost, escrowed by the resource provider
    #[arg(
        long,
        env = "PRICING_RESULTS_COLLATERAL_MULTIPLE",
        value_name = "N",
        default_value = "2"
    )]
    pub results_collateral_multiple: u64,
    /// Fee paid to a mediator if the job creator disputes
    #[arg(
        long,
        env = "PRICING_MEDIATION_FEE",
        value_name = "AMOUNT",
        default_value = "1lp"
    )]
    pub mediation_fee: String,
    /// Seconds both sides have to agree (agreeing is automatic: minutes, not hours, so a
    /// deal the other side abandoned releases its deposits soon)
    #[arg(
        long,
        env = "TIMEOUT_AGREE_TIME",
        value_name = "SECS",
        default_value = "300"
    )]
    pub agree_timeout: u64,
    /// Seconds the resource provider has to submit results
    #[arg(
        long,
        env = "TIMEOUT_SUBMIT_RESULTS_TIME",
        value_name = "SECS",
        default_value = "3600"
    )]
    pub submit_results_timeout: u64,
    /// The resource provider's stake on submitting in time
    #[arg(
        long,
        env = "TIMEOUT_SUBMIT_RESULTS_COLLATERAL",
        value_name = "AMOUNT",
        default_value = "1lp"
    )]
    pub submit_results_collateral: String,
    /// Seconds the job creator has to accept or dispute
    #[arg(
        long,
        env = "TIMEOUT_JUDGE_RESULTS_TIME",
        value_name = "SECS",
        default_value = "3600"
    )]
    pub judge_results_timeout: u64,
    /// The job creator's stake on judging in time
    #[arg(
        long,
        env = "TIMEOUT_JUDGE_RESULTS_COLLATERAL",
        value_name = "AMOUNT",
        default_value = "1lp"
    )]
    pub judge_results_collateral: String,
    /// Seconds the mediator has to decide
    #[arg(
        long,
        env = "TIMEOUT_MEDIATE_RESULTS_TIME",
        value_name = "SECS",
        default_value = "3600"
    )]
    pub mediate_results_timeout: u64,
}

/// What a resource provider sells.
#[derive(Debug, Args)]
pub struct OfferArgs {
    /// CPU per slot, millicores
    #[arg(
        long,
        env = "OFFER_CPU",
        value_name = "MILLICORES",
        default_value = "1000"
    )]
    pub offer_cpu: u64,
    /// RAM per slot, MiB
    #[arg(long, env = "OFFER_RAM", value_name = "MIB", default_value = "1024")]
    pub offer_ram: u64,
    /// GPUs per slot; GPU jobs get NVIDIA device requests
    #[arg(long, env = "OFFER_GPU", value_name = "N", default_value = "0")]
    pub offer_gpu: u64,
    /// Memory per GPU, MiB (0: unknown)
    #[arg(long, env = "OFFER_VRAM", value_name = "MIB", default_value = "0")]
    pub offer_vram: u64,
    /// Disk space per slot, MiB; jobs whose module declares more (machine.disk) are not
    /// matched to it (0: not limited)
    #[arg(long, env = "OFFER_DISK", value_name = "MIB", default_value = "0")]
    pub offer_disk: u64,
    /// Slots: jobs that may run at once, one offer each
    #[arg(long, env = "OFFER_COUNT", value_name = "N", default_value = "1")]
    pub offer_count: u32,
    /// Comma-separated modules to run: NAME or NAME:TAG (built-in or local modules), a repository
    /// pattern for modules kept in git (github.com/Lilypad-Tech/*; * matches anything), or
    /// REPO@COMMIT (that repository at that commit); empty: any. Deals for other modules are
    /// never matched to this RP (explain counts them under "module")
    #[arg(long, env = "OFFER_MODULES", value_name = "LIST", default_value = "")]
    pub offer_modules: String,
    /// Let jobs that ask for network access have it
    #[arg(long, env = "ALLOW_NETWORK")]
    pub allow_network: bool,
    /// Seconds a new deal holds its slot waiting for the job creator, who agrees first,
    /// before the slot is offered again (the deal still runs if it agrees later, up to the
    /// deal's agree timeout; agreeing is automatic, so seconds are enough)
    #[arg(
        long,
        env = "OFFER_AGREE_WINDOW",
        value_name = "SECS",
        default_value = "20"
    )]
    pub agree_window: u64,
    #[command(flatten)]
    pub executor: ExecutorArgs,
}

#[derive(Debug, Args)]
pub struct RpArgs {
    /// Check everything this resource provider needs (engine, GPUs against the offer, disk,
    /// chain and contracts, clocks, solver, funds for gas and collateral), print a table
    /// of what passed, and exit: 0 when all passed, 1 otherwise. Sends nothing
    #[arg(long)]
    pub preflight: bool,
    /// Alter every job's output before submitting it, to demonstrate that a mediator
    /// rejects it and the results collateral is slashed. Refused unless the chain is a
    /// local dev chain (chain id 31337)
    #[arg(long)]
    pub dishonest: bool,
    #[command(flatten)]
    pub chain: ChainArgs,
    #[command(flatten)]
    pub controller: ControllerArgs,
    #[command(flatten)]
    pub solver: SolverRefArgs,
    #[command(flatten)]
    pub mediators: MediatorsArgs,
    #[command(flatten)]
    pub offer: OfferArgs,
    #[command(flatten)]
    pub offer_ttl: OfferTtlArgs,
    #[command(flatten)]
    pub terms: TermsArgs,
    #[command(flatten)]
    pub ipfs: IpfsArgs,
    #[command(flatten)]
    pub retain_results: RetainResultsArgs,
    #[command(flatten)]
    pub ops: OpsArgs,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The module: cowsay:v0.0.1 (built into this binary, for offline demos), a directory
    /// with lilypad_module.json.tmpl, or a git repository at a ref: NAME:TAG (the default
    /// module org's lilypad-module-NAME, see MODULE_SHORTCUT_PREFIX), HOST/OWNER/REPO:REF,
    /// https://…:REF or file:///…:REF. A ref is pinned to its commit before the offer is posted
    #[arg(required_unless_present_any = ["resume", "module_repo"])]
    pub module: Option<String>,
    /// A module in any git repository, by URL (https://…, file:///…); with --module-ref
    #[arg(long, value_name = "URL", conflicts_with_all = ["module", "resume"], requires = "module_ref")]
    pub module_repo: Option<String>,
    /// The tag, branch or commit of --module-repo (pinned to its commit before the offer is posted)
    #[arg(long, value_name = "REF", requires = "module_repo")]
    pub module_ref: Option<String>,
    /// The template's path in --module-repo [default: lilypad_module.json.tmpl]
    #[arg(long, value_name = "PATH", requires = "module_repo")]
    pub module_path: Option<String>,
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
    /// Accept results that say the resource provider's engine could not run the job (its
    /// image missing, its engine down) and pay for them; by default such results are
    /// disputed, so a mediator decides
    #[arg(long)]
    pub accept_failures: bool,
    /// Where to unpack results (one directory per deal) [default: DATA_DIR/downloaded-files]
    #[arg(long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// No progress display
    #[arg(long, short)]
    pub quiet: bool,
    #[command(flatten)]
    pub chain: ChainArgs,
    #[command(flatten)]
    pub controller: ControllerArgs,
    #[command(flatten)]
    pub solver: SolverRefArgs,
    #[command(flatten)]
    pub mediators: MediatorsArgs,
    #[command(flatten)]
    pub terms: TermsArgs,
    #[command(flatten)]
    pub ipfs: IpfsArgs,
}

/// Where a long-running role serves /health and /metrics.
#[derive(Debug, Args)]
pub struct OpsArgs {
    /// Serve /health (200 when the chain, the solver and the engine answer, else 503) and
    /// Prometheus /metrics on this address, e.g. 127.0.0.1:9461 [default: not served]
    #[arg(long, env = "METRICS_LISTEN", value_name = "ADDR:PORT")]
    pub metrics_listen: Option<String>,
}

/// Flags of `lilypad mediator`. The mediator's key must be one of the mediators that job
/// creators and resource providers trust (their SERVICE_MEDIATORS).
#[derive(Debug, Args)]
pub struct MediatorArgs {
    /// How many disputed jobs may be re-run at once
    #[arg(long, env = "MEDIATOR_PARALLEL", value_name = "N", default_value = "2")]
    pub parallel: usize,
    #[command(flatten)]
    pub retain_results: RetainResultsArgs,
    #[command(flatten)]
    pub chain: ChainArgs,
    #[command(flatten)]
    pub controller: ControllerArgs,
    #[command(flatten)]
    pub solver: SolverRefArgs,
    #[command(flatten)]
    pub executor: ExecutorArgs,
    #[command(flatten)]
    pub ipfs: IpfsArgs,
    #[command(flatten)]
    pub ops: OpsArgs,
}

/// Flags of `lilypad jc`. Its key must be the job creator contract's operator; it pays
/// each deal like `lilypad run` does and is repaid from the request's deposit.
#[derive(Debug, Args)]
pub struct JcArgs {
    #[command(flatten)]
    pub service: JcServiceArgs,
    #[command(flatten)]
    pub chain: ChainArgs,
    #[command(flatten)]
    pub controller: ControllerArgs,
    #[command(flatten)]
    pub solver: SolverRefArgs,
    #[command(flatten)]
    pub mediators: MediatorsArgs,
    #[command(flatten)]
    pub terms: TermsArgs,
    #[command(flatten)]
    pub ipfs: IpfsArgs,
    #[command(flatten)]
    pub ops: OpsArgs,
}

/// How the on-chain job service serves requests.
#[derive(Debug, Args)]
pub struct JcServiceArgs {
    /// How long a requested job may wait for a resource provider before the request fails and the requester is refunded, seconds
    #[arg(
        long,
        env = "JC_MATCH_TIMEOUT",
        value_name = "SECS",
        default_value = "3600"
    )]
    pub match_timeout: u64,
    /// The block a brand-new jc starts reading requests from (later starts resume from the block saved in DATA_DIR/jc/jc.db)
    #[arg(long, env = "JC_FROM_BLOCK", value_name = "BLOCK", default_value = "0")]
    pub from_block: u64,
    /// Have a mediator check this percentage of results
    #[arg(long, env = "JC_MEDIATION_CHANCE", value_name = "PERCENT", default_value = "0",
          value_parser = clap::value_parser!(u8).range(0..=100))]
    pub mediation_chance: u8,
}

/// Flags of `lilypad run-cowsay-onchain`.
#[derive(Debug, Args)]
pub struct OnchainArgs {
    /// What the cow says
    pub message: String,
    /// The example client contract [default: the dev network's]
    #[arg(long, env = "WEB3_EXAMPLE_CLIENT_ADDRESS", value_name = "ADDRESS")]
    pub example_client: Option<String>,
    /// Give up waiting for the result after this many seconds
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    pub timeout: u64,
    /// Where to unpack the results [default: DATA_DIR/downloaded-files]
    #[arg(long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub chain: ChainArgs,
    #[command(flatten)]
    pub controller: ControllerArgs,
    #[command(flatten)]
    pub solver: SolverRefArgs,
    #[command(flatten)]
    pub mediators: MediatorsArgs,
    #[command(flatten)]
    pub ipfs: IpfsArgs,
}

/// Flags of `lilypad dev`. The network's own keys, chain and solver are made here; the
/// resource provider sells what the offer flags say, on the terms the terms flags say.
#[derive(Debug, Args)]
pub struct DevArgs {
    /// The chain to run: anvil (a block per transaction, instant) or geth (`geth --dev`: real
    /// block times and a real transaction pool, like a public chain; `make tools` builds it)
    #[arg(long, env = "DEV_CHAIN", value_name = "NODE", default_value = "anvil", value_parser = ["anvil", "geth"])]
    pub chain: String,
    /// Seconds between blocks; 0: anvil mines each transaction at once, geth uses 1
    #[arg(long, env = "DEV_BLOCK_TIME", value_name = "SECS", default_value_t = 0)]
    pub block_time: u64,
    /// anvil binary [default: contracts/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil, then PATH]
    #[arg(long, value_name = "FILE")]
    pub anvil_path: Option<PathBuf>,
    /// geth binary [default: LILYPAD_TOOLS_DIR/bin/geth (`make tools`), then PATH]
    #[arg(long, value_name = "FILE")]
    pub geth_path: Option<PathBuf>,
    #[command(flatten)]
    pub port: PortArgs,
    /// Start the resource provider in dishonest mode (it alters every job's results), to
    /// see `lilypad run --check` end in MediationRejected
    #[arg(long)]
    pub dishonest: bool,
    #[command(flatten)]
    pub offer: OfferArgs,
    #[command(flatten)]
    pub terms: TermsArgs,
    #[command(flatten)]
    pub jc: JcServiceArgs,
    #[command(flatten)]
    pub faucet: FaucetPayoutArgs,
    #[command(flatten)]
    pub saas: SaasServiceArgs,
    #[command(flatten)]
    pub ipfs: IpfsArgs,
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
        /// Name of the network profile written for this deployment, to
        /// DATA_DIR/networks/NAME.toml (nodes then join with --network NAME or the file).
        /// It carries SERVICE_SOLVER, SOLVER_URL, SERVICE_MEDIATORS and TLS_CA_FILE's
        /// certificates when those are set [default: chain-ID]
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// Blocks each contract's deployment waits for before the next is sent (more on a
        /// chain whose recent blocks may be reorganised away)
        #[arg(long, value_name = "N", default_value_t = 1)]
        confirmations: usize,
        #[command(flatten)]
        chain: ChainArgs,
    },
    /// Set up a whole network from one funded key (WEB3_PRIVATE_KEY): a key per role in
    /// DATA_DIR/keys (solver, mediator, resource-provider, job-creator, jc), the contracts
    /// (with the jc key as the on-chain job service's operator), each role's key topped up
    /// with ETH and LP, and the profile DATA_DIR/networks/NAME.toml naming the solver (at
    /// SOLVER_URL) and the mediator. Waits for the chain to answer first. Running it again
    /// keeps the keys, reuses the deployment while the chain still has it, and only tops up.
    /// This is what the compose file's `bootstrap` service runs
    Bootstrap {
        /// Name of the network profile to write
        #[arg(long, value_name = "NAME")]
        name: String,
        /// Ether each role's key is topped up to (wei or e.g. 10lp meaning 10 ether)
        #[arg(long, value_name = "AMOUNT", default_value = "10lp")]
        eth: String,
        /// Tokens each role's key is topped up to (wei or e.g. 1000lp)
        #[arg(long, value_name = "AMOUNT", default_value = "1000lp")]
        lp: String,
        /// Seconds to wait for the chain's RPC to answer
        #[arg(long, value_name = "SECS", default_value_t = 60)]
        wait: u64,
        /// The URL the roles reach the solver at, written into the profile (required)
        #[arg(long, env = "SOLVER_URL", value_name = "URL")]
        solver_url: Option<String>,
        /// Blocks each contract's deployment waits for
        #[arg(long, value_name = "N", default_value_t = 1)]
        confirmations: usize,
        #[command(flatten)]
        chain: ChainArgs,
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
        #[command(flatten)]
        chain: ChainArgs,
        #[command(flatten)]
        controller: ControllerArgs,
    },
    /// Print ETH and token balances
    Balances {
        #[arg(required = true, value_name = "ADDRESS")]
        addresses: Vec<String>,
        #[command(flatten)]
        chain: ChainArgs,
        #[command(flatten)]
        controller: ControllerArgs,
    },
}

/// `lilypad module ...`. MODULE is what `run` takes: a built-in NAME:TAG (cowsay:v0.0.1), a
/// directory with lilypad_module.json.tmpl, or a git repository at a ref (NAME:TAG from the
/// default module org, HOST/OWNER/REPO:REF, https://…:REF, file:///…:REF).
#[derive(Debug, Subcommand)]
pub enum ModuleCommand {
    /// Print the module's template rendered with the inputs (as Go's Lilypad renders it),
    /// then the job that would run, or why it cannot
    Render {
        /// The module
        module: String,
        /// A module input, KEY=VALUE (repeatable; the value may contain = and ,)
        #[arg(short = 'i', long = "input", value_name = "KEY=VALUE")]
        inputs: Vec<String>,
    },
    /// Fetch a module kept in git into DATA_DIR/modules and print the commit its ref names
    Pull {
        /// The module
        module: String,
    },
    /// List the module checkouts under DATA_DIR/modules (repository and commit)
    Ls,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Write a new private key to a file only you can read, and print its address
    Generate {
        /// Key file to create (never overwritten) [default: DATA_DIR/keys/ADDRESS.key]
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Write a new key for each service of a network (ADMIN, FAUCET, SOLVER, MEDIATOR,
    /// RESOURCE_PROVIDER, JOB_CREATOR) as NAME_ADDRESS and NAME_PRIVATE_KEY lines to an env
    /// file only you can read; prints the addresses (to fund), never the keys
    GenerateAddresses {
        /// The env file to create (never overwritten)
        #[arg(long, value_name = "FILE", default_value = "prod.env")]
        out: PathBuf,
        /// Print the env file, keys included, to stdout instead of writing a file
        #[arg(long, conflicts_with = "out")]
        stdout: bool,
    },
}

/// Every setting given on the command line or in the environment, as (settings key, raw
/// value): the options of the chosen (sub)commands that have an environment variable.
/// `command` is the command `matches` came from.
pub fn overrides(command: &clap::Command, matches: &ArgMatches) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut level = Some((command, matches));
    while let Some((command, matches)) = level {
        for arg in command.get_arguments() {
            let (Some(key), id) = (settings_key(arg), arg.get_id().as_str()) else {
                continue;
            };
            let given = matches!(
                matches.value_source(id),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            );
            let value = given
                .then(|| matches.get_raw(id).and_then(|mut raw| raw.next()))
                .flatten();
            if let Some(value) = value {
                out.push((key, value.to_string_lossy().into_owned()));
            }
        }
        level = matches.subcommand().and_then(|(name, matches)| {
            command
                .find_subcommand(name)
                .map(|command| (command, matches))
        });
    }
    out
}

/// The default of every setting, as (settings key, value), from every subcommand's options.
pub fn defaults(command: &clap::Command) -> Vec<(String, String)> {
    // Building fills in what actions imply (a switch defaults to false).
    let mut command = command.clone();
    command.build();
    let mut out = Vec::new();
    let mut pending = vec![&command];
    while let Some(command) = pending.pop() {
        for arg in command.get_arguments() {
            let (Some(key), Some(default)) = (settings_key(arg), arg.get_default_values().first())
            else {
                continue;
            };
            out.push((key, default.to_string_lossy().into_owned()));
        }
        pending.extend(command.get_subcommands());
    }
    out
}

/// The settings key of an option: its environment variable in lower case.
fn settings_key(arg: &clap::Arg) -> Option<String> {
    arg.get_env()
        .map(|env| env.to_string_lossy().to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn parse(args: &[&str]) -> Vec<(String, String)> {
        let mut command = Cli::command();
        let matches = command.try_get_matches_from_mut(args).unwrap();
        overrides(&command, &matches)
    }

    #[test]
    fn flags_become_settings_under_their_environment_names() {
        let set = parse(&[
            "lilypad",
            "dev",
            "--offer-modules",
            "cowsay:v0.0.1",
            "--allow-network",
            "--instruction-price",
            "3lp",
            "--data-dir",
            "/tmp/x",
        ]);
        for (key, value) in [
            ("offer_modules", "cowsay:v0.0.1"),
            ("allow_network", "true"),
            ("pricing_instruction_price", "3lp"),
            ("data_dir", "/tmp/x"),
        ] {
            assert!(
                set.contains(&(key.to_string(), value.to_string())),
                "{key}: {set:?}"
            );
        }
        assert!(
            !set.iter().any(|(key, _)| key == "offer_cpu"),
            "defaults are not overrides: {set:?}"
        );
    }

    #[test]
    fn every_setting_has_one_default() {
        let defaults = defaults(&Cli::command());
        let mut keys: Vec<&str> = defaults.iter().map(|(key, _)| key.as_str()).collect();
        assert!(keys.contains(&"offer_cpu") && keys.contains(&"timeout_agree_time"));
        // An option shared by several subcommands must default the same everywhere.
        keys.sort();
        keys.dedup();
        for key in keys {
            let values: std::collections::BTreeSet<&str> = defaults
                .iter()
                .filter(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
                .collect();
            assert_eq!(values.len(), 1, "{key} has defaults {values:?}");
        }
    }
}
