//! Job offers (what a job creator wants run) and resource offers (what a resource
//! provider sells). Both are named by the CID of their canonical JSON with `id` empty,
//! so anyone can recompute an id and no one can change an offer without changing its id.

use std::collections::BTreeMap;

use ethers::types::Address;
use serde::{Deserialize, Serialize};

use super::amount;
use super::ids::{cid_of, JSON_CODEC};

/// Machine resources: what a job needs or what a resource offer has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct MachineSpec {
    /// CPU in millicores (1000 = one core).
    pub cpu: u64,
    /// Memory in MiB.
    pub ram: u64,
    /// Number of GPUs.
    pub gpu: u64,
    /// Memory per GPU in MiB (0: any).
    #[serde(default)]
    pub vram: u64,
    /// Disk space in MiB (a job: what it needs, 0: nothing declared; a resource offer: what
    /// the slot has, 0: not limited). Absent from the JSON when 0, so older ids are unchanged.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub disk: u64,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

impl MachineSpec {
    /// Whether a machine with `self` can run a job that needs `need`.
    pub fn covers(&self, need: &MachineSpec) -> bool {
        self.cpu >= need.cpu
            && self.ram >= need.ram
            && self.gpu >= need.gpu
            && (need.gpu == 0 || need.vram == 0 || self.vram >= need.vram)
            && (self.disk == 0 || self.disk >= need.disk)
    }
}

/// Prices and stakes, in token wei. In a job offer `instruction_price` is the most the job
/// creator pays; in a resource offer it is what the provider asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pricing {
    #[serde(with = "amount")]
    pub instruction_price: u128,
    #[serde(with = "amount")]
    pub payment_collateral: u128,
    pub results_collateral_multiple: u64,
    #[serde(with = "amount")]
    pub mediation_fee: u128,
}

/// Deadlines (seconds) and the two stakes that back them (wei), as the contracts take them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Timeouts {
    pub agree: u64,
    pub submit_results: u64,
    pub judge_results: u64,
    pub mediate_results: u64,
    /// Staked by the RP when it agrees; lost if it never submits results.
    #[serde(with = "amount")]
    pub submit_results_collateral: u128,
    /// Staked by the JC when it agrees; lost if it never judges the results.
    #[serde(with = "amount")]
    pub judge_results_collateral: u128,
}

/// The third parties an offer trusts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Services {
    pub solver: Address,
    pub mediators: Vec<Address>,
}

/// What a job creator asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobOffer {
    /// CID of this offer's canonical JSON with `id` empty.
    pub id: String,
    /// Unix milliseconds, as the job creator's clock saw it.
    pub created_at: u64,
    pub job_creator: Address,
    /// The module, e.g. `cowsay:v0.0.1`.
    pub module: String,
    /// The module's inputs (`-i K=V`).
    pub inputs: BTreeMap<String, String>,
    /// What the job needs, from the module's rendered spec.
    pub spec: MachineSpec,
    pub pricing: Pricing,
    pub timeouts: Timeouts,
    pub services: Services,
    /// Makes two otherwise equal offers distinct.
    pub nonce: String,
    /// One more address allowed to download the results (besides the job creator and the
    /// mediators): `lilypad jc` names the on-chain requester here. Absent from the JSON
    /// when unset, so ids of offers without it are unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results_reader: Option<Address>,
    /// The on-chain job request this offer serves (`lilypad jc`), so the id of any deal made
    /// from it commits to that request. Absent from the JSON when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_chain_job: Option<OnChainJob>,
    /// Where the module's template is, pinned to a commit, for modules kept in git: every
    /// node reads this very file. Absent (and from the JSON) for built-in and local modules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module_source: Option<ModuleSource>,
}

/// A module template in a git repository, at a commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleSource {
    /// The repository URL (`https://HOST/OWNER/REPO`, `file:///PATH`).
    pub repo: String,
    /// The full commit id the job creator resolved the module's ref to.
    pub commit: String,
    /// The template's path in the repository.
    pub path: String,
}

/// A job request made on chain (LilypadOnChainJobCreator) that a job offer serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnChainJob {
    /// The job creator contract.
    pub contract: Address,
    /// The request's job id there, in decimal.
    pub job_id: String,
}

/// What a resource provider sells: one slot of its machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceOffer {
    /// CID of this offer's canonical JSON with `id` empty.
    pub id: String,
    pub created_at: u64,
    pub resource_provider: Address,
    pub spec: MachineSpec,
    pub pricing: Pricing,
    pub timeouts: Timeouts,
    /// Modules this provider runs (`NAME:TAG` or `NAME` for any tag); empty: any.
    pub modules: Vec<String>,
    pub services: Services,
    pub nonce: String,
}

/// Something named by the CID of its canonical JSON with the id left empty.
pub trait ContentAddressed: Serialize + Clone {
    fn id(&self) -> &str;
    fn id_mut(&mut self) -> &mut String;

    /// The id this value must have.
    fn compute_id(&self) -> String {
        let mut blank = self.clone();
        blank.id_mut().clear();
        // Serialising plain structs, strings and BTreeMaps cannot fail.
        let json = serde_json::to_vec(&blank).expect("serialisable");
        cid_of(JSON_CODEC, &json)
    }

    /// Sets the id from the content.
    fn seal(mut self) -> Self {
        let id = self.compute_id();
        *self.id_mut() = id;
        self
    }

    /// Whether the id matches the content.
    fn id_is_valid(&self) -> bool {
        self.id() == self.compute_id()
    }
}

impl ContentAddressed for JobOffer {
    fn id(&self) -> &str {
        &self.id
    }
    fn id_mut(&mut self) -> &mut String {
        &mut self.id
    }
}

