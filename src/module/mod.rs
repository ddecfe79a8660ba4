//! Modules: resolve a module name to its `lilypad_module.json.tmpl`, render it with the
//! job's inputs (Go text/template syntax, each input JSON-encoded, exactly as existing
//! Lilypad modules expect) and read the Docker job it describes, refusing what we cannot honour.
//!
//! Names resolve first in the catalog compiled into the binary (`cowsay:v0.0.1`, whose image
//! `make images` builds from deploy/images/cowsay; for offline demos), then as a local
//! directory holding a `lilypad_module.json.tmpl`, then as a git repository, as Lilypad
//! does: `NAME:TAG` is the `lilypad-module-NAME` repository of the default module org
//! (`MODULE_SHORTCUT_PREFIX`), `HOST/OWNER/REPO:REF` is `https://HOST/OWNER/REPO`, and a URL
//! (`https://…`, `file://…`) may be followed by `:REF`. The job creator pins the ref to a
//! commit ([`pin`]); the job offer carries repository, commit and path, and every node
//! renders that very file ([`resolve`]).

use std::collections::BTreeMap;
use std::path::Path;

use crate::data::MachineSpec;

pub mod git;
mod spec;
mod template;
pub use template::{go_json_string, render_text};

pub use crate::data::ModuleSource;
pub use git::GitModules;

/// The template file of a module repository, unless the job names another path.
pub const TEMPLATE_FILE: &str = "lilypad_module.json.tmpl";
/// Where `NAME:TAG` modules live: `https://` + this + `NAME`, at TAG.
pub const DEFAULT_SHORTCUT_PREFIX: &str = "github.com/Lilypad-Tech/lilypad-module-";

/// Templates shipped inside the binary, by `NAME:TAG`.
const CATALOG: &[(&str, &str)] = &[(
    "cowsay:v0.0.1",
    include_str!("catalog/cowsay-v0.0.1.json.tmpl"),
)];

/// Why a module cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    #[error("unknown module {0:?}: name one built into this binary ({catalog}), a local directory with lilypad_module.json.tmpl, or a git repository at a ref: NAME:TAG (the default module org's lilypad-module-NAME), HOST/OWNER/REPO:REF or URL:REF", catalog = catalog_names())]
    Unknown(String),
    #[error("module {module} needs input {input:?}: pass -i {input}=VALUE (a missing input renders as <no value>, which left the spec invalid: {message})")]
    MissingInput {
        module: String,
        input: String,
        message: String,
    },
    #[error("module {module}: cannot render its template: {message}")]
    Template { module: String, message: String },
    #[error(
        "module {module}: the rendered spec is not valid JSON of the expected shape: {message}"
    )]
    Spec { module: String, message: String },
    #[error("module {module}: {message}")]
    Unsupported { module: String, message: String },
    #[error("module {module}: {source}")]
    Git {
        module: String,
        source: git::GitError,
    },
    #[error("module {module}: cannot read {path}: {source}")]
    Read {
        module: String,
        path: String,
        source: std::io::Error,
    },
}

fn catalog_names() -> String {
    CATALOG
        .iter()
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the executor runs: the Docker part of a rendered module.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobSpec {
    pub module: String,
    pub machine: MachineSpec,
    /// The engine the spec names (only Docker runs here).
    pub engine: String,
    pub image: String,
    pub entrypoint: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    /// Whether the job asks for network access (the RP may refuse it).
    pub network: bool,
    /// A network type we do not know (refused by the check).
    pub unsupported_network: Option<String>,
    pub timeout_secs: u64,
    /// Container paths whose contents become `outputs/`.
    pub outputs: Vec<String>,
    /// Data from IPFS the job reads, fetched before it runs.
    pub inputs: Vec<Input>,
    /// `Inputs` from sources other than IPFS, described (refused by the check).
    pub unsupported_inputs: Vec<String>,
    /// The spec's `Resources`, as written.
    pub resources: Resources,
    /// What a mediator compares: empty means the whole results (their CID); otherwise these
    /// paths of the results directory (`stdout`, `stderr`, `exitCode`, `outputs/...`), for
    /// modules whose other output is not byte-reproducible. From the template's
    /// `"mediation": {"compare": [...]}`.
    pub compare: Vec<String>,
}

/// An IPFS `Input` of a job: the content `cid` names (a file or a directory), mounted at
/// `path` in the container (a copy for this run: what the job writes there is discarded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    pub cid: String,
    pub path: String,
}

/// The `Resources` a job spec names (Bacalhau's strings, e.g. `"GPU": "1"`, `"Memory": "8gb"`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    pub cpu: Option<String>,
    pub memory: Option<String>,
    pub disk: Option<String>,
    pub gpu: Option<String>,
}

