//! Results archives from resource providers: unpacking must refuse anything that writes
//! outside the target directory (absolute paths, `..`, links), stay within its limits, and
//! agree with validation.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use lilypad::results::{self, Limits};

/// Everything under `dir`: plain files and directories only.
fn only_files_and_dirs(dir: &Path, bytes: &mut u64) {
    for entry in std::fs::read_dir(dir).expect("readable") {
        let path = entry.expect("an entry").path();
        let meta = std::fs::symlink_metadata(&path).expect("metadata");
        assert!(!meta.file_type().is_symlink(), "a link: {}", path.display());
        if meta.is_dir() {
            only_files_and_dirs(&path, bytes);
        } else {
            assert!(meta.is_file(), "not a file: {}", path.display());
            *bytes += meta.len();
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_bytes: 1 << 20,
        max_entries: 256,
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let target = dir.path().join("target");
    let valid = results::validate(data, limits).is_ok();
    let unpacked = results::unpack(data, &target, limits);
    assert_eq!(valid, unpacked.is_ok(), "{unpacked:?}");
    // Nothing but the target directory was created.
    for entry in std::fs::read_dir(dir.path()).expect("readable") {
        assert_eq!(entry.expect("an entry").file_name(), "target");
    }
    if target.exists() {
        let mut bytes = 0;
        only_files_and_dirs(&target, &mut bytes);
        if valid {
            assert!(bytes <= limits.max_bytes);
        }
    }
});
