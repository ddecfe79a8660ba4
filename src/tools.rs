//! Programs the project builds rather than ships: `make tools` builds pinned versions of
//! geth, kubo (`ipfs`) and Bacalhau with Go (deploy/tools/versions.env) into a cache outside
//! the repository; roles and tests find them here.

use std::path::{Path, PathBuf};

use anyhow::bail;

/// Where `make tools` installs geth, kubo and Bacalhau: `LILYPAD_TOOLS_DIR`, else
/// `~/.cache/lilypad/tools`; the programs are in its `bin/`.
pub fn tools_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("LILYPAD_TOOLS_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".cache/lilypad/tools")
}

/// A tool installed by `make tools`, else on the PATH; `explicit` wins when given.
pub fn find_tool(name: &str, explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = explicit {
        if path.is_file() {
            return Ok(path.to_path_buf());
        }
        bail!("{} does not exist", path.display());
    }
    let installed = tools_dir().join("bin").join(name);
    if installed.is_file() {
        return Ok(installed);
    }
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    bail!(
        "{name} not found in {} or on the PATH: run `make tools` (builds pinned versions with Go)",
        tools_dir().join("bin").display()
    )
}
