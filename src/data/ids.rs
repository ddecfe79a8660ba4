//! Content identifiers: every offer and deal is named by a CIDv1 over the sha2-256 of its
//! bytes; a results tarball by the CID `ipfs add` gives for it (the root of its UnixFS DAG:
//! 256 KiB chunks, a balanced tree, CIDv0), so the id committed on chain is also where IPFS
//! finds the results. On chain a deal or a result is the bare 32-byte digest.

use cid::Cid;
use multihash::Multihash;
use sha2::{Digest, Sha256};

/// Multicodec of canonical-JSON documents (offers, deals).
pub const JSON_CODEC: u64 = 0x0200;
/// Multicodec of opaque bytes (results tarballs).
pub const RAW_CODEC: u64 = 0x55;
/// Multihash code of sha2-256.
const SHA2_256: u64 = 0x12;

/// Why a string is not an id this network can use.
#[derive(Debug, thiserror::Error)]
pub enum IdError {
    #[error("{0:?} is not a CID: {1}")]
    Parse(String, cid::Error),
    #[error("CID {0} does not use sha2-256, so it has no on-chain form")]
    NotSha256(String),
}

/// The CIDv1 (base32 text) of `bytes` under `codec`.
pub fn cid_of(codec: u64, bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    // A 32-byte digest always fits a 64-byte multihash.
    let hash = Multihash::<64>::wrap(SHA2_256, &digest).expect("32 bytes fit in 64");
    Cid::new_v1(codec, hash).to_string()
}

/// The sha2-256 digest inside a CID: the id the contracts store.
pub fn digest_of(cid_text: &str) -> Result<[u8; 32], IdError> {
    let cid = Cid::try_from(cid_text).map_err(|e| IdError::Parse(cid_text.to_string(), e))?;
    let hash = cid.hash();
    if hash.code() != SHA2_256 || hash.digest().len() != 32 {
        return Err(IdError::NotSha256(cid_text.to_string()));
    }
    let mut digest = [0u8; 32];
    digest.copy_from_slice(hash.digest());
    Ok(digest)
}

/// The CID `ipfs add` (kubo's defaults) gives for a file holding `bytes`: the root of its
/// UnixFS DAG (256 KiB chunks, balanced, up to 174 links a node, dag-pb nodes, CIDv0).
pub fn file_cid_of(bytes: &[u8]) -> String {
    let mut adder = rust_unixfs::file::adder::FileAdder::builder()
        .with_cid_version(cid::Version::V0)
        .with_raw_leaves(false)
        .build();
    // Only the root's CID is wanted: blocks are dropped as they are made, so the DAG of a
    // large tar is never held in memory beside the tar itself. The root is the last block
    // made, by `finish` or (a file of exactly one chunk) by the last `push`.
    let mut last = None;
    let mut offset = 0;
    while offset < bytes.len() {
        let (made, consumed) = adder.push(&bytes[offset..]);
        last = made.last().map(|(cid, _)| cid).or(last);
        offset += consumed;
    }
    adder
        .finish()
        .last()
        .map(|(cid, _)| cid)
        .or(last)
        .map(|cid| cid.to_string())
        .expect("a file always has a root block")
}

/// The results CID whose digest is `digest` (how a results id read from chain is shown and
/// fetched): a UnixFS root, so dag-pb, in the CIDv0 form `ipfs add` prints.
pub fn results_cid_from_digest(digest: [u8; 32]) -> String {
    let hash = Multihash::<64>::wrap(SHA2_256, &digest).expect("32 bytes fit in 64");
    Cid::new_v0(hash)
        .expect("a sha2-256 multihash makes a CIDv0")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cid_round_trips_to_its_digest() {
        let cid = cid_of(RAW_CODEC, b"hello");
        assert!(cid.starts_with('b'), "CIDv1 in base32: {cid}");
        let digest = digest_of(&cid).unwrap();
        assert_eq!(digest.as_slice(), Sha256::digest(b"hello").as_slice());
        let results = file_cid_of(b"hello");
        assert!(results.starts_with("Qm"), "CIDv0: {results}");
        assert_eq!(
            results_cid_from_digest(digest_of(&results).unwrap()),
            results
        );
    }

    #[test]
    fn codecs_give_different_cids_for_the_same_bytes() {
        assert_ne!(cid_of(RAW_CODEC, b"x"), cid_of(JSON_CODEC, b"x"));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(matches!(digest_of("not-a-cid"), Err(IdError::Parse(..))));
        assert!(matches!(digest_of(""), Err(IdError::Parse(..))));
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;
        use crate::data::examples;
        use crate::data::{ContentAddressed, JobOffer};

        proptest! {
            #[test]
            fn a_digest_and_its_cid_round_trip(digest in any::<[u8; 32]>()) {
                let cid = results_cid_from_digest(digest);
                prop_assert_eq!(digest_of(&cid).unwrap(), digest);
            }

            #[test]
            fn an_offer_id_survives_the_wire_and_breaks_on_any_change(
                created_at in any::<u64>(),
                price in any::<u128>(),
                cpu in any::<u64>(),
                message in ".{0,40}",
            ) {
                let mut offer = examples::job_offer(created_at, price, cpu);
                offer.inputs.insert("Message".into(), message);
                let offer = offer.seal();
                let wire = serde_json::to_string(&offer).unwrap();
                let back: JobOffer = serde_json::from_str(&wire).unwrap();
                prop_assert!(back.id_is_valid());
                prop_assert_eq!(&back, &offer);
                let mut changed = back.clone();
                changed.spec.cpu = cpu.wrapping_add(1);
                prop_assert!(!changed.id_is_valid());
            }
        }
    }
}
