//! Results on IPFS, against real kubo daemons (`make tools`): the results id we compute is the
//! CID `ipfs add` gives for the same bytes, at every size that changes the DAG's shape.

mod common;

use common::kubo::{self, Kubo};

/// Bytes that do not repeat (so no chunk shares a block with another).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as u8
        })
        .collect()
}

#[test]
fn our_results_id_is_the_cid_ipfs_add_gives() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    kubo::init(&repo);
    const CHUNK: usize = 256 * 1024;
    // Empty, one chunk, exactly one chunk, two, many, and past 174 chunks (a second level).
    for (n, len) in [
        0,
        1,
        1000,
        CHUNK,
        CHUNK + 1,
        7 * CHUNK + 13,
        174 * CHUNK,
        174 * CHUNK + 1,
        400 * CHUNK + 5,
    ]
    .into_iter()
    .enumerate()
    {
        let bytes = noise(len, n as u64);
        let file = dir.path().join(format!("file-{n}"));
        std::fs::write(&file, &bytes).unwrap();
        let theirs = kubo::ipfs(&repo, &["add", "--only-hash", "-Q", file.to_str().unwrap()]);
        assert_eq!(
            lilypad::data::ids::file_cid_of(&bytes),
            theirs,
            "{len} bytes"
        );
    }
}

/// A job whose resource provider adds its results to one kubo node and whose job creator
/// reads them from another (the nodes peer over loopback): the job creator gets them by CID
/// from IPFS, `ipfs cat CID` on either node returns the committed tar, and the RP's node pins
/// it. With the job creator's node down, the solver's relay serves them, and the outcome says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn results_travel_through_ipfs_and_the_relay_covers_a_dead_node() {
    use lilypad::data::DealState;
    use lilypad::results::ipfs::Ipfs;

    let dir = tempfile::tempdir().unwrap();
    let providers = Kubo::start(&dir.path().join("kubo-rp"));
    let creators = Kubo::start(&dir.path().join("kubo-jc"));
    creators.run(&["swarm", "connect", &providers.swarm_address()]);

    let options = common::options_with(
        &dir.path().join("dev"),
        lilypad::dev::DevRoles::default(),
        &["--ipfs-connect", &providers.api],
    );
    let network = common::start(options).await;
    let chain = network.job_creator_chain().await.unwrap();
    let client =
        lilypad::client::SolverClient::new(&network.solver.url, network.keys.job_creator.clone());

    let mut request = common::cowsay_request(&network, dir.path(), "from ipfs");
    request.ipfs = Some(Ipfs::new(&creators.api).unwrap());
    let outcome = lilypad::run::run_job(chain.clone(), client.clone(), request)
        .await
        .expect("the job completes");
    assert_eq!(outcome.state, DealState::ResultsAccepted);
    let results = outcome.results.clone().expect("results");
    assert_eq!(results.source, format!("IPFS at {}", creators.api));
    assert!(
        results.stdout.contains("< from ipfs >"),
        "{}",
        results.stdout
    );
    assert!(results.cid.starts_with("Qm"), "{}", results.cid);

    // The bytes behind the CID are the committed tar, on both nodes; the RP's node pins them.
    let relay = client.download_files(&outcome.deal_id).await.unwrap();
    for node in [&providers, &creators] {
        let out = dir.path().join("got.tar");
        node.run(&["get", &results.cid, "-o", out.to_str().unwrap()]);
        assert_eq!(std::fs::read(&out).unwrap(), relay);
        std::fs::remove_file(&out).unwrap();
    }
    let pins = providers.run(&["pin", "ls", "--type", "recursive", "-q"]);
    assert!(pins.lines().any(|line| line == results.cid), "{pins}");

    // The job creator's IPFS node is gone: the relay serves, and the outcome says so.
    let dead = creators.api.clone();
    creators.stop();
    let mut request = common::cowsay_request(&network, &dir.path().join("second"), "relayed");
    request.ipfs = Some(Ipfs::new(&dead).unwrap());
    let outcome = lilypad::run::run_job(chain, client, request)
        .await
        .expect("the job completes without the job creator's IPFS");
    assert_eq!(outcome.state, DealState::ResultsAccepted);
    let results = outcome.results.expect("results");
    assert_eq!(results.source, "the solver");
    assert!(results.stdout.contains("< relayed >"));
    network.stop().await;
    providers.stop();
}

/// A module whose job reads two IPFS inputs (a file and a directory, added to kubo by the
/// test): the RP fetches them into the container where the module asks; a
/// mediator re-runs the job with the same inputs and agrees. An engine without IPFS refuses
/// such a job with a clear error, and an RP without IPFS refuses its deal before agreeing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_module_reads_its_ipfs_inputs_and_without_ipfs_it_is_refused() {
    use lilypad::data::DealState;
    use lilypad::executor::Executor;

    let dir = tempfile::tempdir().unwrap();
    let kubo = Kubo::start(&dir.path().join("kubo"));
    let (module, expected) = kubo::reader_module(&kubo, &dir.path().join("reader"));

    let options = common::options_with(
        &dir.path().join("dev"),
        lilypad::dev::DevRoles::default(),
        &["--ipfs-connect", &kubo.api],
    );
    let settings = options.settings.clone();
    let network = common::start(options).await;
    let chain = network.job_creator_chain().await.unwrap();
    let client =
        lilypad::client::SolverClient::new(&network.solver.url, network.keys.job_creator.clone());
    let mut request = common::cowsay_request(&network, dir.path(), "");
    request.module = module.clone();
    request.inputs.clear();
    request.mediation_chance = 100;
    let outcome = lilypad::run::run_job(chain, client, request)
        .await
        .expect("the job ends");
    assert_eq!(outcome.state, DealState::MediationAccepted, "{outcome:?}");
    let results = outcome.results.expect("results");
    assert_eq!(results.stdout, expected);
    assert_eq!(
        std::fs::read_to_string(results.dir.join("outputs/greeting")).unwrap(),
        "hello from ipfs\n"
    );
    let leftovers: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("lilypad-inputs-")
        })
        .collect();
    assert!(
        leftovers.is_empty(),
        "staged inputs are removed: {leftovers:?}"
    );

    // An engine without IPFS says what is missing.
    let spec = lilypad::module::resolve(
        &module,
        None,
        &Default::default(),
        &lilypad::module::GitModules::new(dir.path()),
    )
    .unwrap();
    assert_eq!(spec.inputs.len(), 2);
    let mut without = settings.clone();
    without.ipfs_connect = None;
    let executor = lilypad::executor::AnyExecutor::for_resource_provider(&without)
        .await
        .unwrap();
    assert!(!executor.fetches_ipfs_inputs());
    let error = executor
        .run(&spec, &dir.path().join("no-ipfs/outputs"), 0)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("IPFS_CONNECT"), "{error}");
    network.stop().await;
}
