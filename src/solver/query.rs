//! Query strings of the solver's API, checked against what each endpoint takes, so a bad
//! request gets an answer that names the parameter and what it accepts (warp's own typed
//! query filter only says "Invalid query string").

use ethers::types::Address;
use serde::de::DeserializeOwned;
use warp::{Filter, Rejection};

/// A query parameter an endpoint takes.
pub struct Param {
    pub name: &'static str,
    /// What it accepts, for people.
    pub accepts: &'static str,
    pub valid: fn(&str) -> bool,
}

const ADDRESS: &str = "an address (0x and 40 hex digits)";

fn is_address(value: &str) -> bool {
    value.parse::<Address>().is_ok()
}

fn is_number(value: &str) -> bool {
    value.parse::<u64>().is_ok()
}

fn is_state(value: &str) -> bool {
    value
        .parse::<u8>()
        .is_ok_and(|n| crate::data::DealState::try_from(n).is_ok())
}

fn is_key(value: &str) -> bool {
    let hex = value.strip_prefix("0x").unwrap_or(value);
    hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

fn anything(_: &str) -> bool {
    true
}

/// `GET /deals`.
pub const DEAL_FILTER: &[Param] = &[
    Param {
        name: "job_creator",
        accepts: ADDRESS,
        valid: is_address,
    },
    Param {
        name: "resource_provider",
        accepts: ADDRESS,
        valid: is_address,
    },
    Param {
        name: "mediator",
        accepts: ADDRESS,
        valid: is_address,
    },
    Param {
        name: "job_offer",
        accepts: "a job offer id",
        valid: anything,
    },
    Param {
        name: "state",
        accepts: "a deal state number, 0 (DealNegotiating) to 10 (TimeoutMediateResults)",
        valid: is_state,
    },
    Param {
        name: "deal_key",
        accepts: "a deal's on-chain key (0x and 64 hex digits)",
        valid: is_key,
    },
];

/// `GET /resource_offers`.
pub const OWNER: &[Param] = &[Param {
    name: "resource_provider",
    accepts: ADDRESS,
    valid: is_address,
}];

/// `/ws`.
pub const SINCE: &[Param] = &[Param {
    name: "since",
    accepts: "an event number (a whole number, 0 for every event)",
    valid: is_number,
}];

/// A query string that does not fit its endpoint; the message says how.
#[derive(Debug)]
pub struct BadQuery(pub String);

impl warp::reject::Reject for BadQuery {}

/// Checks `raw` against `params`, then reads it as `T`.
pub fn parse<T: DeserializeOwned>(raw: &str, params: &[Param]) -> Result<T, String> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(raw).map_err(|e| format!("malformed query string: {e}"))?;
    for (name, value) in &pairs {
        let Some(param) = params.iter().find(|param| param.name == name) else {
            let names: Vec<&str> = params.iter().map(|param| param.name).collect();
            return Err(format!(
                "unknown query parameter {name:?}; this endpoint takes {}",
                names.join(", ")
            ));
        };
        if !(param.valid)(value) {
            return Err(format!(
                "query parameter {name}={value:?}: {name} takes {}",
                param.accepts
            ));
        }
    }
    serde_urlencoded::from_str(raw).map_err(|e| format!("malformed query string: {e}"))
}

/// The query string as `T`, checked against `params`; rejects with [`BadQuery`].
pub fn query<T: DeserializeOwned + Send + 'static>(
    params: &'static [Param],
) -> impl Filter<Extract = (T,), Error = Rejection> + Clone {
    let raw = warp::query::raw().or(warp::any().map(String::new)).unify();
    raw.and_then(move |raw: String| async move {
        parse::<T>(&raw, params).map_err(|message| warp::reject::custom(BadQuery(message)))
    })
}

/// For `recover`: the message of a [`BadQuery`].
pub fn bad_query(rejection: &Rejection) -> Option<String> {
    rejection.find::<BadQuery>().map(|bad| bad.0.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::records::DealFilter;

    #[test]
    fn a_bad_parameter_is_named_with_what_it_accepts() {
        let filter: DealFilter = parse(
            "state=2&mediator=0x000000000000000000000000000000000000004d",
            DEAL_FILTER,
        )
        .unwrap();
        assert_eq!(filter.state, Some(2));
        let error = parse::<DealFilter>("state=eleven", DEAL_FILTER).unwrap_err();
        assert_eq!(
            error,
            "query parameter state=\"eleven\": state takes a deal state number, 0 (DealNegotiating) to 10 (TimeoutMediateResults)"
        );
        let error = parse::<DealFilter>("resource_provider=0x12", DEAL_FILTER).unwrap_err();
        assert!(
            error.contains("resource_provider takes an address"),
            "{error}"
        );
        let error = parse::<DealFilter>("resource_provder=0x12", DEAL_FILTER).unwrap_err();
        assert!(
            error.starts_with("unknown query parameter \"resource_provder\"; this endpoint takes job_creator, resource_provider"),
            "{error}"
        );
        assert!(parse::<DealFilter>("", DEAL_FILTER).is_ok());
    }
}
