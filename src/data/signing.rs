//! Signed requests to the solver. A request that writes, or reads private data, carries
//! `X-Lilypad-Address`, `X-Lilypad-Timestamp` (unix seconds) and `X-Lilypad-Signature`:
//! an EIP-191 signature over [`message`] (method, path and query, timestamp, sha-256 of the
//! body). The solver checks the signer, the clock (±60 s) and that no signature is used twice,
//! judged on the signature's canonical value ([`Verified::canonical`]): re-encoding a
//! signature (hex case, `0x` or not, `v` as 0/1 or 27/28, or the malleable twin with `s`
//! replaced by `n - s`) does not make it a new one.

use ethers::signers::{LocalWallet, Signer};
use ethers::types::{Address, Signature, U256};
use ethers::utils::hash_message;
use sha2::{Digest, Sha256};

pub const ADDRESS_HEADER: &str = "x-lilypad-address";
pub const TIMESTAMP_HEADER: &str = "x-lilypad-timestamp";
pub const SIGNATURE_HEADER: &str = "x-lilypad-signature";

/// How far a request's timestamp may be from the solver's clock, in seconds.
pub const MAX_SKEW_SECS: u64 = 60;

/// The three headers of a signed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    pub address: Address,
    pub timestamp: u64,
    /// 65-byte signature, hex with 0x.
    pub signature: String,
}

/// Why a signed request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing {0} header: this request must be signed (see the API docs)")]
    Missing(&'static str),
    #[error("malformed {0} header")]
    Malformed(&'static str),
    #[error("timestamp {timestamp} is more than {MAX_SKEW_SECS} s from the solver's clock ({now}); check your clock")]
    Stale { timestamp: u64, now: u64 },
    #[error("signature is not by {0:?}")]
    WrongSigner(Address),
    #[error("this signature was already used: requests cannot be replayed")]
    Replayed,
    #[error("{signer:?} is not {role} of this {what}")]
    NotTheParty {
        signer: Address,
        role: &'static str,
        what: &'static str,
    },
}

/// The text that is signed.
pub fn message(method: &str, path_and_query: &str, timestamp: u64, body: &[u8]) -> String {
    format!(
        "lilypad request\n{}\n{}\n{}\n{}",
        method.to_ascii_uppercase(),
        path_and_query,
        timestamp,
        hex::encode(Sha256::digest(body))
    )
}

/// Signs a request with `wallet` at `timestamp`.
pub fn sign(
    wallet: &LocalWallet,
    method: &str,
    path_and_query: &str,
    timestamp: u64,
    body: &[u8],
) -> SignedHeaders {
    let text = message(method, path_and_query, timestamp, body);
    let hash = hash_message(text.as_bytes());
    // Signing a 32-byte hash with a valid secp256k1 key does not fail.
    let signature = wallet.sign_hash(hash).expect("sign a 32-byte hash");
    SignedHeaders {
        address: wallet.address(),
        timestamp,
        signature: format!("0x{signature}"),
    }
}

/// The order of secp256k1's group: `s` and `n - s` make the same signature.
const SECP256K1_N: [u64; 4] = [
    0xBFD2_5E8C_D036_4141,
    0xBAAE_DCE6_AF48_A03B,
    0xFFFF_FFFF_FFFF_FFFE,
    0xFFFF_FFFF_FFFF_FFFF,
];

/// A signature that checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub signer: Address,
    /// The signature's value whatever its encoding: `r` and the low one of `s` and `n - s`,
    /// as 128 lowercase hex digits. Replays are judged on this.
    pub canonical: String,
}

/// Reads a 65-byte signature in any of its encodings and returns it in the one form that
/// recovers: `s` in the lower half of the group, `v` 27 or 28.
pub fn normalize(text: &str) -> Result<Signature, AuthError> {
    let malformed = AuthError::Malformed(SIGNATURE_HEADER);
    let hex_digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    let bytes = hex::decode(hex_digits).map_err(|_| malformed.clone())?;
    let [signature @ .., v] = bytes.as_slice() else {
        return Err(malformed);
    };
    if signature.len() != 64 {
        return Err(malformed);
    }
    let mut parity = match v {
        0 | 27 => 0u64,
        1 | 28 => 1,
        _ => return Err(malformed),
    };
    let r = U256::from_big_endian(&signature[..32]);
    let mut s = U256::from_big_endian(&signature[32..]);
    let n = U256(SECP256K1_N);
    if r.is_zero() || r >= n || s.is_zero() || s >= n {
        return Err(malformed);
    }
    if s > n / 2 {
        s = n - s;
        parity ^= 1;
    }
    Ok(Signature {
        r,
        s,
        v: 27 + parity,
    })
}

