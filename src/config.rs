//! Settings for every role, layered: defaults < `lilypad.toml` < environment (the Go
//! system's names: WEB3_PRIVATE_KEY, SERVICE_SOLVER, OFFER_GPU, ...) < command-line flags.
//! Keys are the environment names in lower case, so the file, the env and the flags use one
//! vocabulary; each option's flag, variable, help and default are declared once, in
//! `cli.rs`. Validated once at start with errors that name the flag and the variable.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::CommandFactory;
use ethers::signers::LocalWallet;
use ethers::types::Address;
use serde::Deserialize;

use crate::data::{amount, MachineSpec, Pricing, Services, Timeouts};

/// A value that must never be printed.
#[derive(Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

/// Serialised (to show settings) as it prints: never the value.
impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format!("{self:?}"))
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Secret {
        Secret(value)
    }
}

impl Secret {
    /// The value itself, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() {
            "<unset>"
        } else {
            "<redacted>"
        })
    }
}

/// Every setting. Field names are the environment variables in lower case; each one but
/// the key itself is an option in `cli.rs` (a test keeps the two in step).
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct Settings {
    pub web3_rpc_url: Option<String>,
    pub web3_ws_url: Option<String>,
    pub web3_private_key: Option<Secret>,
    pub web3_private_key_file: Option<PathBuf>,
    pub web3_chain_id: Option<u64>,
    pub web3_controller_address: Option<String>,
    pub service_solver: Option<String>,
    pub service_mediators: Option<String>,
    /// The solver's URL for clients; default: read from the Users contract.
    pub solver_url: Option<String>,
    pub server_host: String,
    pub server_port: u16,
    pub server_url: Option<String>,
    pub offer_cpu: u64,
    pub offer_ram: u64,
    pub offer_gpu: u64,
    pub offer_vram: u64,
    pub offer_disk: u64,
    pub offer_count: u32,
    pub offer_modules: String,
    pub offer_ttl: u64,
    pub allow_network: bool,
    pub offer_agree_window: u64,
    pub pricing_instruction_price: String,
    pub pricing_payment_collateral: String,
    pub pricing_results_collateral_multiple: u64,
    pub pricing_mediation_fee: String,
    pub timeout_agree_time: u64,
    pub timeout_submit_results_time: u64,
    pub timeout_submit_results_collateral: String,
    pub timeout_judge_results_time: u64,
    pub timeout_judge_results_collateral: String,
    pub timeout_mediate_results_time: u64,
    pub data_dir: PathBuf,
    /// Extra certificates (PEM) trusted for https:// and wss:// (TLS_CA_FILE).
    pub tls_ca_file: Option<PathBuf>,
    /// `rp`, `mediator`, `jc`: where /health and /metrics are served (METRICS_LISTEN).
    pub metrics_listen: Option<String>,
    /// The network profile the settings were layered on (LILYPAD_NETWORK).
    pub lilypad_network: Option<String>,
    /// That profile, once found.
    #[serde(skip)]
    pub network_profile: Option<crate::profile::Profile>,
    pub log_level: String,
    pub log_format: String,
    pub module_shortcut_prefix: String,
    pub allow_local_modules: bool,
    pub poll_interval_ms: u64,
    pub max_upload_bytes: u64,
    /// `solver`: unmatched job offers one job creator may have open at once.
    pub max_open_job_offers: u32,
    /// `solver`: requests a second per client IP (RATE_LIMIT_PER_IP; 0: none).
    pub rate_limit_per_ip: u32,
    /// `solver`: signed requests a second per key (RATE_LIMIT_PER_ADDRESS; 0: none).
    pub rate_limit_per_address: u32,
    /// `solver`: open event streams in all (MAX_WS_CLIENTS; 0: no cap).
    pub max_ws_clients: usize,
    /// `solver`: open event streams per client IP (MAX_WS_CLIENTS_PER_IP; 0: no cap).
    pub max_ws_clients_per_ip: usize,
    /// `solver`: reverse proxies whose X-Forwarded-For is believed (TRUSTED_PROXY_HOPS).
    pub trusted_proxy_hops: usize,
    /// `faucet`, `dev`: where the faucet listens (FAUCET_LISTEN).
    pub faucet_listen: String,
    /// `faucet`, `dev`: ether per claim (FAUCET_ETH).
    pub faucet_eth: String,
    /// `faucet`, `dev`: tokens per claim (FAUCET_LP).
    pub faucet_lp: String,
    /// `faucet`, `dev`: seconds between claims of one address or IP (FAUCET_PERIOD).
    pub faucet_period: u64,
    /// `faucet`: hCaptcha site key (HCAPTCHA_SITE_KEY).
    pub hcaptcha_site_key: Option<String>,
    /// `faucet`: file with the hCaptcha secret (HCAPTCHA_SECRET_FILE).
    pub hcaptcha_secret_file: Option<PathBuf>,
    /// `faucet`: hCaptcha's verify endpoint (HCAPTCHA_VERIFY_URL).
    pub hcaptcha_verify_url: String,
    /// `solver`: seconds ended deals are kept (RETAIN_DEALS).
    pub retain_deals: u64,
    /// `solver`, `rp`, `mediator`: seconds results files of ended deals are kept (RETAIN_RESULTS).
    pub retain_results: u64,
    /// `solver`: newest events kept (RETAIN_EVENTS).
    pub retain_events: u64,
    /// `solver`: a PostgreSQL database for the store (`postgres://USER:PASSWORD@HOST/DB`)
    /// instead of SQLite under DATA_DIR. Environment or settings file only, never a flag:
    /// it may hold a password.
    pub solver_database_url: Option<Secret>,
    /// `saas`: a PostgreSQL database for its accounts, credits and jobs
    /// (`postgres://USER:PASSWORD@HOST/DB`; DATABASE_URL) instead of SQLite under DATA_DIR.
    /// Environment or settings file only, never a flag.
    pub database_url: Option<Secret>,
    /// `saas`, `dev`: where the SaaS API listens (SAAS_LISTEN).
    pub saas_listen: String,
    /// `saas`, `dev`: the modules on offer, a JSON file (SAAS_CATALOG).
    pub saas_catalog: Option<PathBuf>,
    /// The example client contract `run-cowsay-onchain` calls (WEB3_EXAMPLE_CLIENT_ADDRESS).
    pub web3_example_client_address: Option<String>,
    /// `jc`: seconds a requested job may wait for a resource provider before it fails.
    pub jc_match_timeout: u64,
    /// `jc`: the block a brand-new jc starts reading requests from.
    pub jc_from_block: u64,
    /// `jc`: percent of results a mediator checks.
    pub jc_mediation_chance: u8,
    /// `mediator`: how many re-runs at once.
    pub mediator_parallel: usize,
    /// The engine jobs run on: docker, bacalhau or noop.
    pub executor: String,
    /// Bacalhau's orchestrator API, for the bacalhau engine (BACALHAU_API_HOST).
    pub bacalhau_api_host: String,
    /// A kubo daemon's RPC API for results (IPFS_CONNECT).
    pub ipfs_connect: Option<String>,
    /// `dev`: the chain to run, anvil or geth.
    pub dev_chain: String,
    /// `dev`: seconds between blocks (0: anvil mines each transaction; geth: 1).
    pub dev_block_time: u64,
}

