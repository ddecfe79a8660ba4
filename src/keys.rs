//! Key files: `lilypad keys generate` writes a new secp256k1 key as hex to a file only its
//! owner can read; roles read keys from WEB3_PRIVATE_KEY or such a file, never from flags.

use std::io::Write;
use std::path::Path;

use ethers::signers::{LocalWallet, Signer};

/// Writes `wallet`'s key to `path` (mode 0600), refusing to overwrite an existing file.
pub fn write_key(path: &Path, wallet: &LocalWallet) -> std::io::Result<()> {
    write_secret(path, &format!("0x{}\n", hex_key(wallet)))
}

/// `wallet`'s private key as bare hex (no 0x), as some tools (geth) read it.
pub fn hex_key(wallet: &LocalWallet) -> String {
    hex::encode(wallet.signer().to_bytes())
}

/// Writes `contents` to a new file at `path` that only its owner can read (mode 0600),
/// refusing to overwrite an existing file.
pub fn write_secret(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents.as_bytes())
}

/// A new random key.
pub fn generate() -> LocalWallet {
    LocalWallet::new(&mut rand::thread_rng())
}

/// The services of a network, each with a key of its own, as `generate-addresses` names them.
pub const SERVICES: [&str; 6] = [
    "ADMIN",
    "FAUCET",
    "SOLVER",
    "MEDIATOR",
    "RESOURCE_PROVIDER",
    "JOB_CREATOR",
];

/// A new key for each of [`SERVICES`].
pub fn generate_services() -> Vec<(&'static str, LocalWallet)> {
    SERVICES.iter().map(|name| (*name, generate())).collect()
}

/// An env file with `NAME_ADDRESS` and `NAME_PRIVATE_KEY` for each service.
pub fn services_env(services: &[(&str, LocalWallet)]) -> String {
    let mut out = String::from(
        "# A key per Lilypad service (`lilypad keys generate-addresses`). Secret: keep it 0600,\n\
         # fund the addresses, and give each service only its own key.\n",
    );
    for (name, wallet) in services {
        out.push_str(&format!(
            "{name}_ADDRESS={}\n{name}_PRIVATE_KEY=0x{}\n",
            address_of(wallet),
            hex_key(wallet)
        ));
    }
    out
}

/// The address of a wallet, checksummed.
pub fn address_of(wallet: &LocalWallet) -> String {
    ethers::utils::to_checksum(&wallet.address(), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_key_reads_back_and_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k/role.key");
        let wallet = generate();
        write_key(&path, &wallet).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            crate::config::parse_key(text.trim()).unwrap().address(),
            wallet.address()
        );
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(write_key(&path, &wallet).is_err(), "never overwrites a key");
    }
}
