//! The committed contract artifacts the node is built on: present, well formed, and
//! numbering deal states exactly as the Rust side does.

use std::path::{Path, PathBuf};

use lilypad::data::DealState;

fn contracts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("contracts")
}

const ARTIFACTS: [&str; 8] = [
    "LilypadToken",
    "LilypadUsers",
    "LilypadStorage",
    "LilypadPayments",
    "LilypadMediation",
    "LilypadOnChainJobCreator",
    "LilypadController",
    "ExampleClient",
];

#[test]
fn every_artifact_has_an_abi_and_bytecode() {
    for name in ARTIFACTS {
        let path = contracts_dir().join("out").join(format!("{name}.json"));
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let artifact: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let abi = artifact["abi"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: no abi array"));
        assert!(
            abi.iter().any(|item| item["type"] == "function"),
            "{name}: abi has no functions"
        );
        let bytecode = artifact["bytecode"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no bytecode"));
        let hex = bytecode
            .strip_prefix("0x")
            .unwrap_or_else(|| panic!("{name}: bytecode lacks 0x"));
        assert!(
            hex.len() > 100 && hex.len().is_multiple_of(2),
            "{name}: bytecode too short or odd"
        );
        assert!(
            hex.bytes().all(|b| b.is_ascii_hexdigit()),
            "{name}: bytecode is not hex"
        );
    }
}

#[test]
fn rust_deal_states_match_the_solidity_enum() {
    let types = std::fs::read_to_string(contracts_dir().join("src/Types.sol")).expect("Types.sol");
    let body = types
        .split("enum DealState {")
        .nth(1)
        .and_then(|rest| rest.split('}').next())
        .expect("enum DealState in Types.sol");
    let names: Vec<&str> = body
        .lines()
        .map(|line| {
            line.split("//")
                .next()
                .unwrap_or("")
                .trim()
                .trim_end_matches(',')
        })
        .filter(|name| !name.is_empty())
        .collect();
    let rust: Vec<&str> = DealState::ALL.iter().map(|state| state.name()).collect();
    assert_eq!(
        names, rust,
        "DealState differs between Types.sol and src/data/state.rs"
    );
}
