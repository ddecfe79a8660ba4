//! Results: a job's results directory (`stdout`, `stderr`, `exitCode`, `outputs/`) packed
//! as a deterministic tar (sorted entries, zero times and owners, fixed modes) whose CID is
//! the results id, so two honest runs of a reproducible job give the same id byte for byte.
//! Unpacking refuses anything that could write outside the target directory.

use std::fs;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

mod fetch;
pub mod ipfs;

pub use fetch::{fetch_verified, Sources, Verified};

use crate::data::ids::file_cid_of;

/// Why a results tarball is refused.
#[derive(Debug, thiserror::Error)]
pub enum TarError {
    #[error("tar entry {0:?} has an absolute path")]
    Absolute(String),
    #[error("tar entry {0:?} climbs out with '..'")]
    ParentDir(String),
    #[error("tar entry {0:?} is a {1}; only files and directories are allowed")]
    NotFileOrDir(String, &'static str),
    #[error("the results unpack to more than {0} bytes")]
    TooLarge(u64),
    #[error("the results have more than {0} entries")]
    TooManyEntries(usize),
    #[error("tar entry {0:?} {1}")]
    Conflict(String, &'static str),
    #[error("tar entry {0:?} has a name no file system takes ({1})")]
    BadName(String, &'static str),
    #[error("malformed tar: {0}")]
    Malformed(#[from] std::io::Error),
}

/// Limits on what a results tarball may hold.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_bytes: u64,
    pub max_entries: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 256 * 1024 * 1024,
            max_entries: 10_000,
        }
    }
}

/// Packs `dir` as a deterministic tar and returns (bytes, CID).
pub fn pack(dir: &Path) -> std::io::Result<(Vec<u8>, String)> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.mode(tar::HeaderMode::Deterministic);
    builder.follow_symlinks(false);
    let mut entries = Vec::new();
    collect(dir, dir, &mut entries)?;
    entries.sort();
    for relative in entries {
        let full = dir.join(&relative);
        let meta = fs::symlink_metadata(&full)?;
        let mut header = tar::Header::new_ustar();
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        if meta.is_dir() {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o755);
            header.set_size(0);
            builder.append_data(&mut header, &relative, std::io::empty())?;
        } else if meta.is_file() {
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(0o644);
            header.set_size(meta.len());
            builder.append_data(&mut header, &relative, fs::File::open(&full)?)?;
        }
        // Links and special files a job left behind are not part of its results.
    }
    let bytes = builder.into_inner()?;
    let cid = file_cid_of(&bytes);
    Ok((bytes, cid))
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let relative = path
            .strip_prefix(root)
            .map_err(std::io::Error::other)?
            .to_path_buf();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            out.push(relative);
            collect(root, &path, out)?;
        } else if kind.is_file() {
            out.push(relative);
        }
    }
    Ok(())
}

/// Checks every entry of a tarball without writing anything.
pub fn validate(bytes: &[u8], limits: Limits) -> Result<(), TarError> {
    walk(bytes, limits, |_, _| Ok(()))
}

/// Unpacks a validated tarball into `target` (created if absent).
pub fn unpack(bytes: &[u8], target: &Path, limits: Limits) -> Result<(), TarError> {
    validate(bytes, limits)?;
    fs::create_dir_all(target)?;
    walk(bytes, limits, |path, entry| {
        let destination = target.join(path);
        match entry {
            None => fs::create_dir_all(&destination)?,
            Some(data) => {
                if let Some(parent) = destination.parent() {
                    fs::create_dir_all(parent)?;
                }
                fs::write(&destination, data)?;
            }
        }
        Ok(())
    })
}

/// The longest relative path an entry may have, in bytes: with the target directory in front
/// it stays well within Linux's 4,096-byte path limit.
pub const MAX_PATH_BYTES: usize = 1024;

/// The longest name one path component may have, in bytes (Linux's limit).
pub const MAX_NAME_BYTES: usize = 255;

