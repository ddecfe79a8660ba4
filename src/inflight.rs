//! Which items (deals, job requests) a role has a task working on, so each item gets at most
//! one task at a time. A claim is released when it is dropped: when its task finishes, fails,
//! panics or is aborted.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// The ids being worked on.
#[derive(Clone, Default)]
pub struct InFlight(Arc<Mutex<HashSet<String>>>);

/// Holds an id for one task; dropping it frees the id.
pub struct Claim {
    set: InFlight,
    id: String,
}

impl InFlight {
    /// Claims `id`, unless a task already holds it.
    pub fn claim(&self, id: &str) -> Option<Claim> {
        let fresh = self
            .0
            .lock()
            .map(|mut ids| ids.insert(id.to_string()))
            .unwrap_or(false);
        fresh.then(|| Claim {
            set: self.clone(),
            id: id.to_string(),
        })
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if let Ok(mut ids) = self.set.0.lock() {
            ids.remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::InFlight;

    #[test]
    fn an_id_has_one_claim_at_a_time_and_is_freed_on_drop() {
        let in_flight = InFlight::default();
        let claim = in_flight.claim("deal").expect("free");
        assert!(in_flight.claim("deal").is_none(), "held");
        assert!(
            in_flight.claim("other").is_some(),
            "other ids are independent"
        );
        drop(claim);
        assert!(in_flight.claim("deal").is_some(), "freed on drop");
    }
}
