//! Getting another party's results: download the tar from the solver, check it is exactly
//! what the resource provider committed on chain, and unpack it. The job creator (`run`),
//! the mediator and the on-chain requester all fetch results this one way.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::{unpack, Limits};
use crate::client::SolverClient;
use crate::data::ids::{cid_of, digest_of, raw_cid_from_digest, RAW_CODEC};

/// Results downloaded, verified against the commitment and unpacked.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The committed results CID.
    pub cid: String,
    /// Where they were unpacked.
    pub dir: PathBuf,
    /// The job's stdout ("" if it left none).
    pub stdout: String,
    /// The job's exit code, if it recorded one.
    pub exit_code: Option<i64>,
}

/// Downloads deal `deal_id`'s results, checks them against `committed` (the on-chain
/// results digest) and unpacks them into `dir` (replacing what was there).
///
/// The outer error is worth retrying (the solver is down, a local disk error); the inner
/// `Err` says why these results are not acceptable (missing, not the committed ones, not a
/// valid archive), which is a reason to dispute them.
pub async fn fetch_verified(
    client: &SolverClient,
    deal_id: &str,
    committed: [u8; 32],
    dir: &Path,
) -> anyhow::Result<Result<Verified, String>> {
    let committed_cid = raw_cid_from_digest(committed);
    let tar = match client.download_files(deal_id).await {
        Ok(tar) => tar,
        Err(error) if error.is_transient() => return Err(error.into()),
        Err(error) => return Ok(Err(format!("the results cannot be downloaded: {error}"))),
    };
    let downloaded = cid_of(RAW_CODEC, &tar);
    if digest_of(&downloaded)? != committed {
        return Ok(Err(format!(
            "the results on the solver ({downloaded}) are not the ones committed on chain ({committed_cid})"
        )));
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("cannot clear {}", dir.display()))?;
    }
    if let Err(error) = unpack(&tar, dir, Limits::default()) {
        return Ok(Err(format!(
            "the committed results are not a valid results archive: {error}"
        )));
    }
    let stdout = match std::fs::read(dir.join("stdout")) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => String::new(),
    };
    let exit_code = std::fs::read_to_string(dir.join("exitCode"))
        .ok()
        .and_then(|text| text.trim().parse().ok());
    Ok(Ok(Verified {
        cid: committed_cid,
        dir: dir.to_path_buf(),
        stdout,
        exit_code,
    }))
}
