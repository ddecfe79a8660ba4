//! Modules kept in git repositories, read with gix (no `git` program needed). The job creator
//! resolves a ref (tag, branch or commit) to a commit once; every node then reads that exact
//! commit. Each commit's files are checked out once into
//! `DATA_DIR/modules/HOST/OWNER/REPO/COMMIT`, under a per-repository lock and by an atomic
//! rename, so roles running at once share the cache safely and nobody reads a half-written
//! checkout. Network repositories are fetched into a scratch bare clone that is removed
//! afterwards; local ones (`file://` URLs and absolute paths) are read in place. Fetches stop
//! after [`FETCH_TIMEOUT`] and checkouts larger than [`MAX_CHECKOUT_BYTES`] are refused.

use std::fs::{self, File};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How long fetching a repository may take.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(120);
/// The most a module's checkout (all files of the commit) may hold.
pub const MAX_CHECKOUT_BYTES: u64 = 64 * 1024 * 1024;

/// Why a git module cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("{repo}: not a repository URL we can use: {why}")]
    BadUrl { repo: String, why: String },
    #[error("{repo}: cannot fetch: {message}")]
    Fetch { repo: String, message: String },
    #[error("{repo}: no ref or commit {reference:?}: {message}")]
    UnknownRef {
        repo: String,
        reference: String,
        message: String,
    },
    #[error("{repo}: commit {commit} holds more than {max_bytes} bytes; refusing to check it out")]
    TooLarge {
        repo: String,
        commit: String,
        max_bytes: u64,
    },
    #[error("{repo}@{commit}: {message}")]
    Checkout {
        repo: String,
        commit: String,
        message: String,
    },
    #[error("{repo}: a local repository named by another party; this node reads those only with ALLOW_LOCAL_MODULES (lilypad dev sets it)")]
    LocalRefused { repo: String },
    #[error("module cache {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// The module cache under `DATA_DIR/modules`, and where `NAME:TAG` modules live.
#[derive(Debug, Clone)]
pub struct GitModules {
    root: PathBuf,
    shortcut_prefix: String,
    max_bytes: u64,
    /// Whether local repositories (`file://`, paths) may be read.
    allow_local: bool,
}

impl GitModules {
    /// The cache under `data_dir`, with the default shortcut prefix.
    pub fn new(data_dir: &Path) -> GitModules {
        GitModules {
            root: data_dir.join("modules"),
            shortcut_prefix: super::DEFAULT_SHORTCUT_PREFIX.to_string(),
            max_bytes: MAX_CHECKOUT_BYTES,
            allow_local: true,
        }
    }

    /// The same cache, reading local repositories only if `allow` (for modules other
    /// parties name: see `ALLOW_LOCAL_MODULES`).
    pub fn with_local_repositories(mut self, allow: bool) -> GitModules {
        self.allow_local = allow;
        self
    }

    /// Whether `repo` is local and this cache refuses local repositories.
    pub fn refuses(&self, repo: &str) -> bool {
        !self.allow_local && local_path(repo).is_some()
    }

    /// The same cache with another size cap for checkouts.
    pub fn with_max_bytes(mut self, max_bytes: u64) -> GitModules {
        self.max_bytes = max_bytes;
        self
    }

    /// Where checkouts live (`DATA_DIR/modules`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The cache, shortcut prefix and local-repository policy the settings name (for modules
    /// other parties name; a user's own commands allow local repositories).
    pub fn from_settings(settings: &crate::config::Settings) -> GitModules {
        GitModules {
            shortcut_prefix: settings.module_shortcut_prefix.clone(),
            allow_local: settings.allow_local_modules,
            ..GitModules::new(&settings.data_dir)
        }
    }

    /// Where `NAME:TAG` modules live.
    pub fn shortcut_prefix(&self) -> &str {
        &self.shortcut_prefix
    }

    /// The full commit id `reference` (a tag, a branch or a commit id) names in `repo`. A full
    /// commit id already checked out is answered from the cache, without fetching.
    pub fn resolve(&self, repo: &str, reference: &str) -> Result<String, GitError> {
        let full_id = reference.len() == 40 && reference.chars().all(|c| c.is_ascii_hexdigit());
        if full_id && self.root.join(cache_key(repo)?).join(reference).is_dir() {
            return Ok(reference.to_string());
        }
        self.with_repo(repo, |git| {
            let id = git
                .rev_parse_single(reference)
                .map_err(|e| e.to_string())
                .and_then(|id| {
                    id.object()
                        .map_err(|e| e.to_string())?
                        .peel_to_commit()
                        .map_err(|e| e.to_string())
                })
                .map_err(|message| GitError::UnknownRef {
                    repo: repo.to_string(),
                    reference: reference.to_string(),
                    message,
                })?;
            Ok(id.id.to_string())
        })
    }

