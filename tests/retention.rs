//! What a solver keeps grows with every job; its retention settings bound it. A real solver
//! store (SQLite in a temporary directory, results files beside it) takes a batch of jobs
//! the way the solver records them (both offers, the deal, its end state, the result, a
//! results file, a transaction, a request signature, events), then forgets what retention
//! lets go: the disk use is printed and must come back down, and a second batch must reuse
//! the space instead of growing it. `make bench-disk` runs it with 10,000 jobs a batch (an
//! optimised build; RETENTION_JOBS sets the number); `make test` with 1,000.

use std::path::Path;

use lilypad::data::offers::now_millis;
use lilypad::data::records::TxRecord;
use lilypad::data::{ContentAddressed, Deal, DealState, JobResult};
use lilypad::solver::store::{Pruned, Retention, Store};

/// Jobs per batch: RETENTION_JOBS, or 1,000.
fn jobs() -> u64 {
    std::env::var("RETENTION_JOBS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000)
}
/// A results tar of a small job (cowsay's is 4-6 KiB).
const RESULTS_BYTES: usize = 6 * 1024;

fn disk_use(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        total += if meta.is_dir() {
            disk_use(&entry.path())
        } else {
            meta.len()
        };
    }
    total
}

/// Records `count` finished jobs numbered from `first`, as the solver would.
async fn run_jobs(store: &Store, files: &Path, first: u64, count: u64) {
    let now_secs = now_millis() / 1000;
    for batch in (first..first + count).collect::<Vec<_>>().chunks(100) {
        let mut deals = Vec::new();
        for &n in batch {
            let job = lilypad::data::examples::job_offer(n, 5, 500);
            let resource = lilypad::data::examples::resource_offer(n, 3, 1000);
            store.add_job_offer(&job, None).await.unwrap();
            store
                .add_resource_offer(&resource, now_millis(), None)
                .await
                .unwrap();
            let deal = Deal::propose(&job, &resource, 0).unwrap();
            deals.push((deal, format!("0x{n:064x}")));
            store
                .remember_signature(&format!("0x{n:0130x}"), now_secs)
                .await
                .unwrap();
        }
        store.commit_deals(&deals).await.unwrap();
        for (deal, _) in &deals {
            store
                .set_deal_state(&deal.id, DealState::ResultsAccepted.number())
                .await
                .unwrap();
            let cid = format!("bafy{}", deal.id);
            let path = files.join(format!("{cid}.tar"));
            std::fs::write(&path, vec![7u8; RESULTS_BYTES]).unwrap();
            store.put_file(&deal.id, &cid, &path).await.unwrap();
            let result = JobResult {
                deal_id: deal.id.clone(),
                results_cid: cid,
                error: None,
                exit_code: Some(0),
                instruction_count: 1,
            };
            store.put_result(&result).await.unwrap();
            let record = TxRecord {
                deal_id: deal.id.clone(),
                address: deal.members.job_creator,
                action: "accept_result".into(),
                tx_hash: format!("0x{:064x}", deal.id.len()),
            };
            store.add_tx(&record).await.unwrap();
            assert!(deal.id_is_valid());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_solvers_disk_use_is_bounded_by_its_retention() {
    let jobs = jobs();
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("files");
    std::fs::create_dir_all(&files).unwrap();
    let store = Store::open(&dir.path().join("solver.db")).await.unwrap();
    const HOUR: u64 = 3_600_000;
    let retention = Retention {
        deals_ms: 24 * HOUR,
        results_ms: HOUR,
        events: 1_000,
    };
    let checkpoint = |store: &Store| {
        let pool = store.sqlite().expect("a SQLite store").pool().clone();
        async move {
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&pool)
                .await
                .unwrap();
        }
    };

    run_jobs(&store, &files, 0, jobs).await;
    checkpoint(&store).await;
    let grown = disk_use(dir.path());
    let (_, _, _, events) = store.counts().await.unwrap();
    assert!(events >= 4 * jobs, "{events} events");

    // Within retention nothing is forgotten.
    let (nothing, paths) = store.prune(now_millis(), &retention).await.unwrap();
    assert_eq!(nothing.deals + nothing.files + nothing.offers, 0);
    assert!(paths.is_empty());
    assert_eq!(nothing.events, events - retention.events);

    // Two hours on, the results files go (the deals stay); two days on, the deals too.
    let (later, paths) = store
        .prune(now_millis() + 2 * HOUR, &retention)
        .await
        .unwrap();
    assert_eq!(later.files, jobs);
    assert_eq!(later.deals, 0);
    for path in &paths {
        std::fs::remove_file(path).unwrap();
    }
    let deal_id = Deal::propose(
        &lilypad::data::examples::job_offer(0, 5, 500),
        &lilypad::data::examples::resource_offer(0, 3, 1000),
        0,
    )
    .unwrap()
    .id;
    assert!(store.file(&deal_id).await.unwrap().is_none());
    assert!(store.deal(&deal_id).await.unwrap().is_some());
    let (gone, _) = store
        .prune(now_millis() + 48 * HOUR, &retention)
        .await
        .unwrap();
    assert_eq!(
        gone,
        Pruned {
            deals: jobs,
            offers: 2 * jobs,
            files: 0,
            events: 0
        }
    );
    assert!(store.deal(&deal_id).await.unwrap().is_none());
    store
        .forget_old_signatures(now_millis() / 1000 + 3600)
        .await
        .unwrap();
    checkpoint(&store).await;
    let pruned = disk_use(dir.path());

    // The next batch reuses the freed pages: the store does not grow past its first peak.
    run_jobs(&store, &files, jobs, jobs).await;
    checkpoint(&store).await;
    let regrown = disk_use(dir.path());
    eprintln!(
        "solver disk use: {:.1} MiB after {jobs} jobs ({:.1} MiB of it results files), {:.1} MiB after forgetting them, {:.1} MiB after {jobs} more",
        grown as f64 / 1048576.0,
        (jobs as usize * RESULTS_BYTES) as f64 / 1048576.0,
        pruned as f64 / 1048576.0,
        regrown as f64 / 1048576.0
    );
    assert!(pruned < grown / 2, "{pruned} bytes left of {grown}");
    assert!(
        regrown <= grown + grown / 20,
        "the second {jobs} jobs grew the store to {regrown} bytes (first peak {grown})"
    );
    store.close().await;
}
