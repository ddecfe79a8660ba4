//! Limits at the solver's edge, so that one misbehaving client cannot starve the others:
//! requests per client IP (checked before anything else is read) and per signing address
//! (checked once a signature is verified, so nobody can spend another's budget), each a
//! token bucket answered with 429 and `Retry-After` when empty; and open WebSocket clients,
//! in all and per IP, answered with 503 and `Retry-After` past the cap. Unmatched job offers
//! per job creator are capped by the store (MAX_OPEN_JOB_OFFERS).
//!
//! Behind a reverse proxy every request comes from the proxy's address: with
//! `TRUSTED_PROXY_HOPS=N` the client is the address the Nth proxy from us saw, read from
//! `X-Forwarded-For` (whose last N entries those proxies wrote; what a client put before
//! them is not believed).

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ethers::types::Address;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use warp::http::HeaderMap;

/// The limits' settings (0 turns a limit off).
#[derive(Debug, Clone)]
pub struct LimitSettings {
    /// Requests per second per client IP (RATE_LIMIT_PER_IP); bursts of twice that.
    pub per_ip: u32,
    /// Signed requests per second per address (RATE_LIMIT_PER_ADDRESS); bursts of twice that.
    pub per_address: u32,
    /// Open WebSocket clients in all (MAX_WS_CLIENTS).
    pub ws_clients: usize,
    /// Open WebSocket clients per IP (MAX_WS_CLIENTS_PER_IP).
    pub ws_clients_per_ip: usize,
    /// Proxies in front of the solver whose X-Forwarded-For entries are believed.
    pub trusted_proxy_hops: usize,
}

/// A request over a limit: how long to wait before trying again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limited {
    pub message: String,
    pub retry_after: u64,
}

struct Bucket<K: Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K>,
}

impl<K: Hash + Eq + Clone> Bucket<K> {
    fn new(per_second: u32) -> Option<Bucket<K>> {
        let rate = NonZeroU32::new(per_second)?;
        let burst = NonZeroU32::new(per_second.saturating_mul(2)).unwrap_or(rate);
        Some(Bucket {
            limiter: RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
        })
    }

    /// Ok, or the seconds until the key may send again (at least 1).
    fn check(&self, key: &K) -> Result<(), u64> {
        self.limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
        })
    }

    fn forget_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

/// The solver's limits and the WebSocket clients open now.
pub struct Limits {
    settings: LimitSettings,
    per_ip: Option<Bucket<IpAddr>>,
    per_address: Option<Bucket<Address>>,
    ws: Mutex<HashMap<IpAddr, usize>>,
}

/// An open WebSocket client, counted until dropped.
pub struct WsClient {
    limits: Arc<Limits>,
    ip: IpAddr,
}

impl std::fmt::Debug for WsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WsClient({})", self.ip)
    }
}

