//! Named networks: `--network NAME` (`LILYPAD_NETWORK`) selects a network profile, the
//! facts every node of one network shares (chain id, RPC URL, controller, solver address
//! and URL, mediators, and the CA of a private TLS certificate), so that on a known network
//! a node needs nothing but its key.
//!
//! NAME is a profile file's path (it contains `/` or ends in `.toml`), or a name: first
//! `DATA_DIR/networks/NAME.toml` (where `lilypad dev` writes `dev.toml`), then the profiles
//! compiled into the binary ([`BUILT_IN`]). A profile is a settings layer just above the
//! defaults: `lilypad.toml`, the environment and flags still override each of its values.
//! Its chain id is checked against the RPC's at connection (WEB3_CHAIN_ID), so a profile
//! pointing at the wrong chain is refused.

use std::path::{Path, PathBuf};

use ethers::types::Address;
use serde::{Deserialize, Serialize};

/// Profiles compiled into the binary, as (name, TOML). No public deployment of these
/// contracts exists yet, so there are none; a network's operators add theirs here.
pub const BUILT_IN: &[(&str, &str)] = &[];

/// One network's shared facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// A name for people (`--network NAME` finds it by its file name).
    pub name: String,
    pub chain_id: u64,
    pub rpc_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ws_url: Option<String>,
    pub controller: Address,
    /// The solver both sides of a deal name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub solver: Option<Address>,
    /// Where clients reach the solver [default: the URL it published in the Users contract].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub solver_url: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mediators: Vec<Address>,
    /// PEM certificates to trust for the network's `https://` and `wss://` endpoints (a
    /// private CA), besides the public roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ca: Option<String>,
}

/// A profile that cannot be found or read.
#[derive(Debug, thiserror::Error)]
#[error("network {name:?} (--network, LILYPAD_NETWORK): {message}")]
pub struct ProfileError {
    pub name: String,
    pub message: String,
}

impl Profile {
    /// Finds the profile `name` (see the module documentation).
    pub fn find(name: &str, data_dir: &Path) -> Result<Profile, ProfileError> {
        let error = |message: String| ProfileError {
            name: name.to_string(),
            message,
        };
        let read = |path: &Path| {
            let text = std::fs::read_to_string(path)
                .map_err(|e| error(format!("cannot read {}: {e}", path.display())))?;
            Profile::parse(&text).map_err(|e| error(format!("{}: {e}", path.display())))
        };
        if name.contains('/') || name.ends_with(".toml") {
            return read(Path::new(name));
        }
        if !Profile::valid_name(name) {
            return Err(error(
                "a name is letters, digits, '-', '_' and '.'; a file is a path".into(),
            ));
        }
        let path = Profile::path(data_dir, name);
        if path.exists() {
            return read(&path);
        }
        if let Some((_, text)) = BUILT_IN.iter().find(|(known, _)| *known == name) {
            return Profile::parse(text).map_err(|e| error(format!("built-in profile: {e}")));
        }
        let known: Vec<&str> = BUILT_IN.iter().map(|(known, _)| *known).collect();
        Err(error(format!(
            "no such network: not a file, not in {}, and not built in{}",
            path.display(),
            if known.is_empty() {
                String::new()
            } else {
                format!(" ({})", known.join(", "))
            }
        )))
    }

    /// Whether `name` is a profile name (not a path): letters, digits, '-', '_' and '.'.
    pub fn valid_name(name: &str) -> bool {
        !name.is_empty()
            && !name.starts_with('.')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
    }

    /// Where the profile named `name` is kept under `data_dir`.
    pub fn path(data_dir: &Path, name: &str) -> PathBuf {
        data_dir.join("networks").join(format!("{name}.toml"))
    }

    pub fn parse(text: &str) -> Result<Profile, String> {
        let profile: Profile = toml::from_str(text).map_err(|e| e.message().to_string())?;
        if profile.rpc_url.trim().is_empty() {
            return Err("rpc_url is empty".into());
        }
        Ok(profile)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }

    /// Writes the profile to `path` (its directory created), replacing any there.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        crate::files::write_replacing(path, self.to_toml().as_bytes())
    }

    /// The profile as settings (keys as in `lilypad.toml`).
    pub fn settings(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![
            ("web3_rpc_url", self.rpc_url.clone()),
            ("web3_chain_id", self.chain_id.to_string()),
            ("web3_controller_address", format!("{:?}", self.controller)),
        ];
        if let Some(url) = &self.ws_url {
            out.push(("web3_ws_url", url.clone()));
        }
        if let Some(solver) = self.solver {
            out.push(("service_solver", format!("{solver:?}")));
        }
        if let Some(url) = &self.solver_url {
            out.push(("solver_url", url.clone()));
        }
        if !self.mediators.is_empty() {
            let mediators: Vec<String> = self.mediators.iter().map(|m| format!("{m:?}")).collect();
            out.push(("service_mediators", mediators.join(",")));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> Profile {
        Profile {
            name: "example".into(),
            chain_id: 412346,
            rpc_url: "https://rpc.example.org".into(),
            ws_url: None,
            controller: Address::repeat_byte(1),
            solver: Some(Address::repeat_byte(2)),
            solver_url: Some("https://solver.example.org".into()),
            mediators: vec![Address::repeat_byte(3), Address::repeat_byte(4)],
            tls_ca: None,
        }
    }

    #[test]
    fn a_profile_reads_back_what_it_wrote_and_finds_by_name_or_path() {
        let dir = tempfile::tempdir().unwrap();
        let profile = example();
        let path = Profile::path(dir.path(), "example");
        profile.write(&path).unwrap();
        assert_eq!(Profile::find("example", dir.path()).unwrap(), profile);
        assert_eq!(
            Profile::find(path.to_str().unwrap(), Path::new("/nonexistent")).unwrap(),
            profile
        );
        let settings = profile.settings();
        assert!(settings.contains(&("web3_chain_id", "412346".into())));
        assert!(settings.contains(&(
            "service_mediators",
            format!(
                "{:?},{:?}",
                Address::repeat_byte(3),
                Address::repeat_byte(4)
            )
        )));
    }

    #[test]
    fn unknown_names_bad_names_and_bad_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = Profile::find("nowhere", dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            missing.contains("\"nowhere\"") && missing.contains("no such network"),
            "{missing}"
        );
        let bad = Profile::find("../etc", dir.path()).unwrap_err().to_string();
        assert!(bad.contains("cannot read"), "{bad}");
        let odd = Profile::find("a b", dir.path()).unwrap_err().to_string();
        assert!(odd.contains("letters, digits"), "{odd}");
        let path = dir.path().join("typo.toml");
        std::fs::write(&path, example().to_toml().replace("rpc_url", "rpc_ulr")).unwrap();
        let typo = Profile::find(path.to_str().unwrap(), dir.path())
            .unwrap_err()
            .to_string();
        assert!(typo.contains("rpc_ulr"), "{typo}");
    }
}