/// Visits every entry with its checked relative path and, for files, its contents (a
/// directory entry naming the archive's root itself, `./`, is skipped). Nothing is written.
/// Whatever passes can be unpacked: names fit the file system, no file appears twice, and no
/// entry is both a file and a directory (a file `a` with a later `a/b`, or the other way round).
pub fn walk(
    bytes: &[u8],
    limits: Limits,
    mut visit: impl FnMut(&Path, Option<&[u8]>) -> Result<(), TarError>,
) -> Result<(), TarError> {
    let mut archive = tar::Archive::new(bytes);
    let mut total = 0u64;
    // What each path seen so far is, written or implied by a deeper entry: true for directories.
    let mut seen: std::collections::HashMap<PathBuf, bool> = std::collections::HashMap::new();
    for (count, entry) in archive.entries()?.enumerate() {
        if count >= limits.max_entries {
            return Err(TarError::TooManyEntries(limits.max_entries));
        }
        let mut entry = entry?;
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let kind = entry.header().entry_type();
        if kind == tar::EntryType::Directory && is_root(&raw) {
            continue;
        }
        let path = safe_path(&raw, &shown)?;
        let is_dir = kind == tar::EntryType::Directory;
        if matches!(
            kind,
            tar::EntryType::Directory | tar::EntryType::Regular | tar::EntryType::Continuous
        ) {
            claim(&mut seen, &path, is_dir, &shown)?;
        }
        match kind {
            tar::EntryType::Directory => visit(&path, None)?,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                total = total.saturating_add(entry.size());
                if total > limits.max_bytes {
                    return Err(TarError::TooLarge(limits.max_bytes));
                }
                let mut data = Vec::with_capacity(entry.size() as usize);
                entry.read_to_end(&mut data)?;
                visit(&path, Some(&data))?;
            }
            tar::EntryType::Symlink => return Err(TarError::NotFileOrDir(shown, "symbolic link")),
            tar::EntryType::Link => return Err(TarError::NotFileOrDir(shown, "hard link")),
            // Extended headers are consumed by the tar crate; anything else is refused.
            _ => return Err(TarError::NotFileOrDir(shown, "special file")),
        }
    }
    Ok(())
}

/// Records `path` as a directory or a file, and its ancestors as directories, refusing an
/// entry that contradicts an earlier one.
fn claim(
    seen: &mut std::collections::HashMap<PathBuf, bool>,
    path: &Path,
    is_dir: bool,
    shown: &str,
) -> Result<(), TarError> {
    for ancestor in path.ancestors().skip(1) {
        if ancestor.as_os_str().is_empty() {
            break;
        }
        match seen.get(ancestor) {
            Some(false) => return Err(TarError::Conflict(shown.to_string(), "is under a file")),
            Some(true) => break, // its own ancestors were recorded with it
            None => {
                seen.insert(ancestor.to_path_buf(), true);
            }
        }
    }
    match (seen.get(path), is_dir) {
        (Some(false), true) => Err(TarError::Conflict(
            shown.to_string(),
            "names a file as a directory",
        )),
        (Some(true), false) => Err(TarError::Conflict(
            shown.to_string(),
            "names a directory as a file",
        )),
        (Some(false), false) => Err(TarError::Conflict(shown.to_string(), "appears twice")),
        (Some(true), true) => Ok(()),
        (None, _) => {
            seen.insert(path.to_path_buf(), is_dir);
            Ok(())
        }
    }
}

/// Whether a tar path names the archive's root (`.`, `./`), as engines' tars often start.
fn is_root(raw: &[u8]) -> bool {
    std::str::from_utf8(raw).is_ok_and(|text| {
        Path::new(text)
            .components()
            .all(|component| component == Component::CurDir)
    })
}