/// Where a module reference points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Located {
    /// A template compiled into the binary.
    Catalog(&'static str),
    /// A local directory holding the template.
    Local(std::path::PathBuf),
    /// A git repository at a ref (tag, branch or commit), and the template's path in it.
    Git {
        repo: String,
        reference: String,
        path: String,
    },
}

/// Where `module` points (see the module docs for the forms); `shortcut_prefix` is where
/// `NAME:TAG` modules live.
pub fn locate(module: &str, shortcut_prefix: &str) -> Result<Located, ModuleError> {
    if let Some((_, template)) = CATALOG.iter().find(|(name, _)| *name == module) {
        return Ok(Located::Catalog(template));
    }
    let dir = Path::new(module);
    if dir.is_dir() {
        return Ok(Located::Local(dir.to_path_buf()));
    }
    let unknown = || ModuleError::Unknown(module.to_string());
    let (name, reference) = module.rsplit_once(':').ok_or_else(unknown)?;
    if name.is_empty() || reference.is_empty() || reference.contains('/') {
        return Err(unknown());
    }
    let repo = if name.contains("://") {
        name.to_string()
    } else if name.contains('/') {
        format!("https://{name}")
    } else if name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        format!("https://{shortcut_prefix}{name}")
    } else {
        return Err(unknown());
    };
    git::cache_key(&repo).map_err(|source| ModuleError::Git {
        module: module.to_string(),
        source,
    })?;
    Ok(Located::Git {
        repo,
        reference: reference.to_string(),
        path: TEMPLATE_FILE.to_string(),
    })
}

/// The job creator's pin: for a module kept in git, the commit its ref names now (fetched
/// once, read from the cache afterwards); None for built-in and local modules.
pub fn pin(
    located: &Located,
    module: &str,
    modules: &GitModules,
) -> Result<Option<ModuleSource>, ModuleError> {
    let Located::Git {
        repo,
        reference,
        path,
    } = located
    else {
        return Ok(None);
    };
    let commit = modules
        .resolve(repo, reference)
        .map_err(|source| ModuleError::Git {
            module: module.to_string(),
            source,
        })?;
    Ok(Some(ModuleSource {
        repo: repo.clone(),
        commit,
        path: path.clone(),
    }))
}

/// The template of `module`: from its pinned source when it has one (checked out once into
/// the cache), else the catalog or a local directory.
pub fn template_of(
    module: &str,
    source: Option<&ModuleSource>,
    modules: &GitModules,
) -> Result<String, ModuleError> {
    if let Some(source) = source {
        let relative = Path::new(&source.path);
        if !relative
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
        {
            return Err(ModuleError::Unsupported {
                module: module.to_string(),
                message: format!("template path {:?} must be relative and plain", source.path),
            });
        }
        let dir = modules
            .checkout(&source.repo, &source.commit)
            .map_err(|error| ModuleError::Git {
                module: module.to_string(),
                source: error,
            })?;
        let path = dir.join(relative);
        return std::fs::read_to_string(&path).map_err(|error| ModuleError::Read {
            module: module.to_string(),
            path: format!("{}@{}:{}", source.repo, source.commit, source.path),
            source: error,
        });
    }
    match locate(module, DEFAULT_SHORTCUT_PREFIX)? {
        Located::Catalog(template) => Ok(template.to_string()),
        Located::Local(dir) => {
            let path = dir.join(TEMPLATE_FILE);
            std::fs::read_to_string(&path).map_err(|source| ModuleError::Read {
                module: module.to_string(),
                path: path.display().to_string(),
                source,
            })
        }
        Located::Git { .. } => Err(ModuleError::Unsupported {
            module: module.to_string(),
            message: "a module kept in git must be pinned to a commit by the job creator".into(),
        }),
    }
}

/// The job `offer` asks for: its module (from its pinned source when kept in git, checked
/// out into the cache on a blocking thread) rendered with its inputs.
pub async fn resolve_offer(
    offer: &crate::data::JobOffer,
    modules: &GitModules,
) -> Result<JobSpec, ModuleError> {
    let (module, source, inputs, modules) = (
        offer.module.clone(),
        offer.module_source.clone(),
        offer.inputs.clone(),
        modules.clone(),
    );
    let module_name = module.clone();
    tokio::task::spawn_blocking(move || resolve(&module, source.as_ref(), &inputs, &modules))
        .await
        .unwrap_or_else(|error| {
            Err(ModuleError::Unsupported {
                module: module_name,
                message: format!("resolving the module stopped: {error}"),
            })
        })
}

/// Resolves and renders `module` (pinned to `source` when kept in git) with `inputs`.
pub fn resolve(
    module: &str,
    source: Option<&ModuleSource>,
    inputs: &BTreeMap<String, String>,
    modules: &GitModules,
) -> Result<JobSpec, ModuleError> {
    let template = template_of(module, source, modules)?;
    render(module, &template, inputs)
}