impl Drop for WsClient {
    fn drop(&mut self) {
        let mut open = self.limits.ws.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// How long a refused WebSocket client is told to wait.
const WS_RETRY_AFTER_SECS: u64 = 5;

impl Limits {
    pub fn new(settings: LimitSettings) -> Limits {
        Limits {
            per_ip: Bucket::new(settings.per_ip),
            per_address: Bucket::new(settings.per_address),
            settings,
            ws: Mutex::new(HashMap::new()),
        }
    }

    /// The client's address: the peer, or behind trusted proxies the address the farthest
    /// trusted proxy saw (from X-Forwarded-For).
    pub fn client_ip(&self, peer: Option<SocketAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        client_ip(self.settings.trusted_proxy_hops, peer, headers)
    }

    /// Counts a request from `ip`.
    pub fn check_ip(&self, ip: Option<IpAddr>) -> Result<(), Limited> {
        let (Some(bucket), Some(ip)) = (&self.per_ip, ip) else {
            return Ok(());
        };
        bucket.check(&ip).map_err(|retry_after| Limited {
            message: format!(
                "too many requests from {ip}: this solver takes {} a second from one address (RATE_LIMIT_PER_IP); retry in {retry_after} s",
                self.settings.per_ip
            ),
            retry_after,
        })
    }

    /// Counts a signed request from `signer`.
    pub fn check_address(&self, signer: Address) -> Result<(), Limited> {
        let Some(bucket) = &self.per_address else {
            return Ok(());
        };
        bucket.check(&signer).map_err(|retry_after| Limited {
            message: format!(
                "too many requests signed by {signer:?}: this solver takes {} a second from one key (RATE_LIMIT_PER_ADDRESS); retry in {retry_after} s",
                self.settings.per_address
            ),
            retry_after,
        })
    }

    /// Admits one more WebSocket client from `ip`, or says why not.
    pub fn open_ws(self: &Arc<Self>, ip: Option<IpAddr>) -> Result<WsClient, Limited> {
        let ip = ip.unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let mut open = self.ws.lock().unwrap_or_else(|e| e.into_inner());
        let total: usize = open.values().sum();
        let from_ip = open.get(&ip).copied().unwrap_or(0);
        let cap = self.settings.ws_clients;
        let cap_per_ip = self.settings.ws_clients_per_ip;
        if cap > 0 && total >= cap {
            return Err(Limited {
                message: format!("this solver has its most open event streams ({cap}, MAX_WS_CLIENTS); retry later"),
                retry_after: WS_RETRY_AFTER_SECS,
            });
        }
        if cap_per_ip > 0 && from_ip >= cap_per_ip {
            return Err(Limited {
                message: format!("{ip} has {from_ip} event streams open, the most this solver allows one address (MAX_WS_CLIENTS_PER_IP)"),
                retry_after: WS_RETRY_AFTER_SECS,
            });
        }
        *open.entry(ip).or_default() += 1;
        Ok(WsClient {
            limits: self.clone(),
            ip,
        })
    }

    /// Forgets buckets that are full again (idle clients), keeping memory bounded.
    pub fn forget_idle(&self) {
        if let Some(bucket) = &self.per_ip {
            bucket.forget_idle();
        }
        if let Some(bucket) = &self.per_address {
            bucket.forget_idle();
        }
    }
}

/// A client's address: the peer, or behind `trusted_proxy_hops` proxies the address the
/// farthest of them saw (from X-Forwarded-For). A request with fewer forwarded entries than
/// proxies did not come through them all, so its peer is taken.
pub fn client_ip(
    trusted_proxy_hops: usize,
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
) -> Option<IpAddr> {
    let peer = peer.map(|peer| peer.ip());
    if trusted_proxy_hops == 0 {
        return peer;
    }
    let forwarded: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .collect();
    if forwarded.len() < trusted_proxy_hops {
        return peer;
    }
    forwarded[forwarded.len() - trusted_proxy_hops]
        .parse()
        .ok()
        .or(peer)
}

/// Forgets idle buckets every minute until `shutdown`.
pub fn spawn_cleanup(limits: Arc<Limits>, shutdown: tokio_util::sync::CancellationToken) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(60));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = every.tick() => limits.forget_idle(),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_ip: u32, per_address: u32, hops: usize) -> Arc<Limits> {
        Arc::new(Limits::new(LimitSettings {
            per_ip,
            per_address,
            ws_clients: 3,
            ws_clients_per_ip: 2,
            trusted_proxy_hops: hops,
        }))
    }

    #[test]
    fn a_bucket_takes_a_burst_of_twice_the_rate_then_says_when_to_retry() {
        let limits = limits(5, 0, 0);
        let ip = Some(IpAddr::from([10, 0, 0, 1]));
        for _ in 0..10 {
            limits.check_ip(ip).unwrap();
        }
        let refused = limits.check_ip(ip).unwrap_err();
        assert_eq!(refused.retry_after, 1);
        assert!(refused.message.contains("RATE_LIMIT_PER_IP"), "{refused:?}");
        // Another client is not affected, and 0 turns a limit off.
        limits.check_ip(Some(IpAddr::from([10, 0, 0, 2]))).unwrap();
        for _ in 0..1000 {
            limits.check_address(Address::repeat_byte(1)).unwrap();
        }
    }

    #[test]
    fn the_client_is_whom_the_farthest_trusted_proxy_saw() {
        let peer: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "6.6.6.6, 203.0.113.7".parse().unwrap());
        assert_eq!(
            limits(1, 1, 0).client_ip(Some(peer), &headers),
            Some(peer.ip())
        );
        // One proxy (nginx): it appended the address it saw; the client's own claim is ignored.
        assert_eq!(
            limits(1, 1, 1).client_ip(Some(peer), &headers),
            "203.0.113.7".parse().ok()
        );
        assert_eq!(
            limits(1, 1, 2).client_ip(Some(peer), &headers),
            "6.6.6.6".parse().ok()
        );
        assert_eq!(
            limits(1, 1, 3).client_ip(Some(peer), &headers),
            Some(peer.ip())
        );
    }

    #[test]
    fn websocket_clients_are_capped_in_all_and_per_ip_and_freed_on_drop() {
        let limits = limits(0, 0, 0);
        let a = Some(IpAddr::from([10, 0, 0, 1]));
        let b = Some(IpAddr::from([10, 0, 0, 2]));
        let first = limits.open_ws(a).unwrap();
        let _second = limits.open_ws(a).unwrap();
        let refused = limits.open_ws(a).unwrap_err();
        assert!(
            refused.message.contains("MAX_WS_CLIENTS_PER_IP"),
            "{refused:?}"
        );
        let _third = limits.open_ws(b).unwrap();
        let full = limits.open_ws(b).unwrap_err();
        assert!(full.message.contains("MAX_WS_CLIENTS)"), "{full:?}");
        drop(first);
        limits.open_ws(b).unwrap();
    }
}
