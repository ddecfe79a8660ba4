//! A job's IPFS inputs on the Docker engine: each is fetched from the RP's IPFS daemon
//! (`IPFS_CONNECT`) before the job starts, unpacked (with the results' path and size checks)
//! into a staging directory of its own, outside the job's results, and bind-mounted where the
//! module asks. The mount is writable, as Bacalhau mounts IPFS inputs, so a job behaves the
//! same on either engine; the staging directory, and whatever the job wrote there, is removed
//! when the run ends.

use std::path::PathBuf;

use super::ExecutorError;
use crate::module::Input;
use crate::results::ipfs::Ipfs;
use crate::results::Limits;

/// The most bytes one input may hold (as fetched, and unpacked).
pub const MAX_INPUT_BYTES: u64 = 1024 * 1024 * 1024;

/// Inputs fetched for one run; removed when dropped.
pub struct Staged {
    dir: Option<PathBuf>,
    /// `HOST:CONTAINER:rw` bind specs, one per input.
    pub binds: Vec<String>,
}

impl Drop for Staged {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            if let Err(error) = std::fs::remove_dir_all(&dir) {
                tracing::warn!(dir = %dir.display(), %error, "could not remove a job's inputs");
            }
        }
    }
}

fn failed(message: impl ToString) -> ExecutorError {
    ExecutorError::Engine {
        what: "fetch the job's IPFS inputs".into(),
        message: message.to_string(),
    }
}

/// Fetches `inputs` through `ipfs`; an error when there are inputs and no IPFS.
pub async fn stage(ipfs: Option<&Ipfs>, inputs: &[Input]) -> Result<Staged, ExecutorError> {
    let mut staged = Staged {
        dir: None,
        binds: Vec::new(),
    };
    if inputs.is_empty() {
        return Ok(staged);
    }
    let ipfs = ipfs.ok_or_else(|| {
        failed("this node has no IPFS daemon to fetch them from: set IPFS_CONNECT (--ipfs-connect)")
    })?;
    let dir = std::env::temp_dir().join(format!(
        "lilypad-inputs-{}",
        crate::data::offers::new_nonce()
    ));
    super::create_dir(&dir)?;
    staged.dir = Some(dir.clone());
    let limits = Limits {
        max_bytes: MAX_INPUT_BYTES,
        max_entries: 100_000,
    };
    for (index, input) in inputs.iter().enumerate() {
        let tar = ipfs
            .get_tar(&input.cid, MAX_INPUT_BYTES as usize)
            .await
            .map_err(failed)?;
        let place = dir.join(index.to_string());
        crate::results::unpack(&tar, &place, limits)
            .map_err(|e| failed(format!("{}: {e}", input.cid)))?;
        // `ipfs get` names its one top entry after the CID, whether a file or a directory.
        let host = place.join(&input.cid);
        if !host.exists() {
            return Err(failed(format!(
                "{}: IPFS returned nothing under that name",
                input.cid
            )));
        }
        staged
            .binds
            .push(format!("{}:{}:rw", host.display(), input.path));
    }
    Ok(staged)
}