impl ContentAddressed for ResourceOffer {
    fn id(&self) -> &str {
        &self.id
    }
    fn id_mut(&mut self) -> &mut String {
        &mut self.id
    }
}

impl ResourceOffer {
    /// Whether this offer allows `job`'s module. Each allow-list entry is `NAME` or
    /// `NAME:TAG` (a built-in or local module as the job names it), a repository pattern such as
    /// `github.com/Lilypad-Tech/*` (the pinned repository, `*` matching any run of
    /// characters), or `REPO@COMMIT` (that repository at that commit, or a commit starting
    /// with it). An empty list allows every module.
    pub fn allows_module(&self, job: &JobOffer) -> bool {
        self.modules.is_empty()
            || self
                .modules
                .iter()
                .any(|pattern| module_matches(pattern, &job.module, job.module_source.as_ref()))
    }
}

/// Whether allow-list entry `pattern` admits `module` (pinned to `source` when kept in git).
pub fn module_matches(pattern: &str, module: &str, source: Option<&ModuleSource>) -> bool {
    let repo_of = |source: &ModuleSource| {
        let repo = source
            .repo
            .split_once("://")
            .map_or(source.repo.as_str(), |(_, rest)| rest);
        repo.trim_end_matches('/')
            .trim_end_matches(".git")
            .to_string()
    };
    if let Some((repo, commit)) = pattern.split_once('@') {
        return source.is_some_and(|source| {
            glob(repo, &repo_of(source)) && !commit.is_empty() && source.commit.starts_with(commit)
        });
    }
    if pattern.contains('/') {
        return match source {
            Some(source) => glob(pattern, &repo_of(source)),
            None => pattern == module, // a local module directory
        };
    }
    // A name says nothing about which repository a pinned module comes from (a job could
    // name "cowsay" and pin any repository), so names admit only built-in and local modules.
    let name = module.split(':').next().unwrap_or(module);
    source.is_none() && (pattern == module || pattern == name)
}

/// `pattern` with `*` matching any run of characters, against all of `text`.
fn glob(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    for (index, part) in parts.iter().enumerate() {
        if index == parts.len() - 1 {
            return rest.ends_with(part);
        }
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.is_empty()
}

/// A random hex nonce.
pub fn new_nonce() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// Unix milliseconds now.
pub fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::examples::{job_offer, resource_offer};
    use crate::data::{Deal, Mismatch};

    fn pinned(repo: &str, commit: &str) -> JobOffer {
        let mut job = job_offer(1, 5, 1000);
        job.module = format!("{repo}:v1");
        job.module_source = Some(ModuleSource {
            repo: repo.to_string(),
            commit: commit.to_string(),
            path: "lilypad_module.json.tmpl".into(),
        });
        job.seal()
    }

    #[test]
    fn allow_lists_take_names_repository_patterns_and_pinned_commits() {
        let commit = "0a250683e786af624b66dd38ad8dff97ef78a543";
        let lilypad = pinned(
            "https://github.com/Lilypad-Tech/lilypad-module-sdxl",
            commit,
        );
        let other = pinned("https://github.com/someone/lilypad-module-sdxl.git", commit);
        let allowing = |patterns: &[&str]| {
            let mut offer = resource_offer(2, 3, 1000);
            offer.modules = patterns.iter().map(|p| p.to_string()).collect();
            offer.seal()
        };
        let cases: &[(&[&str], &JobOffer, bool)] = &[
            (&["github.com/Lilypad-Tech/*"], &lilypad, true),
            (&["github.com/Lilypad-Tech/*"], &other, false),
            (&["github.com/*/lilypad-module-sdxl"], &other, true),
            (
                &["github.com/someone/lilypad-module-sdxl@0a2506"],
                &other,
                true,
            ),
            (
                &["github.com/someone/lilypad-module-sdxl@ffff"],
                &other,
                false,
            ),
            (&["github.com/someone/lilypad-module-sdxl@"], &other, false),
            (&["cowsay"], &other, false),
            // A pinned module is admitted by its repository, never by the name it claims.
            (
                &["lilypad-module-sdxl", "lilypad-module-sdxl:v1"],
                &other,
                false,
            ),
            (&[], &other, true),
        ];
        for (patterns, job, allowed) in cases {
            let result = Deal::propose(job, &allowing(patterns), 0);
            assert_eq!(
                result.is_ok(),
                *allowed,
                "{patterns:?} for {:?}: {result:?}",
                job.module_source
            );
            if !allowed {
                assert_eq!(result.unwrap_err(), Mismatch::Module);
            }
        }
        // Disk: a slot with less than the job declares is refused; 0 on the slot: not limited.
        let mut big = job_offer(1, 5, 1000);
        big.spec.disk = 50_000;
        let big = big.seal();
        let mut small_disk = resource_offer(2, 3, 1000);
        small_disk.spec.disk = 10_000;
        assert_eq!(
            Deal::propose(&big, &small_disk.seal(), 0).unwrap_err(),
            Mismatch::Spec
        );
        assert!(Deal::propose(&big, &resource_offer(2, 3, 1000), 0).is_ok());
        // Names still work for built-in modules, with or without the tag.
        let cowsay = job_offer(1, 5, 1000);
        assert!(Deal::propose(&cowsay, &allowing(&["cowsay"]), 0).is_ok());
        assert!(Deal::propose(&cowsay, &allowing(&["cowsay:v0.0.1"]), 0).is_ok());
        assert!(Deal::propose(&cowsay, &allowing(&["cowsay:v9"]), 0).is_err());
    }
}
