//! The network across hosts: each host is a network namespace of its own (a veth into one
//! switch namespace's bridge, its own address), each role a separate `lilypad` process
//! with its own data directory and key, configured only the way the README tells
//! operators. The chain (anvil) has a host, the solver has one behind nginx terminating TLS
//! with a certificate from a test CA (clients trust it through `TLS_CA_FILE`, nginx runs
//! `deploy/nginx/lilypad-solver.conf`), two resource providers and a mediator have one
//! each, and a laptop runs `lilypad run`. The test process deploys the contracts and reads
//! balances from a host of its own on the same switch (as an operator's machine would).
//!
//! Cases, one after another on one network: a job; a disputed job; the RP host cut off
//! (link down) mid-job and restored; the solver killed (`kill -9`) mid-job and started
//! again; the laptop gone offline after agreeing and its job resumed with `lilypad run
//! --resume`. Every deal ends as its case wants, and every party's balance moved by exactly
//! what those ends say (to the wei). Namespaces and processes go even when the test fails.
//!
//! Needs root and iproute2 (`ip netns`), nginx and openssl, a Docker engine and anvil.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::procs::{deal_ends, saved_job, settlement, wait_for_health, Proc};
use ethers::signers::{LocalWallet, Signer};
use ethers::types::{Address, U256};
use lilypad::chain::Chain;
use lilypad::client::SolverClient;
use lilypad::data::DealState;

/// Runs `ip ARGS`, panicking with its error output if it fails.
fn ip(args: &[&str]) {
    let output = Command::new("ip")
        .args(args)
        .output()
        .expect("iproute2's `ip` (Debian package iproute2)");
    assert!(
        output.status.success(),
        "ip {}: {} (the multi-host tests need root)",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr).trim()
    );
}

/// The namespaces of one test: a switch (a bridge) and the hosts plugged into it. Removed
/// on drop, with every interface in them.
struct Hosts {
    /// Names start with this: `lph` and the test process's id.
    prefix: String,
    /// The hosts' network: 10.SUBNET.0.0/24.
    subnet: u8,
    namespaces: Vec<String>,
    /// The test process's own interface on the switch.
    admin: String,
}

impl Hosts {
    fn new() -> Hosts {
        let pid = std::process::id();
        Hosts::remove_stale();
        let prefix = format!("lph{pid}");
        let subnet = 100 + (pid % 100) as u8;
        let switch = format!("{prefix}-sw");
        ip(&["netns", "add", &switch]);
        let hosts = Hosts {
            admin: format!("{prefix}a"),
            prefix,
            subnet,
            namespaces: vec![switch.clone()],
        };
        ip(&["-n", &switch, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &switch, "link", "set", "br0", "up"]);
        // This process's host: the operator's machine, which deploys and reads balances.
        let admin = hosts.admin.clone();
        ip(&[
            "link", "add", &admin, "type", "veth", "peer", "name", "admin", "netns", &switch,
        ]);
        ip(&["-n", &switch, "link", "set", "admin", "master", "br0", "up"]);
        let address = format!("{}/24", hosts.address(1));
        ip(&["addr", "add", &address, "dev", &admin]);
        ip(&["link", "set", &admin, "up"]);
        hosts
    }

    /// Namespaces left by an earlier run of this test that was killed before it could
    /// remove them (its process is gone).
    fn remove_stale() {
        let Ok(output) = Command::new("ip").args(["netns", "list"]).output() else {
            return;
        };
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            let name = line.split_whitespace().next().unwrap_or_default();
            let Some(rest) = name.strip_prefix("lph") else {
                continue;
            };
            let pid: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if !pid.is_empty() && !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = Command::new("ip").args(["netns", "del", name]).status();
                let _ = Command::new("ip")
                    .args(["link", "del", &format!("lph{pid}a")])
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }

    fn address(&self, host: u8) -> String {
        format!("10.{}.0.{host}", self.subnet)
    }