/// Checks a signed request's signature and clock; returns the signer and the signature's
/// canonical value. (Replays are checked by the solver, which remembers canonical values.)
pub fn verify(
    headers: &SignedHeaders,
    method: &str,
    path_and_query: &str,
    body: &[u8],
    now: u64,
) -> Result<Verified, AuthError> {
    if headers.timestamp.abs_diff(now) > MAX_SKEW_SECS {
        return Err(AuthError::Stale {
            timestamp: headers.timestamp,
            now,
        });
    }
    let signature = normalize(&headers.signature)?;
    let text = message(method, path_and_query, headers.timestamp, body);
    match signature.recover(text.as_bytes()) {
        Ok(signer) if signer == headers.address => Ok(Verified {
            signer,
            canonical: format!("{:064x}{:064x}", signature.r, signature.s),
        }),
        _ => Err(AuthError::WrongSigner(headers.address)),
    }
}

/// Parses the three headers (values as sent).
pub fn parse_headers(
    address: Option<&str>,
    timestamp: Option<&str>,
    signature: Option<&str>,
) -> Result<SignedHeaders, AuthError> {
    let address = address.ok_or(AuthError::Missing(ADDRESS_HEADER))?;
    let timestamp = timestamp.ok_or(AuthError::Missing(TIMESTAMP_HEADER))?;
    let signature = signature.ok_or(AuthError::Missing(SIGNATURE_HEADER))?;
    Ok(SignedHeaders {
        address: address
            .parse()
            .map_err(|_| AuthError::Malformed(ADDRESS_HEADER))?,
        timestamp: timestamp
            .parse()
            .map_err(|_| AuthError::Malformed(TIMESTAMP_HEADER))?,
        signature: signature.to_string(),
    })
}

