//! Modules kept in git: real repositories made by these tests with the `git` program, read
//! through `file://` URLs. A ref is pinned to its commit once; every later read gets that
//! commit even after the tag moves; checkouts are cached per commit and shared by roles at
//! once; and bad modules fail with a clear error before any job offer exists.
//!
//! The end-to-end run of such a module through a whole network is in e2e_modules.rs.

use std::collections::BTreeMap;

mod common;

use common::gitrepo::{commit, module_repo, move_tag, template};
use lilypad::module::{self, GitModules, Located, ModuleError};

fn inputs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn pin_and_render(
    module: &str,
    modules: &GitModules,
    given: &BTreeMap<String, String>,
) -> Result<(module::ModuleSource, module::JobSpec), ModuleError> {
    let located = module::locate(module, modules.shortcut_prefix())?;
    let source = module::pin(&located, module, modules)?.expect("a git module is pinned");
    let spec = module::resolve(module, Some(&source), given, modules)?;
    Ok((source, spec))
}

#[test]
fn module_names_resolve_like_lilypad() {
    let prefix = module::DEFAULT_SHORTCUT_PREFIX;
    let git = |repo: &str, reference: &str| Located::Git {
        repo: repo.to_string(),
        reference: reference.to_string(),
        path: module::TEMPLATE_FILE.to_string(),
    };
    assert!(matches!(
        module::locate("cowsay:v0.0.1", prefix).unwrap(),
        Located::Catalog(_)
    ));
    assert_eq!(
        module::locate("lilysay:0.5.2", prefix).unwrap(),
        git(
            "https://github.com/Lilypad-Tech/lilypad-module-lilysay",
            "0.5.2"
        )
    );
    assert_eq!(
        module::locate("lilysay:0.5.2", "gitlab.com/someone/mod-").unwrap(),
        git("https://gitlab.com/someone/mod-lilysay", "0.5.2")
    );
    assert_eq!(
        module::locate("github.com/owner/repo:main", prefix).unwrap(),
        git("https://github.com/owner/repo", "main")
    );
    assert_eq!(
        module::locate("file:///srv/modules/say:v1", prefix).unwrap(),
        git("file:///srv/modules/say", "v1")
    );
    for bad in [
        "nope",
        "say:",
        ":v1",
        "github.com/o/r",
        "a b:v1",
        "github.com/../x:v1",
    ] {
        assert!(module::locate(bad, prefix).is_err(), "{bad}");
    }
}

#[test]
fn a_ref_is_pinned_to_its_commit_and_the_pin_holds_after_the_tag_moves() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, v1, v2) = module_repo(dir.path());
    let url = format!("file://{}", repo.display());
    let modules = GitModules::new(&dir.path().join("data"));
    let given = inputs(&[("Message", "moo <&>")]);

    let (source, spec) = pin_and_render(&format!("{url}:v1"), &modules, &given).unwrap();
    assert_eq!(source.repo, url);
    assert_eq!(source.commit, v1);
    assert_eq!(source.path, "lilypad_module.json.tmpl");
    assert_eq!(spec.entrypoint, vec!["/usr/bin/cowsay", "v1 moo <&>"]);
    // js of the JSON-encoded input, as Go renders it.
    assert_eq!(spec.env, vec![r#"NOTE="moo \u003c\u0026\u003e""#]);
    let (_, spec) = pin_and_render(&format!("{url}:v1"), &modules, &inputs(&[])).unwrap();
    assert_eq!(spec.entrypoint, vec!["/usr/bin/cowsay", "v1 says nothing"]);

    // The tag moves; a node reading the pinned commit still gets v1, a new pin gets v2.
    move_tag(&repo, "v1", &v2);
    let fresh = GitModules::new(&dir.path().join("another-node"));
    let pinned = module::resolve(&format!("{url}:v1"), Some(&source), &given, &fresh).unwrap();
    assert_eq!(pinned.entrypoint, vec!["/usr/bin/cowsay", "v1 moo <&>"]);
    let (moved, spec) = pin_and_render(&format!("{url}:v1"), &modules, &given).unwrap();
    assert_eq!(moved.commit, v2);
    assert_eq!(spec.entrypoint, vec!["/usr/bin/cowsay", "v2 moo <&>"]);
    // A commit id works as a ref too.
    let (by_commit, _) = pin_and_render(&format!("{url}:{v1}"), &modules, &given).unwrap();
    assert_eq!(by_commit.commit, v1);

    // Each commit was checked out once, under the cache, by its id.
    let key = lilypad::module::git::cache_key(&url).unwrap();
    let cached = modules.root().join(key);
    assert!(cached.join(&v1).join("lilypad_module.json.tmpl").is_file());
    assert!(cached.join(&v2).join("lilypad_module.json.tmpl").is_file());
}

#[test]
fn roles_checking_out_the_same_commit_at_once_share_one_checkout() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, v1, _) = module_repo(dir.path());
    let url = format!("file://{}", repo.display());
    let modules = GitModules::new(&dir.path().join("data"));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (modules, url, v1) = (modules.clone(), url.clone(), v1.clone());
            std::thread::spawn(move || modules.checkout(&url, &v1).unwrap())
        })
        .collect();
    let dirs: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(dirs.windows(2).all(|pair| pair[0] == pair[1]));
    let parent = dirs[0].parent().unwrap();
    let entries: Vec<_> = std::fs::read_dir(parent)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name != ".lock")
        .collect();
    assert_eq!(
        entries,
        vec![v1],
        "one checkout, no scratch directories left"
    );
}