    /// A new host `name` at 10.SUBNET.0.`number`; returns its namespace.
    fn host(&mut self, name: &str, number: u8) -> String {
        let namespace = format!("{}-{name}", self.prefix);
        let switch = self.namespaces[0].clone();
        ip(&["netns", "add", &namespace]);
        self.namespaces.push(namespace.clone());
        ip(&[
            "-n", &switch, "link", "add", name, "type", "veth", "peer", "name", "eth0", "netns",
            &namespace,
        ]);
        ip(&["-n", &switch, "link", "set", name, "master", "br0", "up"]);
        let address = format!("{}/24", self.address(number));
        ip(&["-n", &namespace, "addr", "add", &address, "dev", "eth0"]);
        ip(&["-n", &namespace, "link", "set", "eth0", "up"]);
        ip(&["-n", &namespace, "link", "set", "lo", "up"]);
        namespace
    }

    /// Plugs a host's cable in or pulls it out.
    fn link(&self, namespace: &str, up: bool) {
        let state = if up { "up" } else { "down" };
        ip(&["-n", namespace, "link", "set", "eth0", state]);
    }

    /// This test's namespaces that exist now.
    fn existing(prefix: &str) -> Vec<String> {
        let output = Command::new("ip").args(["netns", "list"]).output().unwrap();
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| line.split_whitespace().next())
            .filter(|name| name.starts_with(&format!("{prefix}-")))
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for namespace in self.namespaces.iter().rev() {
            let _ = Command::new("ip")
                .args(["netns", "del", namespace])
                .status();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.admin])
            .stderr(Stdio::null())
            .status();
    }
}

/// Runs openssl, panicking with its error output if it fails.
fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl");
    assert!(
        output.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A test CA (`ca.pem`) and a certificate it signed for the solver's host address
/// (`solver.pem`, `solver.key`), in `dir`.
fn test_ca(dir: &Path, solver_ip: &str) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        dir,
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=Lilypad test CA",
            ],
        ]
        .concat(),
    );
    openssl(
        dir,
        &[
            &["req"][..],
            &ec,
            &[
                "-keyout",
                "solver.key",
                "-out",
                "solver.csr",
                "-subj",
                "/CN=lilypad solver",
            ],
        ]
        .concat(),
    );
    std::fs::write(
        dir.join("solver.ext"),
        format!(
            "subjectAltName=IP:{solver_ip}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
        ),
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "solver.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "solver.pem",
            "-days",
            "2",
            "-extfile",
            "solver.ext",
        ],
    );
}

/// nginx in the foreground, one process, running the operators' config from `deploy/nginx/`
/// with the test certificate; its files under `dir`.
fn nginx(namespace: &str, dir: &Path) -> tokio::process::Child {
    let site = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/nginx/lilypad-solver.conf"),
    )
    .unwrap();
    let cert = dir.join("solver.pem").display().to_string();
    let key = dir.join("solver.key").display().to_string();
    let site = site
        .replace(
            "/etc/letsencrypt/live/solver.example.org/fullchain.pem",
            &cert,
        )
        .replace("/etc/letsencrypt/live/solver.example.org/privkey.pem", &key);
    assert!(site.contains(&cert) && site.contains(&key));
    std::fs::write(dir.join("lilypad-solver.conf"), site).unwrap();
    let d = dir.display();
    std::fs::write(
        dir.join("nginx.conf"),
        format!(
            "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/nginx-error.log info;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n  access_log {d}/nginx-access.log;\n  client_body_temp_path {d}/body;\n  \
             proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  \
             scgi_temp_path {d}/scgi;\n  include {d}/lilypad-solver.conf;\n}}\n"
        ),
    )
    .unwrap();
    tokio::process::Command::new("ip")
        .args(["netns", "exec", namespace, "nginx", "-c"])
        .arg(dir.join("nginx.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.join("nginx.stderr")).unwrap(),
        ))
        .kill_on_drop(true)
        .spawn()
        .expect("nginx (Debian package nginx-light)")
}