/// Unix seconds now.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wallet() -> LocalWallet {
        LocalWallet::new(&mut rand::thread_rng())
    }

    #[test]
    fn a_signed_request_verifies_as_its_signer() {
        let wallet = wallet();
        let headers = sign(&wallet, "post", "/api/v1/job_offers?x=1", 1000, b"{}");
        assert_eq!(
            verify(&headers, "POST", "/api/v1/job_offers?x=1", b"{}", 1010).map(|v| v.signer),
            Ok(wallet.address())
        );
    }

    /// Every re-encoding of one signature: hex case, with and without 0x, v as 0/1 or
    /// 27/28, and the malleable twin (s -> n - s with v's parity flipped).
    fn encodings(signature: &str) -> Vec<String> {
        let bytes = hex::decode(signature.trim_start_matches("0x")).unwrap();
        let (rs, v) = bytes.split_at(64);
        let parity = (v[0] - 27) % 2;
        let n = U256(SECP256K1_N);
        let s = U256::from_big_endian(&rs[32..]);
        let mut twin = rs[..32].to_vec();
        twin.extend_from_slice(&<[u8; 32]>::from(n - s));
        let text = hex::encode(rs);
        vec![
            signature.to_string(),
            signature.trim_start_matches("0x").to_string(),
            format!("0x{}", hex::encode(&bytes).to_uppercase()),
            format!("0X{text}{:02x}", parity),
            format!("{}{:02x}", text.to_uppercase(), 27 + parity),
            format!("0x{}{:02x}", hex::encode(&twin), 28 - parity),
            format!("{}{:02x}", hex::encode(&twin), 1 - parity),
        ]
    }

    #[test]
    fn every_encoding_of_a_signature_is_the_same_signature() {
        let wallet = wallet();
        for timestamp in 1000..1020 {
            let headers = sign(&wallet, "POST", "/a", timestamp, b"x");
            let original = verify(&headers, "POST", "/a", b"x", timestamp).unwrap();
            for encoded in encodings(&headers.signature) {
                let again = SignedHeaders {
                    signature: encoded.clone(),
                    ..headers.clone()
                };
                assert_eq!(
                    verify(&again, "POST", "/a", b"x", timestamp),
                    Ok(original.clone()),
                    "{encoded}"
                );
            }
        }
    }

    #[test]
    fn signatures_out_of_range_are_malformed() {
        let headers = sign(&wallet(), "GET", "/a", 1000, b"");
        let bytes = hex::decode(headers.signature.trim_start_matches("0x")).unwrap();
        let n = <[u8; 32]>::from(U256(SECP256K1_N));
        let zero = [0u8; 32];
        let (r, s) = (&bytes[..32], &bytes[32..64]);
        for (r, s, v) in [
            (&n[..], s, 27u8),
            (r, &n[..], 27),
            (&zero[..], s, 27),
            (r, &zero[..], 27),
            (r, s, 29),
            (r, s, 2),
        ] {
            let text = format!("0x{}{}{:02x}", hex::encode(r), hex::encode(s), v);
            assert_eq!(
                normalize(&text),
                Err(AuthError::Malformed(SIGNATURE_HEADER)),
                "{text}"
            );
        }
        assert!(normalize("0x1234").is_err());
        assert!(normalize("zz").is_err());
    }

    #[test]
    fn any_change_breaks_the_signature() {
        let wallet = wallet();
        let headers = sign(&wallet, "POST", "/a", 1000, b"body");
        let wrong = Err(AuthError::WrongSigner(wallet.address()));
        assert_eq!(verify(&headers, "PUT", "/a", b"body", 1000), wrong);
        assert_eq!(verify(&headers, "POST", "/b", b"body", 1000), wrong);
        assert_eq!(verify(&headers, "POST", "/a", b"bodY", 1000), wrong);
        let shifted = SignedHeaders {
            timestamp: 1001,
            ..headers.clone()
        };
        assert_eq!(verify(&shifted, "POST", "/a", b"body", 1000), wrong);
        let other = SignedHeaders {
            address: self::wallet().address(),
            ..headers
        };
        assert_eq!(
            verify(&other, "POST", "/a", b"body", 1000),
            Err(AuthError::WrongSigner(other.address))
        );
    }

    #[test]
    fn stale_and_future_timestamps_are_refused() {
        let headers = sign(&wallet(), "GET", "/a", 1000, b"");
        assert!(verify(&headers, "GET", "/a", b"", 1060).is_ok());
        assert_eq!(
            verify(&headers, "GET", "/a", b"", 1061),
            Err(AuthError::Stale {
                timestamp: 1000,
                now: 1061
            })
        );
        assert_eq!(
            verify(&headers, "GET", "/a", b"", 939),
            Err(AuthError::Stale {
                timestamp: 1000,
                now: 939
            })
        );
    }

    #[test]
    fn malformed_headers_are_errors() {
        assert_eq!(
            parse_headers(None, Some("1"), Some("0x")),
            Err(AuthError::Missing(ADDRESS_HEADER))
        );
        assert_eq!(
            parse_headers(Some("zz"), Some("1"), Some("0x")),
            Err(AuthError::Malformed(ADDRESS_HEADER))
        );
        let headers = SignedHeaders {
            address: Address::zero(),
            timestamp: 5,
            signature: "0x1234".into(),
        };
        assert_eq!(
            verify(&headers, "GET", "/", b"", 5),
            Err(AuthError::Malformed(SIGNATURE_HEADER))
        );
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]
            #[test]
            fn a_signature_verifies_exactly_its_request(
                method in "(GET|POST)",
                path in "/[a-z_/]{0,30}(\\?[a-z=&0-9]{0,20})?",
                timestamp in 1_000u64..2_000_000_000,
                body in prop::collection::vec(any::<u8>(), 0..200),
                flip in any::<usize>(),
            ) {
                let wallet = LocalWallet::new(&mut rand::thread_rng());
                let headers = sign(&wallet, &method, &path, timestamp, &body);
                prop_assert_eq!(verify(&headers, &method, &path, &body, timestamp).map(|v| v.signer), Ok(wallet.address()));
                if !body.is_empty() {
                    let mut altered = body.clone();
                    altered[flip % body.len()] ^= 1;
                    prop_assert!(verify(&headers, &method, &path, &altered, timestamp).is_err());
                }
            }
        }
    }
}