/// A setting that is missing or wrong; the message names the flag and the variable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read settings: {0}")]
    Load(#[from] config::ConfigError),
    #[error("{0}")]
    Args(#[from] clap::Error),
    #[error("{name} (--{flag}) is required: {hint}")]
    Missing {
        name: &'static str,
        flag: &'static str,
        hint: &'static str,
    },
    #[error("{name} (--{flag}): {message}")]
    Invalid {
        name: &'static str,
        flag: &'static str,
        message: String,
    },
}

fn default_data_dir() -> PathBuf {
    match std::env::var_os("HOME") {
        Some(home) => Path::new(&home).join(".lilypad"),
        None => PathBuf::from("/tmp/lilypad"),
    }
}

impl Settings {
    /// Loads the layers. `file`: an explicit settings file (must exist), else `./lilypad.toml`
    /// if present. `env`: the environment (None: the process's). `flags`: set flags as (key, value).
    pub fn load(
        file: Option<&Path>,
        env: Option<HashMap<String, String>>,
        flags: &[(String, String)],
    ) -> Result<Settings, ConfigError> {
        let mut builder = config::Config::builder()
            .set_default("data_dir", default_data_dir().display().to_string())?;
        for (key, value) in crate::cli::defaults(&crate::cli::Cli::command()) {
            builder = builder.set_default(key, value)?;
        }
        let env = env.unwrap_or_else(|| std::env::vars().collect());
        // The network profile: a layer just above the defaults (a default set again replaces it).
        let flag = |key: &str| {
            flags
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, value)| value.clone())
        };
        let network = flag("lilypad_network")
            .or_else(|| env.get("LILYPAD_NETWORK").cloned())
            .filter(|name| !name.is_empty());
        let profile = match &network {
            Some(name) => {
                let data_dir = flag("data_dir")
                    .or_else(|| env.get("DATA_DIR").cloned())
                    .filter(|dir| !dir.is_empty())
                    .map(PathBuf::from)
                    .unwrap_or_else(default_data_dir);
                let profile = crate::profile::Profile::find(name, &data_dir).map_err(|e| {
                    ConfigError::Invalid {
                        name: "LILYPAD_NETWORK",
                        flag: "network",
                        message: e.message,
                    }
                })?;
                for (key, value) in profile.settings() {
                    builder = builder.set_default(key, value)?;
                }
                Some(profile)
            }
            None => None,
        };
        builder = match file {
            Some(path) => builder.add_source(config::File::from(path).required(true)),
            None => builder.add_source(config::File::with_name("lilypad.toml").required(false)),
        };
        let env: HashMap<String, String> = env
            .into_iter()
            .filter(|(key, value)| {
                !value.is_empty()
                    && key
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            })
            .collect();
        builder = builder.add_source(
            config::Environment::default()
                .source(Some(env))
                .try_parsing(true),
        );
        for (key, value) in flags {
            builder = builder.set_override(key.as_str(), value.clone())?;
        }
        let mut settings: Settings = builder.build()?.try_deserialize()?;
        settings.network_profile = profile;
        Ok(settings)
    }

    /// The settings `lilypad ARGS...` runs with: its flags over the process environment
    /// over `--config` (or ./lilypad.toml) over the defaults. `args` starts with the
    /// program name.
    pub fn from_args<I, T>(args: I) -> Result<Settings, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let mut definition = crate::cli::Cli::command();
        let matches = definition.try_get_matches_from_mut(args)?;
        let overrides = crate::cli::overrides(&definition, &matches);
        let file = matches.get_one::<PathBuf>("config").cloned();
        Settings::load(file.as_deref(), None, &overrides)
    }

    /// The IPFS daemon results go through (IPFS_CONNECT), if one is configured.
    pub fn ipfs(&self) -> Result<Option<crate::results::ipfs::Ipfs>, ConfigError> {
        match self.ipfs_connect.as_deref().filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(api) => {
                crate::results::ipfs::Ipfs::new(api)
                    .map(Some)
                    .map_err(|e| ConfigError::Invalid {
                        name: "IPFS_CONNECT",
                        flag: "ipfs-connect",
                        message: e.to_string(),
                    })
            }
        }
    }

    /// This node's key: WEB3_PRIVATE_KEY, or the file WEB3_PRIVATE_KEY_FILE names.
    pub fn wallet(&self) -> Result<LocalWallet, ConfigError> {
        let text = match (&self.web3_private_key, &self.web3_private_key_file) {
            (Some(key), _) if !key.0.is_empty() => key.0.clone(),
            (_, Some(path)) => std::fs::read_to_string(path).map_err(|e| ConfigError::Invalid {
                name: "WEB3_PRIVATE_KEY_FILE",
                flag: "key-file",
                message: format!("cannot read {}: {e}", path.display()),
            })?,
            _ => {
                return Err(ConfigError::Missing {
                    name: "WEB3_PRIVATE_KEY",
                    flag: "key-file",
                    hint: "set WEB3_PRIVATE_KEY in the environment, or WEB3_PRIVATE_KEY_FILE / --key-file to a file holding the key (`lilypad keys generate` makes one)",
                })
            }
        };
        parse_key(text.trim()).map_err(|message| ConfigError::Invalid {
            name: "WEB3_PRIVATE_KEY",
            flag: "key-file",
            message,
        })
    }

    /// The example client contract, if configured.
    /// Refuses a chain whose id is not WEB3_CHAIN_ID (set, or from the network profile).
    pub fn expect_chain_id(&self, rpc_url: &str, found: u64) -> Result<(), ConfigError> {
        match self.web3_chain_id {
            Some(expected) if expected != found => Err(ConfigError::Invalid {
                name: "WEB3_CHAIN_ID",
                flag: "chain-id",
                message: format!(
                    "{rpc_url} is chain {found}, but {}expects chain {expected}",
                    match &self.network_profile {
                        Some(profile) => format!("network {:?} ", profile.name),
                        None => "this node ".into(),
                    }
                ),
            }),
            _ => Ok(()),
        }
    }

    /// METRICS_LISTEN, parsed.
    pub fn metrics_listen(&self) -> Result<Option<std::net::SocketAddr>, ConfigError> {
        self.metrics_listen
            .as_deref()
            .map(|text| {
                crate::ops::listen_address(text).map_err(|message| ConfigError::Invalid {
                    name: "METRICS_LISTEN",
                    flag: "metrics-listen",
                    message,
                })
            })
            .transpose()
    }

    pub fn example_client(&self) -> Result<Option<Address>, ConfigError> {
        self.web3_example_client_address
            .as_deref()
            .map(|text| parse_address(text, "WEB3_EXAMPLE_CLIENT_ADDRESS", "example-client"))
            .transpose()
    }

    pub fn rpc_url(&self) -> Result<String, ConfigError> {
        self.web3_rpc_url.clone().ok_or(ConfigError::Missing {
            name: "WEB3_RPC_URL",
            flag: "rpc-url",
            hint: "the chain's JSON-RPC endpoint, e.g. http://127.0.0.1:8545",
        })
    }

    pub fn controller(&self) -> Result<Address, ConfigError> {
        let text = self
            .web3_controller_address
            .as_deref()
            .ok_or(ConfigError::Missing {
                name: "WEB3_CONTROLLER_ADDRESS",
                flag: "controller",
                hint: "the LilypadController's address (printed by `lilypad chain deploy`)",
            })?;
        parse_address(text, "WEB3_CONTROLLER_ADDRESS", "controller")
    }

    pub fn solver(&self) -> Result<Address, ConfigError> {
        let text = self.service_solver.as_deref().ok_or(ConfigError::Missing {
            name: "SERVICE_SOLVER",
            flag: "solver",
            hint: "the solver's address; both sides of a deal must name the same one",
        })?;
        parse_address(text, "SERVICE_SOLVER", "solver")
    }

    pub fn mediators(&self) -> Result<Vec<Address>, ConfigError> {
        let text = self.service_mediators.as_deref().unwrap_or("");
        let mediators = text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| parse_address(s, "SERVICE_MEDIATORS", "mediators"))
            .collect::<Result<Vec<_>, _>>()?;
        if mediators.is_empty() {
            return Err(ConfigError::Missing {
                name: "SERVICE_MEDIATORS",
                flag: "mediators",
                hint: "a comma-separated list of mediator addresses you trust",
            });
        }
        Ok(mediators)
    }

    pub fn services(&self) -> Result<Services, ConfigError> {
        Ok(Services {
            solver: self.solver()?,
            mediators: self.mediators()?,
        })
    }

    pub fn pricing(&self) -> Result<Pricing, ConfigError> {
        let amount = |text: &str, name, flag| {
            amount::parse(text).map_err(|message| ConfigError::Invalid {
                name,
                flag,
                message,
            })
        };
        Ok(Pricing {
            instruction_price: amount(
                &self.pricing_instruction_price,
                "PRICING_INSTRUCTION_PRICE",
                "instruction-price",
            )?,
            payment_collateral: amount(
                &self.pricing_payment_collateral,
                "PRICING_PAYMENT_COLLATERAL",
                "payment-collateral",
            )?,
            results_collateral_multiple: self.pricing_results_collateral_multiple,
            mediation_fee: amount(
                &self.pricing_mediation_fee,
                "PRICING_MEDIATION_FEE",
                "mediation-fee",
            )?,
        })
    }

    pub fn timeouts(&self) -> Result<Timeouts, ConfigError> {
        let amount = |text: &str, name, flag| {
            amount::parse(text).map_err(|message| ConfigError::Invalid {
                name,
                flag,
                message,
            })
        };
        let timeouts = Timeouts {
            agree: self.timeout_agree_time,
            submit_results: self.timeout_submit_results_time,
            judge_results: self.timeout_judge_results_time,
            mediate_results: self.timeout_mediate_results_time,
            submit_results_collateral: amount(
                &self.timeout_submit_results_collateral,
                "TIMEOUT_SUBMIT_RESULTS_COLLATERAL",
                "submit-results-collateral",
            )?,
            judge_results_collateral: amount(
                &self.timeout_judge_results_collateral,
                "TIMEOUT_JUDGE_RESULTS_COLLATERAL",
                "judge-results-collateral",
            )?,
        };
        for (value, name, flag) in [
            (timeouts.agree, "TIMEOUT_AGREE_TIME", "agree-timeout"),
            (
                timeouts.submit_results,
                "TIMEOUT_SUBMIT_RESULTS_TIME",
                "submit-results-timeout",
            ),
            (
                timeouts.judge_results,
                "TIMEOUT_JUDGE_RESULTS_TIME",
                "judge-results-timeout",
            ),
            (
                timeouts.mediate_results,
                "TIMEOUT_MEDIATE_RESULTS_TIME",
                "mediate-results-timeout",
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::Invalid {
                    name,
                    flag,
                    message: "must be at least 1 second".into(),
                });
            }
        }
        if timeouts.submit_results_collateral == 0 {
            return Err(ConfigError::Invalid {
                name: "TIMEOUT_SUBMIT_RESULTS_COLLATERAL",
                flag: "submit-results-collateral",
                message: "must be above 0: it is what results a mediator rejects cost the resource provider, and the contracts refuse deals without it".into(),
            });
        }
        Ok(timeouts)
    }

    /// What this RP offers per slot.
    pub fn offer_spec(&self) -> Result<MachineSpec, ConfigError> {
        if self.offer_cpu == 0 {
            return Err(ConfigError::Invalid {
                name: "OFFER_CPU",
                flag: "offer-cpu",
                message: "must be > 0 millicores".into(),
            });
        }
        if self.offer_ram == 0 {
            return Err(ConfigError::Invalid {
                name: "OFFER_RAM",
                flag: "offer-ram",
                message: "must be > 0 MiB".into(),
            });
        }
        if self.offer_count == 0 {
            return Err(ConfigError::Invalid {
                name: "OFFER_COUNT",
                flag: "offer-count",
                message: "must be at least 1 slot".into(),
            });
        }
        Ok(MachineSpec {
            cpu: self.offer_cpu,
            ram: self.offer_ram,
            gpu: self.offer_gpu,
            vram: self.offer_vram,
            disk: self.offer_disk,
        })
    }

    pub fn modules(&self) -> Vec<String> {
        self.offer_modules
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }

    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms.max(10))
    }
}

