//! Real git repositories for the module tests, made with the `git` program: a module
//! repository with tags v1 and v2, and helpers to commit and move tags.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A template in the styles real modules use: `if`/`else`, `subst` and `js`.
pub fn template(version: &str) -> String {
    format!(
        r#"{{
  "machine": {{ "gpu": 0, "cpu": 500, "ram": 64 }},
  "job": {{
    "APIVersion": "V1beta1",
    "Spec": {{
      "Docker": {{
        "Entrypoint": ["/usr/bin/cowsay", {{{{ if .Message }}}}"{{{{ subst "{version} %s" .Message }}}}"{{{{ else }}}}"{version} says nothing"{{{{ end }}}}],
        "EnvironmentVariables": ["NOTE={{{{ js .Message }}}}"],
        "Image": "lilypad/cowsay:v0.0.1"
      }},
      "Engine": "Docker",
      "Network": {{ "Type": "None" }},
      "Outputs": [{{ "Name": "outputs", "Path": "/outputs" }}],
      "Timeout": 60
    }}
  }}
}}
"#
    )
}

fn git(repo: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args(args)
        .current_dir(repo)
        .env("GIT_AUTHOR_NAME", "test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .output()
        .expect("git runs");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

/// Commits `files` and tags the commit `tag`; returns the commit id.
pub fn commit(repo: &Path, files: &[(&str, &str)], tag: &str) -> String {
    for (path, contents) in files {
        std::fs::write(repo.join(path), contents).unwrap();
        git(repo, &["add", path]);
    }
    git(repo, &["commit", "-q", "-m", tag]);
    git(repo, &["tag", "-f", tag]);
    git(repo, &["rev-parse", "HEAD"])
}

/// A repository with tags v1 and v2 (the template says so); returns (path, v1, v2).
pub fn module_repo(dir: &Path) -> (PathBuf, String, String) {
    let repo = dir.join("lilypad-module-say");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    let v1 = commit(
        &repo,
        &[("lilypad_module.json.tmpl", &template("v1"))],
        "v1",
    );
    let v2 = commit(
        &repo,
        &[("lilypad_module.json.tmpl", &template("v2"))],
        "v2",
    );
    (repo, v1, v2)
}

/// Moves `tag` to `commit`.
pub fn move_tag(repo: &Path, tag: &str, commit: &str) {
    git(repo, &["tag", "-f", tag, commit]);
}
