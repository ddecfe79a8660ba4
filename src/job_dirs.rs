//! The per-deal working directories the resource provider and the mediator keep under
//! `DATA_DIR/<role>/jobs/` (a job's results, the packed tar), and forgetting them once their
//! deal is over and `RETAIN_RESULTS` has passed, so a node's disk use stays bounded.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// How often a role looks for old job directories.
const LOOK_EVERY: Duration = Duration::from_secs(60);

/// A role's job directories and how long they are kept.
pub struct JobDirs {
    jobs: PathBuf,
    retain: Duration,
    looked: Mutex<Option<Instant>>,
}

impl JobDirs {
    pub fn new(jobs: PathBuf, retain: Duration) -> JobDirs {
        JobDirs {
            jobs,
            retain,
            looked: Mutex::new(None),
        }
    }

    /// Whether a minute has passed since the last look (and this call counts as a look).
    pub fn due(&self) -> bool {
        let Ok(mut looked) = self.looked.lock() else {
            return false;
        };
        let due = looked.is_none_or(|at| at.elapsed() >= LOOK_EVERY);
        if due {
            *looked = Some(Instant::now());
        }
        due
    }

    /// Removes the old directories `keep` does not name, and logs what it did.
    pub async fn forget_old(&self, keep: impl Fn(&str) -> bool) {
        match forget_old(&self.jobs, self.retain, keep).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(
                removed,
                "removed the job directories of deals that ended (RETAIN_RESULTS)"
            ),
            Err(error) => {
                tracing::warn!(dir = %self.jobs.display(), %error, "cannot remove old job directories")
            }
        }
    }
}

/// Removes the directories under `jobs` not modified for `older_than`, except those whose
/// name (the deal id) `keep` says are still needed; returns how many were removed. A
/// missing `jobs` directory is nothing to do.
pub async fn forget_old(
    jobs: &Path,
    older_than: Duration,
    keep: impl Fn(&str) -> bool,
) -> std::io::Result<usize> {
    let mut entries = match tokio::fs::read_dir(jobs).await {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(error) => return Err(error),
    };
    let now = SystemTime::now();
    let mut removed = 0;
    while let Some(entry) = entries.next_entry().await? {
        let name = entry.file_name().to_string_lossy().into_owned();
        let meta = entry.metadata().await?;
        let age = meta
            .modified()
            .ok()
            .and_then(|at| now.duration_since(at).ok())
            .unwrap_or_default();
        if !meta.is_dir() || age < older_than || keep(&name) {
            continue;
        }
        tokio::fs::remove_dir_all(entry.path()).await?;
        removed += 1;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_old_directories_no_one_needs_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let jobs = dir.path().join("jobs");
        for name in ["old", "needed", "new"] {
            std::fs::create_dir_all(jobs.join(name).join("results")).unwrap();
        }
        std::fs::write(jobs.join("stray-file"), b"x").unwrap();
        let week_ago = SystemTime::now() - Duration::from_secs(8 * 24 * 3600);
        for name in ["old", "needed", "stray-file"] {
            let file = std::fs::File::open(jobs.join(name)).unwrap();
            file.set_modified(week_ago).unwrap();
        }
        let week = Duration::from_secs(7 * 24 * 3600);
        let removed = forget_old(&jobs, week, |name| name == "needed")
            .await
            .unwrap();
        assert_eq!(removed, 1);
        assert!(!jobs.join("old").exists());
        assert!(jobs.join("needed").exists() && jobs.join("new").exists());
        assert!(jobs.join("stray-file").exists(), "only directories");
        assert_eq!(
            forget_old(&dir.path().join("absent"), week, |_| false)
                .await
                .unwrap(),
            0
        );
    }
}