/// Parses a hex private key (0x optional).
pub fn parse_key(text: &str) -> Result<LocalWallet, String> {
    let hex_text = text.strip_prefix("0x").unwrap_or(text);
    let bytes = hex::decode(hex_text).map_err(|_| "not a hex private key".to_string())?;
    LocalWallet::from_bytes(&bytes)
        .map_err(|_| "not a valid secp256k1 private key (32 bytes)".to_string())
}

fn parse_address(
    text: &str,
    name: &'static str,
    flag: &'static str,
) -> Result<Address, ConfigError> {
    text.trim().parse().map_err(|_| ConfigError::Invalid {
        name,
        flag,
        message: format!("{text:?} is not an address (0x + 40 hex digits)"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Option<HashMap<String, String>> {
        Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn layers_apply_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("lilypad.toml");
        std::fs::write(
            &file,
            "offer_cpu = 2000\noffer_ram = 4096\nserver_port = 9000\n",
        )
        .unwrap();
        let settings = Settings::load(
            Some(&file),
            env(&[("OFFER_RAM", "8192"), ("SERVER_PORT", "9100")]),
            &[("server_port".into(), "9200".into())],
        )
        .unwrap();
        assert_eq!(settings.offer_gpu, 0, "default");
        assert_eq!(settings.offer_cpu, 2000, "file over default");
        assert_eq!(settings.offer_ram, 8192, "env over file");
        assert_eq!(settings.server_port, 9200, "flag over env");
    }

    #[test]
    fn secrets_do_not_print_and_missing_settings_name_their_variable() {
        let settings = Settings::load(
            None,
            env(&[(
                "WEB3_PRIVATE_KEY",
                "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
            )]),
            &[],
        )
        .unwrap();
        let shown = format!("{settings:?}");
        assert!(!shown.contains("59c6995e"), "{shown}");
        assert!(settings.wallet().is_ok());
        let error = settings.rpc_url().unwrap_err().to_string();
        assert!(error.contains("WEB3_RPC_URL"), "{error}");
        let bad = Settings::load(None, env(&[("WEB3_PRIVATE_KEY", "0xnothex")]), &[]).unwrap();
        let error = bad.wallet().unwrap_err().to_string();
        assert!(
            error.contains("WEB3_PRIVATE_KEY") && !error.contains("nothex"),
            "{error}"
        );
    }

    #[test]
    fn every_setting_is_an_option_and_every_option_with_a_variable_a_setting() {
        let settings = Settings::load(None, env(&[("WEB3_PRIVATE_KEY", "0x01")]), &[]).unwrap();
        let shown = serde_json::to_value(&settings).unwrap();
        assert_eq!(shown["web3_private_key"], "<redacted>");
        let fields: std::collections::BTreeSet<String> =
            shown.as_object().unwrap().keys().cloned().collect();
        let mut definition = crate::cli::Cli::command();
        definition.build();
        let mut options = std::collections::BTreeSet::new();
        let mut pending = vec![&definition];
        while let Some(command) = pending.pop() {
            for arg in command.get_arguments() {
                if let Some(env) = arg.get_env() {
                    options.insert(env.to_string_lossy().to_ascii_lowercase());
                }
            }
            pending.extend(command.get_subcommands());
        }
        // The key and the database URL have no flag (never on a command line); the settings file is not a setting.
        options.insert("web3_private_key".into());
        options.insert("solver_database_url".into());
        options.insert("database_url".into());
        options.remove("lilypad_config");
        assert_eq!(fields, options);
    }

    #[test]
    fn amounts_and_lists_parse() {
        let settings = Settings::load(None, env(&[("PRICING_INSTRUCTION_PRICE", "7"), ("SERVICE_MEDIATORS", "0x0000000000000000000000000000000000000001, 0x0000000000000000000000000000000000000002")]), &[]).unwrap();
        assert_eq!(settings.pricing().unwrap().instruction_price, 7);
        assert_eq!(
            settings.pricing().unwrap().payment_collateral,
            2 * 10u128.pow(18)
        );
        assert_eq!(settings.mediators().unwrap().len(), 2);
        let free = Settings::load(
            None,
            env(&[("TIMEOUT_SUBMIT_RESULTS_COLLATERAL", "0")]),
            &[],
        )
        .unwrap();
        let error = free.timeouts().unwrap_err().to_string();
        assert!(
            error.contains("TIMEOUT_SUBMIT_RESULTS_COLLATERAL") && error.contains("above 0"),
            "{error}"
        );
        let bad = Settings::load(None, env(&[("OFFER_CPU", "0")]), &[]).unwrap();
        assert!(bad
            .offer_spec()
            .unwrap_err()
            .to_string()
            .contains("OFFER_CPU"));
    }
}