/// A relative path made only of normal components.
fn safe_path(raw: &[u8], shown: &str) -> Result<PathBuf, TarError> {
    let text = std::str::from_utf8(raw)
        .map_err(|_| TarError::NotFileOrDir(shown.to_string(), "non-UTF-8 name"))?;
    if text.contains('\0') {
        return Err(TarError::BadName(shown.to_string(), "a NUL byte"));
    }
    if text.len() > MAX_PATH_BYTES {
        return Err(TarError::BadName(
            shown.to_string(),
            "longer than 1,024 bytes",
        ));
    }
    if text.starts_with('/') || text.starts_with('\\') {
        return Err(TarError::Absolute(shown.to_string()));
    }
    let path = PathBuf::from(text);
    let mut clean = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) if part.len() > MAX_NAME_BYTES => {
                return Err(TarError::BadName(
                    shown.to_string(),
                    "a name longer than 255 bytes",
                ))
            }
            Component::Normal(part) => clean.push(part),
            Component::CurDir => {}
            Component::ParentDir => return Err(TarError::ParentDir(shown.to_string())),
            Component::RootDir | Component::Prefix(_) => {
                return Err(TarError::Absolute(shown.to_string()))
            }
        }
    }
    if clean.as_os_str().is_empty() {
        return Err(TarError::NotFileOrDir(shown.to_string(), "nameless entry"));
    }
    Ok(clean)
}

/// Writes a job's results directory: `stdout`, `stderr`, `exitCode`, and `outputs/`.
/// How the stderr of results starts when the resource provider's engine could not run the
/// job at all (exit code -1): the job never ran, and a job creator disputes such results
/// unless told to accept failures.
pub const ENGINE_FAILURE: &str = "lilypad: the engine could not run the job";

/// The line saying why, when results in `dir` say the engine could not run the job.
pub fn engine_failure_in(dir: &Path) -> Option<String> {
    let exit_code = fs::read_to_string(dir.join("exitCode")).ok()?;
    if exit_code.trim() != "-1" {
        return None;
    }
    let stderr = fs::read(dir.join("stderr")).ok()?;
    let stderr = String::from_utf8_lossy(&stderr);
    stderr
        .starts_with(ENGINE_FAILURE)
        .then(|| stderr.lines().next().unwrap_or_default().to_string())
}

pub fn write_results_dir(
    dir: &Path,
    stdout: &[u8],
    stderr: &[u8],
    exit_code: i64,
) -> std::io::Result<()> {
    fs::create_dir_all(dir.join("outputs"))?;
    fs::write(dir.join("stdout"), stdout)?;
    fs::write(dir.join("stderr"), stderr)?;
    fs::write(dir.join("exitCode"), exit_code.to_string())?;
    Ok(())
}

/// Compares the parts `paths` (relative to each results directory, files or directories)
/// of two results directories; the first difference found, or None when they match.
pub fn first_difference(
    ours: &Path,
    theirs: &Path,
    paths: &[String],
) -> std::io::Result<Option<String>> {
    for path in paths {
        let (a, b) = (listing(&ours.join(path))?, listing(&theirs.join(path))?);
        if a == b {
            continue;
        }
        let names: std::collections::BTreeSet<&PathBuf> = a.keys().chain(b.keys()).collect();
        let differing = names
            .into_iter()
            .find(|name| a.get(*name) != b.get(*name))
            .map(|name| match name.as_os_str().is_empty() {
                true => path.clone(),
                false => Path::new(path).join(name).display().to_string(),
            })
            .unwrap_or_else(|| path.clone());
        return Ok(Some(differing));
    }
    Ok(None)
}