#[test]
fn bad_modules_fail_with_a_clear_error_before_any_offer() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, _, _) = module_repo(dir.path());
    let url = format!("file://{}", repo.display());
    let modules = GitModules::new(&dir.path().join("data"));
    let given = inputs(&[("Message", "moo")]);
    let error = |module: &str, modules: &GitModules| {
        pin_and_render(module, modules, &given)
            .map(|_| ())
            .unwrap_err()
            .to_string()
    };

    let missing_repo = format!("file://{}/nowhere:v1", dir.path().display());
    let missing = error(&missing_repo, &modules);
    assert!(missing.contains("cannot fetch"), "{missing}");
    let missing_ref = error(&format!("{url}:v9"), &modules);
    assert!(
        missing_ref.contains("no ref or commit \"v9\""),
        "{missing_ref}"
    );

    commit(
        &repo,
        &[("lilypad_module.json.tmpl", "{{ if .Message }}")],
        "broken",
    );
    let syntax = error(&format!("{url}:broken"), &modules);
    assert!(syntax.contains("cannot render its template"), "{syntax}");

    commit(
        &repo,
        &[("lilypad_module.json.tmpl", "{ \"machine\": ")],
        "invalid",
    );
    let invalid = error(&format!("{url}:invalid"), &modules);
    assert!(invalid.contains("not valid JSON"), "{invalid}");

    commit(
        &repo,
        &[
            ("lilypad_module.json.tmpl", &template("big")),
            ("weights.bin", &"x".repeat(4096)),
        ],
        "big",
    );
    let small = GitModules::new(&dir.path().join("small")).with_max_bytes(2048);
    let big = error(&format!("{url}:big"), &small);
    assert!(big.contains("holds more than 2048 bytes"), "{big}");
    assert!(
        !small
            .root()
            .join(lilypad::module::git::cache_key(&url).unwrap())
            .read_dir()
            .unwrap()
            .any(|e| !e
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(".lock")),
        "nothing half-written is left in the cache"
    );
}

/// A node that reads modules other parties name refuses local repositories unless told
/// (ALLOW_LOCAL_MODULES): a stranger's job offer cannot make it open repositories on its disk.
#[test]
fn local_repositories_named_by_others_are_refused_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, v1, _) = module_repo(dir.path());
    let url = format!("file://{}", repo.display());
    let guarded = GitModules::new(&dir.path().join("rp")).with_local_repositories(false);
    assert!(guarded.refuses(&url));
    assert!(!guarded.refuses("https://github.com/Lilypad-Tech/lilypad-module-sdxl"));
    let error = guarded.checkout(&url, &v1).unwrap_err().to_string();
    assert!(error.contains("ALLOW_LOCAL_MODULES"), "{error}");
    assert!(guarded.resolve(&url, "v1").is_err());
    let open = GitModules::new(&dir.path().join("dev"));
    assert!(!open.refuses(&url));
    assert!(open.checkout(&url, &v1).is_ok());
}