/// Renders `template` with each input JSON-encoded, then reads the job it describes.
pub fn render(
    module: &str,
    template: &str,
    inputs: &BTreeMap<String, String>,
) -> Result<JobSpec, ModuleError> {
    let text =
        template::render_text(template, inputs).map_err(|message| ModuleError::Template {
            module: module.to_string(),
            message,
        })?;
    read_rendered(module, &text).map_err(|error| {
        let missing = template::missing_inputs(template, inputs);
        match (error, missing.first()) {
            (ModuleError::Spec { message, .. }, Some(input)) if text.contains("<no value>") => {
                ModuleError::MissingInput {
                    module: module.to_string(),
                    input: input.clone(),
                    message,
                }
            }
            (error, _) => error,
        }
    })
}

/// Reads the job a rendered template describes and checks it is one we can run.
pub fn read_rendered(module: &str, text: &str) -> Result<JobSpec, ModuleError> {
    let spec = spec::read(module, text).map_err(|e| ModuleError::Spec {
        module: module.to_string(),
        message: e.to_string(),
    })?;
    spec::check(&spec)?;
    Ok(spec)
}

/// Parses `-i K=V` arguments.
pub fn parse_inputs(pairs: &[String]) -> Result<BTreeMap<String, String>, String> {
    let mut inputs = BTreeMap::new();
    for pair in pairs {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("input {pair:?} is not KEY=VALUE"))?;
        if key.is_empty() {
            return Err(format!("input {pair:?} has an empty key"));
        }
        inputs.insert(key.to_string(), value.to_string());
    }
    Ok(inputs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache() -> GitModules {
        GitModules::new(&std::env::temp_dir().join("lilypad-module-tests"))
    }

    fn inputs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn cowsay_renders_with_its_input_json_encoded() {
        let spec = resolve(
            "cowsay:v0.0.1",
            None,
            &inputs(&[("Message", "moo \"quoted\"")]),
            &cache(),
        )
        .unwrap();
        assert_eq!(spec.image, "lilypad/cowsay:v0.0.1");
        assert_eq!(
            spec.entrypoint,
            vec!["/usr/bin/cowsay".to_string(), "moo \"quoted\"".to_string()]
        );
        assert!(!spec.network);
        assert_eq!(spec.timeout_secs, 60);
        assert_eq!(
            spec.machine,
            MachineSpec {
                cpu: 500,
                ram: 64,
                gpu: 0,
                vram: 0,
                disk: 0,
            }
        );
    }

    #[test]
    fn a_missing_input_names_the_input() {
        let error = resolve("cowsay:v0.0.1", None, &inputs(&[]), &cache()).unwrap_err();
        assert!(error.to_string().contains("-i Message=VALUE"), "{error}");
    }

    #[test]
    fn unknown_modules_and_bad_specs_are_clear_errors() {
        let error = resolve("nope", None, &inputs(&[]), &cache()).unwrap_err();
        assert!(error.to_string().contains("cowsay:v0.0.1"), "{error}");
        let wasm = r#"{"machine":{},"job":{"Spec":{"Engine":"Wasm","Docker":{"Image":"x"}}}}"#;
        assert!(matches!(
            render("m", wasm, &inputs(&[])),
            Err(ModuleError::Unsupported { .. })
        ));
        assert!(matches!(
            render("m", "{ not json", &inputs(&[])),
            Err(ModuleError::Spec { .. })
        ));
    }

    #[test]
    fn a_module_can_name_what_mediation_compares() {
        let template = |compare: &str| {
            format!(
                r#"{{"machine":{{}},"job":{{"Spec":{{"Docker":{{"Image":"x"}}}}}},"mediation":{{"compare":{compare}}}}}"#
            )
        };
        let spec = render(
            "m",
            &template(r#"["stdout", "outputs/result.txt"]"#),
            &inputs(&[]),
        )
        .unwrap();
        assert_eq!(spec.compare, vec!["stdout", "outputs/result.txt"]);
        for bad in [
            r#"["/etc/passwd"]"#,
            r#"["outputs/../stdout"]"#,
            r#"["elsewhere"]"#,
            r#"["outputs//x"]"#,
        ] {
            assert!(
                matches!(
                    render("m", &template(bad), &inputs(&[])),
                    Err(ModuleError::Unsupported { .. })
                ),
                "{bad}"
            );
        }
        // Without the section, mediation compares the whole results.
        assert!(resolve(
            "cowsay:v0.0.1",
            None,
            &inputs(&[("Message", "m")]),
            &cache()
        )
        .unwrap()
        .compare
        .is_empty());
    }

    #[test]
    fn inputs_parse_as_key_value() {
        assert_eq!(
            parse_inputs(&["Message=a=b".into()]).unwrap()["Message"],
            "a=b"
        );
        assert!(parse_inputs(&["novalue".into()]).is_err());
    }
}