    /// The directory holding the files of `commit` in `repo`, checked out if missing.
    pub fn checkout(&self, repo: &str, commit: &str) -> Result<PathBuf, GitError> {
        let oid = gix::ObjectId::from_hex(commit.as_bytes()).map_err(|e| GitError::UnknownRef {
            repo: repo.to_string(),
            reference: commit.to_string(),
            message: format!("not a full commit id: {e}"),
        })?;
        let dir = self.root.join(cache_key(repo)?);
        let target = dir.join(commit);
        if target.is_dir() {
            return Ok(target);
        }
        fs::create_dir_all(&dir).map_err(|source| io(&dir, source))?;
        let lock_path = dir.join(".lock");
        let lock = File::create(&lock_path).map_err(|source| io(&lock_path, source))?;
        lock.lock().map_err(|source| io(&lock_path, source))?;
        if target.is_dir() {
            return Ok(target); // another process checked it out while we waited
        }
        let scratch = dir.join(format!(
            ".{commit}.{}",
            hex::encode(rand::random::<[u8; 8]>())
        ));
        let written = self.with_repo(repo, |git| {
            extract(git, repo, oid, &scratch, self.max_bytes)
        });
        let result = written
            .and_then(|()| fs::rename(&scratch, &target).map_err(|source| io(&target, source)));
        if result.is_err() {
            let _ = fs::remove_dir_all(&scratch);
        }
        result.map(|()| target)
    }

    /// Every checkout in the cache, as (repository key, commit), sorted.
    pub fn checkouts(&self) -> Result<Vec<(String, String)>, GitError> {
        let mut found = Vec::new();
        let mut pending = vec![self.root.clone()];
        while let Some(dir) = pending.pop() {
            let entries = match fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => return Err(io(&dir, source)),
            };
            for entry in entries {
                let entry = entry.map_err(|source| io(&dir, source))?;
                let name = entry.file_name().to_string_lossy().to_string();
                let is_commit_id =
                    |text: &str| text.len() == 40 && text.chars().all(|c| c.is_ascii_hexdigit());
                // Skip the scratch area, locks and half-written checkouts (`.COMMIT.RANDOM`).
                let scratch = name == ".fetch"
                    || name
                        .strip_prefix('.')
                        .is_some_and(|rest| rest.split('.').next().is_some_and(is_commit_id));
                if scratch || !entry.path().is_dir() {
                    continue;
                }
                let is_commit = is_commit_id(&name);
                if is_commit {
                    let repo = dir
                        .strip_prefix(&self.root)
                        .map(|p| p.display().to_string())
                        .unwrap_or_default();
                    found.push((repo, name));
                } else {
                    pending.push(entry.path());
                }
            }
        }
        found.sort();
        Ok(found)
    }

    /// Runs `f` on `repo`: opened in place when local, else a scratch bare clone.
    fn with_repo<T>(
        &self,
        repo: &str,
        f: impl FnOnce(&gix::Repository) -> Result<T, GitError>,
    ) -> Result<T, GitError> {
        if let Some(path) = local_path(repo) {
            if !self.allow_local {
                return Err(GitError::LocalRefused {
                    repo: repo.to_string(),
                });
            }
            let git = gix::open(&path).map_err(|e| GitError::Fetch {
                repo: repo.to_string(),
                message: e.to_string(),
            })?;
            return f(&git);
        }
        cache_key(repo)?; // refuse what we could not name in the cache
        let scratch_root = self.root.join(".fetch");
        fs::create_dir_all(&scratch_root).map_err(|source| io(&scratch_root, source))?;
        let scratch = scratch_root.join(hex::encode(rand::random::<[u8; 8]>()));
        let result = fetch(repo, &scratch).and_then(|git| f(&git));
        let _ = fs::remove_dir_all(&scratch);
        result
    }
}

/// A bare clone of `repo` into `path`, stopped after [`FETCH_TIMEOUT`].
fn fetch(repo: &str, path: &Path) -> Result<gix::Repository, GitError> {
    let failed = |message: String| GitError::Fetch {
        repo: repo.to_string(),
        message,
    };
    let interrupt = Arc::new(AtomicBool::new(false));
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let watchdog = {
        let interrupt = interrupt.clone();
        std::thread::spawn(move || {
            if finished.recv_timeout(FETCH_TIMEOUT).is_err() {
                interrupt.store(true, Ordering::SeqCst);
            }
        })
    };
    let result = gix::prepare_clone_bare(repo, path)
        .map_err(|e| failed(e.to_string()))
        .and_then(|mut prepare| {
            prepare
                .fetch_only(gix::progress::Discard, &interrupt)
                .map(|(git, _)| git)
                .map_err(|e| failed(e.to_string()))
        });
    let _ = done.send(());
    let _ = watchdog.join();
    if interrupt.load(Ordering::SeqCst) {
        return Err(failed(format!(
            "gave up after {} s",
            FETCH_TIMEOUT.as_secs()
        )));
    }
    result
}