/// Runs `lilypad ARGS` with only `env` (and PATH) as its environment; its stdout.
fn lilypad_command(args: &[&str], env: &[(&str, String)]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_lilypad"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "lilypad {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Containers of the RP whose data is in `data_dir` running now.
fn running_containers(data_dir: &Path) -> usize {
    let owner = lilypad::executor::docker::owner_of(&data_dir.join("rp"));
    let filter = format!("label={}={owner}", lilypad::executor::docker::OWNER_LABEL);
    let output = Command::new("docker")
        .args(["ps", "-q", "--filter", &filter])
        .output()
        .expect("docker");
    String::from_utf8_lossy(&output.stdout).lines().count()
}

/// The network: hosts, keys, and the processes of the roles.
struct Network {
    dir: PathBuf,
    hosts: Hosts,
    rpc_url: String,
    solver_url: String,
    deployer: LocalWallet,
    payments: Address,
    controller: Address,
    /// The network's profile, as `lilypad chain deploy` wrote it.
    network_file: String,
    laptop_key: LocalWallet,
    laptop: String,
    rps: Vec<(LocalWallet, String)>,
    mediator: LocalWallet,
    solver: Proc,
    roles: Vec<Proc>,
    _chain: tokio::process::Child,
    _nginx: tokio::process::Child,
}

impl Network {
    async fn start(dir: &Path) -> Network {
        let mut hosts = Hosts::new();
        let chain_host = hosts.host("chain", 10);
        let solver_host = hosts.host("solver", 20);
        let rp_hosts = [hosts.host("rp1", 31), hosts.host("rp2", 32)];
        let mediator_host = hosts.host("mediator", 40);
        let laptop = hosts.host("laptop", 50);

        // The chain host: anvil on its address.
        let anvil = lilypad::dev::find_anvil(None).expect("anvil (make deps)");
        let chain_ip = hosts.address(10);
        let chain = tokio::process::Command::new("ip")
            .args(["netns", "exec", &chain_host])
            .arg(&anvil)
            .args(["--host", &chain_ip, "--port", "8545"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("anvil starts");
        let rpc_url = format!("http://{chain_ip}:8545");
        let started = Instant::now();
        while lilypad::chain::client::provider(&rpc_url, Duration::from_millis(100))
            .await
            .is_err()
        {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "anvil on the chain host answers at {rpc_url}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        let deployer = lilypad::config::parse_key(lilypad::dev::ANVIL_DEPLOYER_KEY).unwrap();
        let solver_key = lilypad::keys::generate();
        let mediator = lilypad::keys::generate();
        let laptop_key = lilypad::keys::generate();
        let rp_keys = [lilypad::keys::generate(), lilypad::keys::generate()];
        let funded: Vec<String> = [&solver_key, &mediator, &laptop_key]
            .into_iter()
            .chain(&rp_keys)
            .map(|wallet| format!("{:?}", wallet.address()))
            .collect();

        // The solver host's certificate, from a test CA.
        let solver_ip = hosts.address(20);
        test_ca(dir, &solver_ip);
        let solver_url = format!("https://{solver_ip}");
        lilypad::tls::trust_file(&dir.join("ca.pem")).unwrap();

        // The operator (this host) deploys with `lilypad chain deploy`, which writes the
        // network's profile (solver, mediators and CA included), then funds every key.
        let admin = dir.join("admin");
        std::fs::create_dir_all(&admin).unwrap();
        let deployer_key = admin.join("deployer.key");
        lilypad::keys::write_key(&deployer_key, &deployer).unwrap();
        let ca = dir.join("ca.pem").display().to_string();
        let operator_env = [
            ("DATA_DIR", admin.display().to_string()),
            ("WEB3_PRIVATE_KEY_FILE", deployer_key.display().to_string()),
        ];
        let deployed = lilypad_command(
            &["chain", "deploy", "--name", "hosts"],
            &[
                &operator_env[..],
                &[
                    ("WEB3_RPC_URL", rpc_url.clone()),
                    ("SERVICE_SOLVER", format!("{:?}", solver_key.address())),
                    ("SOLVER_URL", solver_url.clone()),
                    ("SERVICE_MEDIATORS", format!("{:?}", mediator.address())),
                    ("TLS_CA_FILE", ca),
                ],
            ]
            .concat(),
        );
        let profile_path = admin.join("networks/hosts.toml");
        assert!(
            deployed.contains(&format!("# network profile {}", profile_path.display())),
            "{deployed}"
        );
        let profile = lilypad::profile::Profile::find("hosts", &admin).unwrap();
        assert_eq!(profile.solver, Some(solver_key.address()));
        assert_eq!(profile.mediators, vec![mediator.address()]);
        assert!(profile
            .tls_ca
            .as_deref()
            .unwrap()
            .contains("BEGIN CERTIFICATE"));
        let fund: Vec<&str> = ["chain", "fund", "--network", "hosts"]
            .into_iter()
            .chain(funded.iter().map(String::as_str))
            .collect();
        lilypad_command(&fund, &operator_env);

        // The solver host: the solver on loopback, nginx in front with the certificate.
        let nginx = nginx(&solver_host, dir);

        // Every node joins with the profile and its key; the roles poll faster than by
        // default and log JSON.
        let network_file = profile_path.display().to_string();
        let env: Vec<(String, String)> = [
            ("LILYPAD_NETWORK", network_file.clone()),
            ("POLL_INTERVAL_MS", "100".into()),
            ("LOG_FORMAT", "json".into()),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect();
        let with = |extra: &[(&str, &str)]| {
            env.iter()
                .cloned()
                .chain(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())))
                .collect::<Vec<_>>()
        };
        let mut solver = Proc::new(
            "solver",
            &["solver"],
            &solver_key,
            dir.join("solver"),
            with(&[
                ("SERVER_HOST", "127.0.0.1"),
                ("SERVER_PORT", "8080"),
                ("SERVER_URL", &solver_url),
                ("TRUSTED_PROXY_HOPS", "1"),
            ]),
        );
        solver.netns = Some(solver_host);
        solver.start();
        let mut roles = Vec::new();
        let mut rps = Vec::new();
        for (n, (key, host)) in rp_keys.iter().zip(rp_hosts).enumerate() {
            let name = format!("rp{}", n + 1);
            let mut rp = Proc::new(
                &name,
                &["rp"],
                key,
                dir.join(&name),
                with(&[
                    ("OFFER_CPU", "1000"),
                    ("OFFER_RAM", "512"),
                    ("OFFER_COUNT", "1"),
                    ("METRICS_LISTEN", "0.0.0.0:9461"),
                    ("ALLOW_LOCAL_MODULES", "true"),
                ]),
            );
            rp.netns = Some(host.clone());
            rps.push((key.clone(), host));
            roles.push(rp);
        }
        let mut mediator_proc = Proc::new(
            "mediator",
            &["mediator"],
            &mediator,
            dir.join("mediator"),
            with(&[
                ("ALLOW_LOCAL_MODULES", "true"),
                ("METRICS_LISTEN", "0.0.0.0:9462"),
            ]),
        );
        mediator_proc.netns = Some(mediator_host);
        roles.push(mediator_proc);

        let network = Network {
            dir: dir.to_path_buf(),
            hosts,
            rpc_url,
            solver_url,
            deployer,
            payments: Address::zero(),
            controller: profile.controller,
            network_file,
            laptop_key,
            laptop,
            rps,
            mediator,
            solver,
            roles,
            _chain: chain,
            _nginx: nginx,
        };
        let mut network = network;
        network.payments = network.reader().await.contracts.payments.address();
        // The solver answers through nginx before the others start.
        wait_for_health(&network.solver_client()).await;
        network
    }

    fn start_roles(&mut self) {
        for role in &mut self.roles {
            role.start();
        }
    }

    /// A client of the solver through nginx, from the test's own host.
    fn solver_client(&self) -> SolverClient {
        SolverClient::new(&self.solver_url, lilypad::keys::generate())
    }

    /// A `lilypad run ARGS` on the laptop host, its data in `laptop/NAME`: it is given
    /// the network (`LILYPAD_NETWORK`, the profile `chain deploy` wrote) and its key,
    /// nothing else.
    fn run(&self, name: &str, args: &[&str]) -> Proc {
        let args = [&["run"], args, &["--quiet", "--timeout", "300"]].concat();
        let mut run = Proc::new(
            name,
            &args,
            &self.laptop_key,
            self.dir.join("laptop").join(name),
            vec![("LILYPAD_NETWORK".into(), self.network_file.clone())],
        );
        run.netns = Some(self.laptop.clone());
        run.start();
        run
    }

    /// A chain client that only reads (balances, deals), from the test's own host.
    async fn reader(&self) -> Chain {
        Chain::connect(
            &self.rpc_url,
            self.deployer.clone(),
            self.controller,
            Duration::from_millis(100),
        )
        .await
        .unwrap()
    }

    /// Every role's last log lines, for a failure message.
    fn tails(&self) -> String {
        std::iter::once(&self.solver)
            .chain(&self.roles)
            .map(Proc::tails)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Waits until one of the RPs runs a container; its index.
    async fn rp_running_a_job(&self) -> usize {
        let started = Instant::now();
        loop {
            for (n, rp) in self.roles.iter().take(self.rps.len()).enumerate() {
                if running_containers(&rp.data_dir) > 0 {
                    return n;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "no resource provider started the job\n{}",
                self.tails()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// GET http://HOST:PORT/PATH from the test's host: (status, body), or None if it does not
/// answer.
async fn get(url: &str) -> Option<(u16, String)> {
    let response = reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .ok()?;
    let status = response.status().as_u16();
    Some((status, response.text().await.ok()?))
}

/// Waits (at most 30 s) until `url` answers `status`; the body.
async fn wait_for_status(url: &str, status: u16) -> String {
    let started = Instant::now();
    loop {
        let got = get(url).await;
        if let Some((code, body)) = &got {
            if *code == status {
                return body.clone();
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{url} did not answer {status}: {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits for `run` to end and checks it succeeded and printed `cow`.
async fn finished(network: &Network, run: &mut Proc, cow: &str) {
    let status = run.wait(Duration::from_secs(300)).await;
    assert!(
        status.is_some_and(|s| s.success()),
        "{} ended {status:?}\n{}\n{}",
        run.name,
        run.tails(),
        network.tails()
    );
    assert!(
        run.last("stdout").contains(cow),
        "{} printed no {cow:?}: {}",
        run.name,
        run.last("stdout")
    );
}

/// The cases that run [`slow_module`]s, by module name.
const SLOW_CASES: [&str; 3] = ["link-cut", "solver-killed", "offline"];

/// A job that runs for a few seconds (busybox `sh`), so that a test can act while it runs.
fn slow_module(dir: &Path, name: &str) -> String {
    common::bacalhau::shell_module(
        &dir.join(name),
        &format!("sleep 6; echo '< {name} >'; echo {name} > /outputs/done"),
        120,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_network_of_hosts_behind_tls_survives_cut_links_and_killed_hosts() {
    let dir = tempfile::tempdir().unwrap();
    let mut network = Network::start(dir.path()).await;
    let prefix = network.hosts.prefix.clone();
    let reader = network.reader().await;
    let mut parties: Vec<Address> = vec![
        network.laptop_key.address(),
        network.mediator.address(),
        network.deployer.address(),
        network.payments,
    ];
    parties.extend(network.rps.iter().map(|(key, _)| key.address()));
    let before = common::balances(&reader, &parties).await;
    network.start_roles();

    // 1. A job, and 2. a disputed one the mediator re-runs.
    let mut run = network.run("happy", &["cowsay:v0.0.1", "-i", "Message=across hosts"]);
    finished(&network, &mut run, "< across hosts >").await;
    let mut run = network.run(
        "dispute",
        &[
            "cowsay:v0.0.1",
            "-i",
            "Message=checked",
            "--mediation-chance",
            "100",
        ],
    );
    finished(&network, &mut run, "< checked >").await;

    // 3. The RP host running the job loses its link for 10 s, then gets it back.
    let module = slow_module(dir.path(), "link-cut");
    let mut run = network.run("link-cut", &[&module]);
    let rp = network.rp_running_a_job().await;
    let rp_host = network.rps[rp].1.clone();
    network.hosts.link(&rp_host, false);
    tokio::time::sleep(Duration::from_secs(10)).await;
    network.hosts.link(&rp_host, true);
    finished(&network, &mut run, "< link-cut >").await;

    // 4. The solver host's solver is killed mid-job and started again on its data.
    let module = slow_module(dir.path(), "solver-killed");
    let mut run = network.run("solver-killed", &[&module]);
    network.rp_running_a_job().await;
    network.solver.kill().await;
    // Each RP's readiness follows its solver: 503 naming it while it is down.
    let rp_health = format!("http://{}:9461/health", network.hosts.address(31));
    let down = wait_for_status(&rp_health, 503).await;
    assert!(
        down.contains("\"ready\":false") && down.contains("the solver at https://"),
        "{down}"
    );
    assert!(
        down.contains("\"engine\":\"ok\"") && down.contains("\"chain\":\"ok\""),
        "{down}"
    );
    network.solver.start();
    wait_for_status(&rp_health, 200).await;
    finished(&network, &mut run, "< solver-killed >").await;

    // 5. The laptop goes offline after agreeing (and its `run` dies with it); the RP
    // submits the results meanwhile; back online, `lilypad run --resume ID` finishes.
    let module = slow_module(dir.path(), "offline");
    let mut run = network.run("offline", &[&module]);
    network.rp_running_a_job().await;
    let laptop = network.laptop.clone();
    network.hosts.link(&laptop, false);
    run.kill().await;
    let job = saved_job(&run.data_dir).expect("the run saved its job before agreeing");
    let solver = network.solver_client();
    let started = Instant::now();
    loop {
        let query = format!("job_creator={:?}", network.laptop_key.address());
        let deals = solver.deals(&query).await.unwrap();
        let submitted = deals.iter().any(|record| {
            record.deal.job_offer.id == job
                && DealState::try_from(record.state) == Ok(DealState::ResultsSubmitted)
        });
        if submitted {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the RP did not submit results while the laptop was offline\n{}",
            network.tails()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    network.hosts.link(&laptop, true);
    run.start();
    assert!(run.args[0] == "run" && run.starts == 2);
    finished(&network, &mut run, "< offline >").await;

    // Every deal is over on chain, as its case wants.
    let solver = network.solver_client();
    let rps: Vec<Address> = network.rps.iter().map(|(key, _)| key.address()).collect();
    let ends = deal_ends(&solver, &reader, &rps).await;
    let mut states: Vec<(String, DealState)> = ends
        .iter()
        .map(|(deal, state, _)| {
            let module = &deal.job_offer.module;
            let what = match deal.job_offer.inputs.get("Message") {
                Some(message) => message.clone(),
                None => SLOW_CASES
                    .iter()
                    .find(|case| module.contains(*case))
                    .map_or_else(|| module.clone(), |case| case.to_string()),
            };
            (what, *state)
        })
        .collect();
    states.sort_by(|a, b| a.0.cmp(&b.0));
    let mut wanted = vec![
        ("across hosts".to_string(), DealState::ResultsAccepted),
        ("checked".to_string(), DealState::MediationAccepted),
        ("link-cut".to_string(), DealState::ResultsAccepted),
        ("offline".to_string(), DealState::ResultsAccepted),
        ("solver-killed".to_string(), DealState::ResultsAccepted),
    ];
    wanted.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(states, wanted, "one deal per case, each ended as it should");

    // Money: each party moved by exactly what its deals' ends say; escrow is empty.
    let after = common::balances(&reader, &parties).await;
    let mut expected: HashMap<Address, i128> = HashMap::new();
    for (deal, state, instructions) in &ends {
        for (who, change) in settlement(deal, *state, *instructions) {
            let who = if who.is_zero() {
                network.deployer.address()
            } else {
                who
            };
            *expected.entry(who).or_default() += change;
        }
    }
    let changes = common::signed_changes(&before, &after);
    for (i, who) in parties.iter().enumerate() {
        assert_eq!(
            changes[i],
            expected.get(who).copied().unwrap_or(0),
            "balance change of {who:?} (wei)"
        );
    }
    assert_eq!(after[3], U256::zero(), "Payments holds nothing");

    // Every role's /health says ready, and /metrics has the role's counts, its chain calls
    // and the gas its transactions spent; the logs are JSON lines that name the deal.
    for (host, port) in [(31, 9461), (32, 9461), (40, 9462)] {
        let base = format!("http://{}:{port}", network.hosts.address(host));
        let health = wait_for_status(&format!("{base}/health"), 200).await;
        assert!(health.contains("\"ready\":true"), "{health}");
        let metrics = wait_for_status(&format!("{base}/metrics"), 200).await;
        for wanted in [
            "lilypad_chain_requests_total{method=\"eth_call\"}",
            "lilypad_work_steps_total{outcome=\"ok\"}",
            "# TYPE lilypad_work_in_flight gauge",
            "# EOF",
        ] {
            assert!(metrics.contains(wanted), "{base}: {wanted} in {metrics}");
        }
        if port == 9462 {
            assert!(
                metrics.contains("lilypad_mediator_verdicts{verdict=\"accept, finished\"} 1"),
                "{metrics}"
            );
        }
    }
    let mut gas = 0.0;
    for host in [31, 32] {
        let url = format!("http://{}:9461/metrics", network.hosts.address(host));
        let metrics = wait_for_status(&url, 200).await;
        assert!(
            metrics.contains("lilypad_rp_deals{stage=\"finished\"}"),
            "{metrics}"
        );
        gas += metrics
            .lines()
            .find_map(|line| line.strip_prefix("lilypad_transaction_gas_used_total "))
            .and_then(|value| value.trim().parse::<f64>().ok())
            .unwrap_or(0.0);
    }
    assert!(gas > 0.0, "the RPs count the gas of their transactions");
    let logs = network.roles[0].tails() + &network.roles[1].tails();
    assert!(
        logs.lines().any(|line| {
            serde_json::from_str::<serde_json::Value>(line)
                .is_ok_and(|entry| entry.to_string().contains("\"deal_id\""))
        }),
        "JSON log lines carry deal ids:\n{logs}"
    );

    // Everything reached the solver through nginx: requests and live event streams.
    let access = std::fs::read_to_string(dir.path().join("nginx-access.log")).unwrap();
    let upgrades = access
        .lines()
        .filter(|l| l.contains("/ws") && l.contains("\" 101 "))
        .count();
    let posts = access
        .lines()
        .filter(|l| l.contains("\"POST /api/v1/"))
        .count();
    assert!(
        upgrades >= 3,
        "event streams went through nginx: {upgrades}"
    );
    assert!(posts > 10, "offers and results went through nginx: {posts}");
    eprintln!(
        "hosts: deals {states:?}; LP changes {:?}; through nginx: {} requests, {upgrades} event streams",
        parties
            .iter()
            .zip(&changes)
            .map(|(who, wei)| format!("{who:?}: {:+}", *wei as f64 / common::LP as f64))
            .collect::<Vec<_>>(),
        access.lines().count()
    );

    // A profile whose chain id is not the chain's is refused before anything is sent.
    let mut wrong = lilypad::profile::Profile::find(&network.network_file, dir.path()).unwrap();
    wrong.chain_id = 1;
    let wrong_file = dir.path().join("wrong-chain.toml");
    wrong.write(&wrong_file).unwrap();
    let mut refused = Proc::new(
        "wrong-chain",
        &["run", "cowsay:v0.0.1", "-i", "Message=wrong chain"],
        &network.laptop_key,
        dir.path().join("laptop/wrong-chain"),
        vec![("LILYPAD_NETWORK".into(), wrong_file.display().to_string())],
    );
    refused.netns = Some(network.laptop.clone());
    refused.start();
    let status = refused.wait(Duration::from_secs(60)).await;
    assert!(status.is_some_and(|s| !s.success()), "{status:?}");
    assert!(
        refused
            .last("stderr")
            .contains("but network \"hosts\" expects chain 1"),
        "{}",
        refused.last("stderr")
    );

    // Clean-up: the processes stop, then every namespace goes.
    network.solver.stop().await;
    for role in &mut network.roles {
        role.stop().await;
    }
    drop(network);
    assert_eq!(Hosts::existing(&prefix), Vec::<String>::new());
}
