//! Signed requests to the solver. A request that writes, or reads private data, carries
//! `X-Lilypad-Address`, `X-Lilypad-Timestamp` (unix seconds) and `X-Lilypad-Signature`:
//! an EIP-191 signature over [`message`] (method, path and query, timestamp, sha-256 of the
//! body). The solver checks the signer, the clock (±60 s) and that no signature is used twice.

use ethers::signers::{LocalWallet, Signer};
use ethers::types::{Address, Signature};
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
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
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

/// Checks a signed request's signature and clock; returns the signer.
/// (Replays are checked by the solver, which remembers signatures.)
pub fn verify(
    headers: &SignedHeaders,
    method: &str,
    path_and_query: &str,
    body: &[u8],
    now: u64,
) -> Result<Address, AuthError> {
    if headers.timestamp.abs_diff(now) > MAX_SKEW_SECS {
        return Err(AuthError::Stale {
            timestamp: headers.timestamp,
            now,
        });
    }
    let signature: Signature = headers
        .signature
        .trim_start_matches("0x")
        .parse()
        .map_err(|_| AuthError::Malformed(SIGNATURE_HEADER))?;
    let text = message(method, path_and_query, headers.timestamp, body);
    match signature.recover(text.as_bytes()) {
        Ok(signer) if signer == headers.address => Ok(signer),
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
            verify(&headers, "POST", "/api/v1/job_offers?x=1", b"{}", 1010),
            Ok(wallet.address())
        );
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
                prop_assert_eq!(verify(&headers, &method, &path, &body, timestamp), Ok(wallet.address()));
                if !body.is_empty() {
                    let mut altered = body.clone();
                    altered[flip % body.len()] ^= 1;
                    prop_assert!(verify(&headers, &method, &path, &altered, timestamp).is_err());
                }
            }
        }
    }
}