/// Every file under `root` (or `root` itself) by relative path, with its bytes; empty if absent.
fn listing(root: &Path) -> std::io::Result<std::collections::BTreeMap<PathBuf, Vec<u8>>> {
    let mut files = std::collections::BTreeMap::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        let path = if relative.as_os_str().is_empty() {
            root.to_path_buf()
        } else {
            root.join(&relative)
        };
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            for entry in fs::read_dir(&path)? {
                pending.push(relative.join(entry?.file_name()));
            }
        } else if meta.is_file() {
            files.insert(relative, fs::read(&path)?);
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_parts_of_two_results_are_compared_file_by_file() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        write_results_dir(a.path(), b"same", b"noise 1", 0).unwrap();
        write_results_dir(b.path(), b"same", b"noise 2", 0).unwrap();
        fs::write(a.path().join("outputs/x.txt"), "x").unwrap();
        fs::write(b.path().join("outputs/x.txt"), "x").unwrap();
        let paths = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let compare = |names: &[&str]| first_difference(a.path(), b.path(), &paths(names)).unwrap();
        assert_eq!(compare(&["stdout", "exitCode", "outputs"]), None);
        assert_eq!(compare(&["stderr"]), Some("stderr".into()));
        fs::write(b.path().join("outputs/extra.txt"), "y").unwrap();
        assert_eq!(compare(&["outputs"]), Some("outputs/extra.txt".into()));
        assert_eq!(compare(&["outputs/x.txt"]), None);
    }

    /// A tar with one entry whose name is written raw into the header (the tar crate's
    /// safe setters refuse such names, which is the point of the test).
    fn hostile_tar(name: &str, kind: tar::EntryType) -> Vec<u8> {
        let mut header = tar::Header::new_old();
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_entry_type(kind);
        header.set_mode(0o644);
        header.set_size(if kind == tar::EntryType::Regular {
            3
        } else {
            0
        });
        if kind == tar::EntryType::Symlink {
            header.set_link_name("/etc/passwd").unwrap();
        }
        header.set_cksum();
        let mut builder = tar::Builder::new(Vec::new());
        let data: &[u8] = if kind == tar::EntryType::Regular {
            b"bad"
        } else {
            b""
        };
        builder.append(&header, data).unwrap();
        builder.into_inner().unwrap()
    }

    #[test]
    fn packing_is_deterministic_and_round_trips() {
        let first = tempfile::tempdir().unwrap();
        write_results_dir(first.path(), b"moo\n", b"", 0).unwrap();
        fs::write(first.path().join("outputs/b.txt"), b"b").unwrap();
        fs::write(first.path().join("outputs/a.txt"), b"a").unwrap();
        let second = tempfile::tempdir().unwrap();
        write_results_dir(second.path(), b"moo\n", b"", 0).unwrap();
        fs::write(second.path().join("outputs/a.txt"), b"a").unwrap();
        fs::write(second.path().join("outputs/b.txt"), b"b").unwrap();
        let (bytes, cid) = pack(first.path()).unwrap();
        let (again, cid_again) = pack(second.path()).unwrap();
        assert_eq!(bytes, again);
        assert_eq!(cid, cid_again);
        let out = tempfile::tempdir().unwrap();
        unpack(&bytes, out.path(), Limits::default()).unwrap();
        assert_eq!(fs::read(out.path().join("stdout")).unwrap(), b"moo\n");
        assert_eq!(fs::read(out.path().join("outputs/a.txt")).unwrap(), b"a");
        assert_eq!(
            fs::read_to_string(out.path().join("exitCode")).unwrap(),
            "0"
        );
    }

    #[test]
    fn different_results_give_different_ids() {
        let one = tempfile::tempdir().unwrap();
        write_results_dir(one.path(), b"moo\n", b"", 0).unwrap();
        let two = tempfile::tempdir().unwrap();
        write_results_dir(two.path(), b"mooo\n", b"", 0).unwrap();
        assert_ne!(pack(one.path()).unwrap().1, pack(two.path()).unwrap().1);
    }

    #[test]
    fn hostile_entries_are_refused() {
        let limits = Limits::default();
        let parent = hostile_tar("../escape", tar::EntryType::Regular);
        assert!(matches!(
            validate(&parent, limits),
            Err(TarError::ParentDir(_))
        ));
        let nested = hostile_tar("outputs/../../escape", tar::EntryType::Regular);
        assert!(matches!(
            validate(&nested, limits),
            Err(TarError::ParentDir(_))
        ));
        let absolute = hostile_tar("/etc/cron.d/x", tar::EntryType::Regular);
        assert!(matches!(
            validate(&absolute, limits),
            Err(TarError::Absolute(_))
        ));
        let link = hostile_tar("outputs/link", tar::EntryType::Symlink);
        assert!(matches!(
            validate(&link, limits),
            Err(TarError::NotFileOrDir(_, "symbolic link"))
        ));
        let target = tempfile::tempdir().unwrap();
        assert!(unpack(&parent, &target.path().join("in"), limits).is_err());
        assert!(!target.path().join("escape").exists());
    }

    /// `(path, Some(contents))` for a file, `(path, None)` for a directory.
    type Entry<'a> = (&'a str, Option<&'a [u8]>);

    /// A tar of these entries, in that order.
    fn tar_of(entries: &[Entry]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, data) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_mode(0o644);
            match data {
                Some(data) => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_size(data.len() as u64);
                    builder.append_data(&mut header, path, *data).unwrap();
                }
                None => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_size(0);
                    builder
                        .append_data(&mut header, path, std::io::empty())
                        .unwrap();
                }
            }
        }
        builder.into_inner().unwrap()
    }

    #[test]
    fn entries_that_cannot_all_be_written_are_refused_before_anything_is() {
        let limits = Limits::default();
        let long = "n".repeat(MAX_NAME_BYTES + 1);
        let deep = vec!["d"; MAX_PATH_BYTES / 2 + 1].join("/");
        let refused: &[(&str, &[Entry])] = &[
            (
                "a file, then a file inside it",
                &[("a", Some(b"1")), ("a/b", Some(b"2"))],
            ),
            (
                "a file, then a directory inside it",
                &[("a", Some(b"1")), ("a/b/c", None)],
            ),
            (
                "a file, then a directory of its name",
                &[("a", Some(b"1")), ("a", None)],
            ),
            (
                "a directory, then a file of its name",
                &[("a", None), ("a", Some(b"1"))],
            ),
            (
                "an implied directory, then a file of its name",
                &[("a/b", Some(b"1")), ("a", Some(b"2"))],
            ),
            ("one file twice", &[("a", Some(b"1")), ("./a", Some(b"2"))]),
            ("a name over 255 bytes", &[(long.as_str(), Some(b"1"))]),
            ("a path over 1,024 bytes", &[(deep.as_str(), Some(b"1"))]),
        ];
        for (what, entries) in refused {
            let tar = tar_of(entries);
            let error = validate(&tar, limits).expect_err(what);
            assert!(
                matches!(error, TarError::Conflict(..) | TarError::BadName(..)),
                "{what}: {error}"
            );
            let target = tempfile::tempdir().unwrap();
            let place = target.path().join("in");
            assert!(unpack(&tar, &place, limits).is_err(), "{what}");
            assert!(!place.exists(), "{what}: written before refusing");
        }
        // Directories may be named again, before or after the files inside them.
        let fine = tar_of(&[
            ("a/b", Some(b"1")),
            ("a", None),
            ("a/", None),
            ("a/c", None),
            ("a/c/d", Some(b"2")),
            ("e", Some(b"3")),
        ]);
        let target = tempfile::tempdir().unwrap();
        unpack(&fine, target.path(), limits).unwrap();
        assert_eq!(fs::read(target.path().join("a/c/d")).unwrap(), b"2");
        assert_eq!(fs::read(target.path().join("e")).unwrap(), b"3");
    }

    #[test]
    fn size_and_count_caps_hold() {
        let dir = tempfile::tempdir().unwrap();
        write_results_dir(dir.path(), &vec![b'x'; 1000], b"", 0).unwrap();
        let (bytes, _) = pack(dir.path()).unwrap();
        assert!(matches!(
            validate(
                &bytes,
                Limits {
                    max_bytes: 999,
                    max_entries: 100
                }
            ),
            Err(TarError::TooLarge(999))
        ));
        assert!(matches!(
            validate(
                &bytes,
                Limits {
                    max_bytes: 1 << 20,
                    max_entries: 2
                }
            ),
            Err(TarError::TooManyEntries(2))
        ));
        assert!(validate(
            b"definitely not a tar file, just some bytes",
            Limits::default()
        )
        .is_err());
    }
}
