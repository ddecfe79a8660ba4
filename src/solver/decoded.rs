//! Offers decoded once and kept between matching passes.
//!
//! An offer's id is the hash of its content, so an id names one offer forever. A matching
//! pass asks the store only which offers are open (their ids, no JSON) and decodes just
//! those it has not seen before; the store still decides what is open. Offers that are no
//! longer open are dropped at the next pass, so what is kept is what the pass needs anyway.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Decoded offers of one kind, by id. Clones share them (as clones of a store share its
/// database).
pub struct Decoded<T> {
    by_id: Arc<Mutex<HashMap<String, Arc<T>>>>,
}

impl<T> Default for Decoded<T> {
    fn default() -> Self {
        Decoded {
            by_id: Arc::new(Mutex::new(HashMap::new())),
        }
    }
}

impl<T> Clone for Decoded<T> {
    fn clone(&self) -> Self {
        Decoded {
            by_id: self.by_id.clone(),
        }
    }
}

impl<T> Decoded<T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<T>>> {
        // A panic elsewhere while holding the lock leaves the map whole (inserts and
        // retains only): keep using it.
        self.by_id
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The ids among `open` that are not decoded yet.
    pub fn missing<'a>(&self, open: &'a [String]) -> Vec<&'a str> {
        let by_id = self.lock();
        open.iter()
            .filter(|id| !by_id.contains_key(id.as_str()))
            .map(String::as_str)
            .collect()
    }

    /// Keeps `offer`, decoded, under `id`.
    pub fn insert(&self, id: String, offer: T) {
        self.lock().insert(id, Arc::new(offer));
    }

    /// The decoded offers of `open`, in its order, skipping any not decoded (taken between
    /// the two reads); every other offer is dropped.
    pub fn take_open(&self, open: &[String]) -> Vec<Arc<T>> {
        let mut by_id = self.lock();
        let offers: Vec<Arc<T>> = open
            .iter()
            .filter_map(|id| by_id.get(id.as_str()).cloned())
            .collect();
        if by_id.len() > offers.len() {
            let keep: std::collections::HashSet<&str> = open.iter().map(String::as_str).collect();
            by_id.retain(|id, _| keep.contains(id.as_str()));
        }
        offers
    }

    /// How many are kept.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|id| id.to_string()).collect()
    }

    #[test]
    fn only_new_ids_are_missing_and_closed_ones_are_dropped() {
        let decoded = Decoded::default();
        let open = ids(&["a", "b"]);
        assert_eq!(decoded.missing(&open), vec!["a", "b"]);
        decoded.insert("a".into(), 1);
        decoded.insert("b".into(), 2);
        assert!(decoded.missing(&open).is_empty());
        let taken: Vec<i32> = decoded.take_open(&open).iter().map(|n| **n).collect();
        assert_eq!(taken, vec![1, 2]);

        // "a" was matched, "c" arrived: only "c" is decoded, and "a" is forgotten.
        let open = ids(&["c", "b"]);
        assert_eq!(decoded.missing(&open), vec!["c"]);
        decoded.insert("c".into(), 3);
        let taken: Vec<i32> = decoded.take_open(&open).iter().map(|n| **n).collect();
        assert_eq!(taken, vec![3, 2]);
        assert_eq!(decoded.len(), 2);
    }

    #[test]
    fn an_open_id_that_could_not_be_read_is_skipped() {
        let decoded = Decoded::default();
        decoded.insert("a".into(), 1);
        let taken = decoded.take_open(&ids(&["gone", "a"]));
        assert_eq!(taken.len(), 1);
        assert_eq!(*taken[0], 1);
    }
}