/// Writes the files of commit `oid` into `into`, refusing more than `max_bytes` in all.
fn extract(
    git: &gix::Repository,
    repo: &str,
    oid: gix::ObjectId,
    into: &Path,
    max_bytes: u64,
) -> Result<(), GitError> {
    let failed = |message: String| GitError::Checkout {
        repo: repo.to_string(),
        commit: oid.to_string(),
        message,
    };
    let commit = git.find_commit(oid).map_err(|e| GitError::UnknownRef {
        repo: repo.to_string(),
        reference: oid.to_string(),
        message: e.to_string(),
    })?;
    let tree = commit.tree().map_err(|e| failed(e.to_string()))?;
    let mut recorder = gix::traverse::tree::Recorder::default();
    tree.traverse()
        .breadthfirst(&mut recorder)
        .map_err(|e| failed(e.to_string()))?;
    fs::create_dir_all(into).map_err(|source| io(into, source))?;
    let mut total: u64 = 0;
    for entry in recorder.records {
        let relative = std::str::from_utf8(&entry.filepath)
            .map_err(|_| failed("a path in the commit is not UTF-8".into()))?;
        let path = Path::new(relative);
        if !path.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(failed(format!("refusing the path {relative:?}")));
        }
        let target = into.join(path);
        if entry.mode.is_tree() {
            fs::create_dir_all(&target).map_err(|source| io(&target, source))?;
        } else if entry.mode.is_blob() {
            let blob = git
                .find_blob(entry.oid)
                .map_err(|e| failed(e.to_string()))?;
            total += blob.data.len() as u64;
            if total > max_bytes {
                return Err(GitError::TooLarge {
                    repo: repo.to_string(),
                    commit: oid.to_string(),
                    max_bytes,
                });
            }
            if let Some(parent) = target.parent() {
                fs::create_dir_all(parent).map_err(|source| io(parent, source))?;
            }
            fs::write(&target, &blob.data).map_err(|source| io(&target, source))?;
        }
        // Symlinks and submodules are not needed to read a template: skipped.
    }
    Ok(())
}

/// The local path of a `file://` URL or an absolute path.
fn local_path(repo: &str) -> Option<PathBuf> {
    if let Some(path) = repo.strip_prefix("file://") {
        return Some(PathBuf::from(path));
    }
    repo.starts_with('/').then(|| PathBuf::from(repo))
}

/// Where `repo`'s checkouts live under the cache: `HOST/OWNER/REPO` for network URLs,
/// `file/PATH` for local repositories.
pub fn cache_key(repo: &str) -> Result<PathBuf, GitError> {
    let bad = |why: &str| GitError::BadUrl {
        repo: repo.to_string(),
        why: why.to_string(),
    };
    let rest = if let Some(path) = local_path(repo) {
        format!("file/{}", path.display())
    } else {
        let (scheme, rest) = repo
            .split_once("://")
            .ok_or_else(|| bad("expected https://HOST/OWNER/REPO or file:///PATH"))?;
        if !matches!(scheme, "https" | "http" | "git" | "ssh") {
            return Err(bad("unsupported scheme"));
        }
        let rest = rest
            .rsplit_once('@')
            .map_or(rest, |(_, host_path)| host_path);
        rest.trim_end_matches('/')
            .trim_end_matches(".git")
            .to_string()
    };
    let mut key = PathBuf::new();
    for part in rest.split('/').filter(|p| !p.is_empty()) {
        if part == "." || part == ".." {
            return Err(bad("the path climbs out with . or .."));
        }
        if !part
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:~".contains(c))
        {
            return Err(bad("unusual characters in the path"));
        }
        key.push(part.replace(':', "_"));
    }
    if key.components().count() < 2 {
        return Err(bad("too short"));
    }
    Ok(key)
}

fn io(path: &Path, source: std::io::Error) -> GitError {
    GitError::Io {
        path: path.display().to_string(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_keys_name_host_owner_repo_and_refuse_escapes() {
        assert_eq!(
            cache_key("https://github.com/Lilypad-Tech/lilypad-module-lilysay.git").unwrap(),
            PathBuf::from("github.com/Lilypad-Tech/lilypad-module-lilysay")
        );
        assert_eq!(
            cache_key("file:///tmp/repos/cowsay").unwrap(),
            PathBuf::from("file/tmp/repos/cowsay")
        );
        for bad in [
            "https://github.com/../etc",
            "ftp://host/o/r",
            "github.com/o/r",
            "https://host",
            "file:///tmp/a/../b",
        ] {
            assert!(cache_key(bad).is_err(), "{bad}");
        }
    }
}
