//! Getting another party's results: fetch the tar by its CID from IPFS when a daemon is
//! configured, else (or when that fails, which is said) download it from the solver's relay;
//! check it is exactly what the resource provider committed on chain, and unpack it. The job
//! creator (`run`), the mediator and the on-chain requester all fetch results this one way.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::ipfs::Ipfs;
use super::{unpack, Limits};
use crate::client::SolverClient;
use crate::data::ids::{digest_of, file_cid_of, results_cid_from_digest};

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
    /// Set when the results say the engine could not run the job (see
    /// [`super::ENGINE_FAILURE`]): the line saying why.
    pub engine_failure: Option<String>,
    /// Where they came from: `IPFS at ADDRESS` or `the solver`.
    pub source: String,
}

/// Where results are fetched from: the IPFS daemon first when one is configured, then the
/// solver's relay.
#[derive(Clone, Copy)]
pub struct Sources<'a> {
    pub solver: &'a SolverClient,
    pub ipfs: Option<&'a Ipfs>,
}

/// Downloads deal `deal_id`'s results, checks them against `committed` (the on-chain
/// results digest) and unpacks them into `dir` (replacing what was there).
///
/// The outer error is worth retrying (the solver is down, a local disk error); the inner
/// `Err` says why these results are not acceptable (missing, not the committed ones, not a
/// valid archive), which is a reason to dispute them.
pub async fn fetch_verified(
    sources: Sources<'_>,
    deal_id: &str,
    committed: [u8; 32],
    dir: &Path,
) -> anyhow::Result<Result<Verified, String>> {
    let committed_cid = results_cid_from_digest(committed);
    let limit = Limits::default().max_bytes as usize;
    let from_ipfs = match sources.ipfs {
        None => None,
        Some(ipfs) => match ipfs.cat(&committed_cid, limit).await {
            Ok(tar) if digest_of(&file_cid_of(&tar))? == committed => {
                Some((tar, format!("IPFS at {}", ipfs.api())))
            }
            Ok(_) => {
                tracing::warn!(deal_id, cid = %committed_cid, "IPFS returned other bytes than the committed results; using the solver relay");
                None
            }
            Err(error) => {
                tracing::warn!(deal_id, %error, "results not fetched from IPFS; using the solver relay");
                None
            }
        },
    };
    // Bytes from IPFS were checked above (and not taken unless they matched).
    let (tar, source) = match from_ipfs {
        Some(found) => found,
        None => {
            let tar = match sources.solver.download_files(deal_id).await {
                Ok(tar) => tar,
                Err(error) if error.is_transient() => return Err(error.into()),
                Err(error) => return Ok(Err(format!("the results cannot be downloaded: {error}"))),
            };
            let downloaded = file_cid_of(&tar);
            if digest_of(&downloaded)? != committed {
                return Ok(Err(format!(
                    "the results on the solver ({downloaded}) are not the ones committed on chain ({committed_cid})"
                )));
            }
            (tar, "the solver".to_string())
        }
    };
    tracing::info!(deal_id, cid = %committed_cid, from = %source, "results fetched and verified");
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
        engine_failure: super::engine_failure_in(dir),
        source,
    }))
}
