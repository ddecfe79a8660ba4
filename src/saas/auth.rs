//! Who is calling the SaaS API: a browser with a session cookie (and, for anything that
//! changes state, the session's CSRF token in `X-CSRF-Token`), or a program with an API key
//! (`Authorization: Bearer lp-…`). Passwords are kept as argon2 hashes; session tokens and
//! API keys only as SHA-256 hashes, so a copy of the database lets nobody in.

use std::num::NonZeroU32;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use sha2::{Digest, Sha256};

/// The session cookie's name.
pub const COOKIE: &str = "lilypad_session";
/// How long a session lasts.
pub const SESSION_SECS: i64 = 7 * 24 * 3600;
/// What every API key starts with.
pub const KEY_PREFIX: &str = "lp-";

/// An argon2 hash of `password` (PHC string, salted).
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| e.to_string())
}

/// Whether `password` matches `hash`.
pub fn password_matches(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// 32 random bytes, hex.
pub fn token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// A new API key (`lp-` and 32 random bytes in hex).
pub fn new_api_key() -> String {
    format!("{KEY_PREFIX}{}", token())
}

/// What is stored for a token or key.
pub fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The `Set-Cookie` value starting a session (or, with an empty token, ending it).
pub fn session_cookie(token: &str) -> String {
    let max_age = if token.is_empty() { 0 } else { SESSION_SECS };
    format!("{COOKIE}={token}; Path=/; Max-Age={max_age}; HttpOnly; Secure; SameSite=Strict")
}

/// The session token in a `Cookie` header, if any.
pub fn cookie_token(header: Option<&str>) -> Option<String> {
    header?
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_string())
        .filter(|value| !value.is_empty())
}

/// Login attempts allowed per client IP and per email: 10 a minute.
pub struct LoginLimit {
    limiter: DefaultKeyedRateLimiter<String>,
}

impl Default for LoginLimit {
    fn default() -> Self {
        LoginLimit {
            limiter: RateLimiter::keyed(Quota::per_minute(
                NonZeroU32::new(10).expect("10 is not zero"),
            )),
        }
    }
}

impl LoginLimit {
    /// Counts an attempt for each key; the seconds to wait if any is over its limit.
    pub fn check(&self, keys: &[String]) -> Result<(), u64> {
        for key in keys {
            self.limiter.check_key(key).map_err(|not_until| {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                wait.as_secs().max(1)
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_keys_and_cookies() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2"));
        assert!(password_matches("correct horse", &hash));
        assert!(!password_matches("wrong horse", &hash));
        assert!(!password_matches("correct horse", "not a hash"));

        let key = new_api_key();
        assert!(key.starts_with("lp-") && key.len() == 3 + 64, "{key}");
        assert_ne!(key, new_api_key());
        assert_eq!(digest(&key).len(), 64);

        let cookie = session_cookie("abc");
        for part in [
            "lilypad_session=abc",
            "HttpOnly",
            "Secure",
            "SameSite=Strict",
        ] {
            assert!(cookie.contains(part), "{cookie}");
        }
        assert_eq!(
            cookie_token(Some("a=1; lilypad_session=tok; b=2")),
            Some("tok".into())
        );
        assert_eq!(cookie_token(Some("lilypad_session=")), None);
        assert_eq!(cookie_token(None), None);

        let limit = LoginLimit::default();
        for _ in 0..10 {
            assert!(limit.check(&["ip:1".into()]).is_ok());
        }
        assert!(limit.check(&["ip:1".into()]).unwrap_err() >= 1);
        assert!(limit.check(&["ip:2".into()]).is_ok());
    }
}
