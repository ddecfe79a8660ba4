//! The SaaS store on SQLite and on PostgreSQL alike (each case on both): accounts, sessions,
//! API keys (revocable, scoped to their owner), and the credits ledger: exact under 50
//! concurrent charges, never below zero, a job charged and refunded at most once, and the
//! balance always the sum of the transfers.

mod common;

use std::sync::Arc;

use lilypad::saas::store::{ChargeError, Store};

async fn stores() -> Vec<(&'static str, Store, tempfile::TempDir)> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Store::open(&dir.path().join("saas.db")).await.unwrap();
    let pg_dir = tempfile::tempdir().unwrap();
    let postgres = Store::connect(&common::postgres_database().await)
        .await
        .unwrap();
    vec![("sqlite", sqlite, dir), ("postgres", postgres, pg_dir)]
}

async fn balance_is_the_sum_of_transfers(store: &Store, user: &str) -> i64 {
    let credits = store.user(user).await.unwrap().unwrap().credits;
    let sum: i64 = store
        .transfers(user)
        .await
        .unwrap()
        .iter()
        .map(|t| t.amount)
        .sum();
    assert_eq!(credits, sum, "the balance is the ledger's sum");
    credits
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn accounts_sessions_and_api_keys_belong_to_their_owner() {
    for (engine, store, _dir) in stores().await {
        let alice = store
            .add_user("alice@example.com", "hash-a")
            .await
            .unwrap()
            .unwrap();
        assert!(
            store
                .add_user("alice@example.com", "other")
                .await
                .unwrap()
                .is_none(),
            "{engine}: an email signs up once"
        );
        let bob = store
            .add_user("bob@example.com", "hash-b")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            store
                .user_by_email("alice@example.com")
                .await
                .unwrap()
                .unwrap(),
            alice
        );

        let far = lilypad::saas::store::now_ms() + 60_000;
        store
            .add_session("t-alice", &alice.id, "csrf-a", far)
            .await
            .unwrap();
        store
            .add_session("t-old", &alice.id, "csrf-o", 1)
            .await
            .unwrap();
        assert_eq!(
            store.session("t-alice").await.unwrap(),
            Some((alice.id.clone(), "csrf-a".to_string()))
        );
        assert_eq!(
            store.session("t-old").await.unwrap(),
            None,
            "{engine}: expired"
        );
        store.end_session("t-alice").await.unwrap();
        assert_eq!(store.session("t-alice").await.unwrap(), None);

        let key = store.add_api_key(&alice.id, "ci", "h-1").await.unwrap();
        store.add_api_key(&bob.id, "bob's", "h-2").await.unwrap();
        assert_eq!(
            store.api_key_user("h-1").await.unwrap(),
            Some(alice.id.clone())
        );
        assert_eq!(
            store.api_key_user("h-2").await.unwrap(),
            Some(bob.id.clone())
        );
        assert!(
            !store.revoke_api_key(&bob.id, &key.id).await.unwrap(),
            "{engine}: bob cannot revoke alice's key"
        );
        assert_eq!(
            store.api_key_user("h-1").await.unwrap(),
            Some(alice.id.clone())
        );
        assert!(store.revoke_api_key(&alice.id, &key.id).await.unwrap());
        assert_eq!(
            store.api_key_user("h-1").await.unwrap(),
            None,
            "{engine}: revoked"
        );
        let keys = store.api_keys(&alice.id).await.unwrap();
        assert_eq!(keys.len(), 1);
        assert!(keys[0].revoked_ms.is_some());
        store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn credits_are_exact_under_fifty_concurrent_charges_and_refunds_happen_once() {
    for (engine, store, _dir) in stores().await {
        let store = Arc::new(store);
        let alice = store
            .add_user("alice@example.com", "h")
            .await
            .unwrap()
            .unwrap();
        let bob = store
            .add_user("bob@example.com", "h")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(store.grant(&alice.id, 100).await.unwrap(), 100);
        assert_eq!(store.grant(&bob.id, 10).await.unwrap(), 10);

        // 50 jobs of 3 credits at once on 100 credits: exactly 33 are charged.
        let mut tasks = Vec::new();
        for i in 0..50 {
            let (store, user) = (store.clone(), alice.id.clone());
            tasks.push(tokio::spawn(async move {
                store.charge(&user, &format!("job-{i}"), 3).await
            }));
        }
        let mut charged = Vec::new();
        for (i, task) in tasks.into_iter().enumerate() {
            match task.await.unwrap() {
                Ok(credits) => {
                    assert!(credits >= 0);
                    charged.push(format!("job-{i}"));
                }
                Err(ChargeError::NotEnough { cost, credits }) => {
                    assert_eq!(cost, 3);
                    assert!(credits < 3, "{engine}: refused with {credits} credits left");
                }
                Err(e) => panic!("{engine}: {e}"),
            }
        }
        assert_eq!(charged.len(), 33, "{engine}");
        assert_eq!(balance_is_the_sum_of_transfers(&store, &alice.id).await, 1);
        assert_eq!(balance_is_the_sum_of_transfers(&store, &bob.id).await, 10);

        // Charging a job again (a restart resuming it) changes nothing.
        assert_eq!(store.charge(&alice.id, &charged[0], 3).await.unwrap(), 1);
        // A refund happens once; a job never charged gets none.
        assert_eq!(store.refund(&alice.id, &charged[0]).await.unwrap(), 4);
        assert_eq!(store.refund(&alice.id, &charged[0]).await.unwrap(), 4);
        assert_eq!(store.refund(&alice.id, "job-never").await.unwrap(), 4);
        // Bob cannot have Alice's job refunded to him.
        assert_eq!(store.refund(&bob.id, &charged[1]).await.unwrap(), 10);
        assert_eq!(balance_is_the_sum_of_transfers(&store, &alice.id).await, 4);
        assert_eq!(balance_is_the_sum_of_transfers(&store, &bob.id).await, 10);

        let transfers = store.transfers(&alice.id).await.unwrap();
        assert_eq!(transfers.len(), 1 + 33 + 1);
        assert_eq!(
            transfers.iter().filter(|t| t.kind == "charge").count(),
            33,
            "{engine}"
        );
        assert!(transfers.iter().any(|t| t.kind == "refund"
            && t.amount == 3
            && t.job_id.as_deref() == Some(charged[0].as_str())));
        store.close().await;
    }
}
