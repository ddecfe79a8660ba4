//! Results on IPFS through a kubo daemon's RPC API (`IPFS_CONNECT`, with
//! `ipfs-api-backend-hyper`). The resource provider adds and pins its results tar; job
//! creators and mediators fetch it by CID. The CID is the results id committed on chain
//! (`crate::data::ids::file_cid_of` computes the same one without a daemon), so `ipfs get CID`
//! on any node returns the results, and what came from IPFS is checked like what came from
//! the solver.

use std::io::Cursor;
use std::time::Duration;

use futures::TryStreamExt;
use ipfs_api_backend_hyper::{request, IpfsApi, IpfsClient, TryFromUri};

/// How long one IPFS call may take before the caller falls back to the solver's relay.
pub const IPFS_TIMEOUT: Duration = Duration::from_secs(30);

/// Why IPFS could not be used.
#[derive(Debug, thiserror::Error)]
pub enum IpfsError {
    #[error("IPFS_CONNECT {0:?} is neither a multiaddr (/ip4/127.0.0.1/tcp/5001) nor a URL")]
    Address(String),
    #[error("IPFS at {api}: {what}: {message}")]
    Call {
        api: String,
        what: String,
        message: String,
    },
    #[error("IPFS at {api} named the results {theirs}, but they are {ours}: its import settings differ from kubo's defaults")]
    OtherCid {
        api: String,
        ours: String,
        theirs: String,
    },
    #[error("IPFS at {api} returned more than {limit} bytes for {cid}")]
    TooLarge {
        api: String,
        cid: String,
        limit: usize,
    },
}

/// A kubo daemon's RPC API.
#[derive(Clone)]
pub struct Ipfs {
    client: IpfsClient,
    api: String,
}

impl std::fmt::Debug for Ipfs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ipfs({})", self.api)
    }
}

impl Ipfs {
    /// The daemon at `api`: a multiaddr (`/ip4/127.0.0.1/tcp/5001`, as kubo writes it) or a
    /// URL (`http://127.0.0.1:5001`). Nothing is sent yet.
    pub fn new(api: &str) -> Result<Ipfs, IpfsError> {
        let client =
            IpfsClient::from_multiaddr_str(api).map_err(|_| IpfsError::Address(api.to_string()))?;
        Ok(Ipfs {
            client,
            api: api.to_string(),
        })
    }

    /// Where the daemon is, as configured.
    pub fn api(&self) -> &str {
        &self.api
    }

    fn call_error(&self, what: &str, message: impl ToString) -> IpfsError {
        IpfsError::Call {
            api: self.api.clone(),
            what: what.to_string(),
            message: message.to_string(),
        }
    }

    /// Adds and pins `tar`, which the caller named `cid`; fails if the daemon names it
    /// otherwise (then `ipfs get` of the committed id would not find these bytes).
    pub async fn add(&self, tar: Vec<u8>, cid: &str) -> Result<(), IpfsError> {
        let options = request::Add {
            pin: Some(true),
            cid_version: Some(0),
            raw_leaves: Some(false),
            ..Default::default()
        };
        let added = tokio::time::timeout(
            IPFS_TIMEOUT,
            self.client.add_with_options(Cursor::new(tar), options),
        )
        .await
        .map_err(|_| self.call_error("add the results", "no answer in time"))?
        .map_err(|e| self.call_error("add the results", e))?;
        if added.hash != cid {
            return Err(IpfsError::OtherCid {
                api: self.api.clone(),
                ours: cid.to_string(),
                theirs: added.hash,
            });
        }
        Ok(())
    }

    /// The bytes of the file `cid`, at most `limit` of them.
    pub async fn cat(&self, cid: &str, limit: usize) -> Result<Vec<u8>, IpfsError> {
        self.read_capped(self.client.cat(cid), cid, limit).await
    }

    /// `cid` (a file or a directory) as the tar `ipfs get` makes: one top entry named after
    /// the CID. At most `limit` bytes.
    pub async fn get_tar(&self, cid: &str, limit: usize) -> Result<Vec<u8>, IpfsError> {
        self.read_capped(self.client.get(cid), cid, limit).await
    }

    async fn read_capped<S, E>(
        &self,
        mut stream: S,
        cid: &str,
        limit: usize,
    ) -> Result<Vec<u8>, IpfsError>
    where
        S: futures::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let read = async {
            let mut bytes = Vec::new();
            while let Some(chunk) = stream
                .try_next()
                .await
                .map_err(|e| self.call_error(&format!("read {cid}"), e))?
            {
                if bytes.len() + chunk.len() > limit {
                    return Err(IpfsError::TooLarge {
                        api: self.api.clone(),
                        cid: cid.to_string(),
                        limit,
                    });
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(bytes)
        };
        tokio::time::timeout(IPFS_TIMEOUT, read)
            .await
            .map_err(|_| self.call_error(&format!("read {cid}"), "no answer in time"))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_a_multiaddr_or_a_url() {
        assert!(Ipfs::new("/ip4/127.0.0.1/tcp/5001").is_ok());
        assert!(Ipfs::new("http://127.0.0.1:5001").is_ok());
        let error = Ipfs::new("not an address").unwrap_err();
        assert!(error.to_string().contains("IPFS_CONNECT"), "{error}");
    }
}
