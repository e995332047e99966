//! A deployment on loopback for the integration tests: a CA, node
//! certificates and configuration files in a temporary directory, daemons
//! started in-process (or as child processes) on 127.0.0.1 port 0.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::future::Future;
use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tiersync_engine::{Name, Params, PolicyChange, Value};
use tiersync_net::clock::Clock;
use tiersync_net::config::{self, OperatorConfigFile};
use tiersync_net::daemon::Daemon;
use tiersync_net::ids::Role;
use tiersync_net::metrics::Metrics;
use tiersync_net::operator::{OpRequest, OpResponse, PolicySummary};
use tiersync_net::{pki, setup};

/// Bound on every wait in these tests.
pub const WAIT: Duration = Duration::from_secs(30);

/// Short timings, so that failures and reconnections happen in seconds.
pub const TRANSPORT: &str = r#"
[transport]
keepalive = "1s"
dead_after = "3s"
backoff_min = "100ms"
backoff_max = "1s"
shutdown_grace = "200ms"
"#;

/// A temporary deployment directory with its PKI.
pub struct Net {
    pub tmp: tempfile::TempDir,
}

impl Net {
    /// A CA, the master's certificate and an operator's. Logs go to the
    /// test's output when `RUST_LOG` is set.
    pub fn new() -> Net {
        if let Ok(filter) = std::env::var("RUST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_test_writer()
                .try_init();
        }
        let tmp = tempfile::tempdir().unwrap();
        let net = Net { tmp };
        pki::init(&net.pki()).unwrap();
        net.issue(Role::Master, "master", None);
        net.issue(Role::Operator, "admin", None);
        net
    }

    pub fn dir(&self) -> &Path {
        self.tmp.path()
    }

    pub fn pki(&self) -> PathBuf {
        self.dir().join("pki")
    }

    pub fn issue(&self, role: Role, name: &str, site: Option<&str>) {
        pki::issue(&self.pki(), role, name, site).unwrap();
    }

    /// The TLS files `name`'s certificate was issued into.
    pub fn files(&self, name: &str) -> config::TlsFiles {
        config::TlsFiles {
            ca: self.pki().join("ca.pem"),
            cert: self.pki().join(format!("{name}.pem")),
            key: self.pki().join(format!("{name}.key")),
        }
    }

    fn tls(&self, name: &str) -> String {
        format!("[tls]\nca = \"pki/ca.pem\"\ncert = \"pki/{name}.pem\"\nkey = \"pki/{name}.key\"\n")
    }

    fn write(&self, file: &str, text: String) -> PathBuf {
        let path = self.dir().join(file);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// `master.toml` with these local servers below.
    pub fn master_config(&self, children: &[&str]) -> PathBuf {
        self.master_config_at(children, any_port())
    }

    /// `master.toml` listening at `listen` (a restart keeps its port).
    pub fn master_config_at(&self, children: &[&str], listen: SocketAddr) -> PathBuf {
        let mut text = format!(
            "name = \"master\"\nsite = \"hq\"\nlisten = \"{listen}\"\n\
             data_dir = \"data/master\"\npolicy_signing_key = \"pki/policy-signing.key\"\n\
             status_deadline = \"2s\"\n{}{TRANSPORT}",
            self.tls("master")
        );
        for c in children {
            text += &format!("[[child]]\nname = \"{c}\"\nsite = \"{c}\"\n");
        }
        self.write("master.toml", text)
    }

    /// A local server's config; its site is its name.
    pub fn local_config(&self, name: &str, listen: SocketAddr, parent: SocketAddr) -> PathBuf {
        self.local_config_with(name, listen, parent, &[])
    }

    /// A local server's config with some transport settings replaced:
    /// `("dead_after", "\"30s\"")`.
    pub fn local_config_with(
        &self,
        name: &str,
        listen: SocketAddr,
        parent: SocketAddr,
        transport: &[(&str, &str)],
    ) -> PathBuf {
        if !self.pki().join(format!("{name}.pem")).exists() {
            self.issue(Role::Local, name, None);
        }
        let text = format!(
            "name = \"{name}\"\nsite = \"{name}\"\ntimezone = \"UTC\"\nlisten = \"{listen}\"\n\
             parent = \"{parent}\"\nparent_name = \"master\"\ndata_dir = \"data/{name}\"\n\
             policy_verify_key = \"pki/policy-signing.pub\"\npolicy_check = \"300ms\"\n\
             request_timeout = \"2s\"\n{}{}",
            self.tls(name),
            transport_with(transport)
        );
        self.write(&format!("{name}.toml"), text)
    }

    /// A client's config.
    pub fn client_config(
        &self,
        name: &str,
        site: &str,
        platform: &str,
        server: SocketAddr,
        server_name: &str,
    ) -> PathBuf {
        if !self.pki().join(format!("{name}.pem")).exists() {
            self.issue(Role::Client, name, Some(site));
        }
        let text = format!(
            "name = \"{name}\"\nsite = \"{site}\"\nplatform = \"{platform}\"\n\
             server = \"{server}\"\nserver_name = \"{server_name}\"\ndata_dir = \"data/{name}\"\n\
             policy_verify_key = \"pki/policy-signing.pub\"\npoll = \"300ms\"\nsplay = \"100ms\"\n\
             status_every = \"300ms\"\n{}{TRANSPORT}",
            self.tls(name)
        );
        self.write(&format!("{name}.toml"), text)
    }

    /// The operator's config, pointing at `server`.
    pub fn operator(&self, server: SocketAddr, server_name: &str) -> OperatorConfigFile {
        let text = format!(
            "server = \"{server}\"\nserver_name = \"{server_name}\"\ntimeout = \"10s\"\n{}",
            self.tls("admin")
        );
        let path = self.write("operator.toml", text);
        config::load(&path).unwrap()
    }

    pub async fn start_master(&self, children: &[&str]) -> Node {
        self.start_master_from(&self.master_config(children)).await
    }

    pub async fn start_master_from(&self, path: &Path) -> Node {
        let cfg = config::load(path).unwrap();
        let metrics = Metrics::new();
        let setup = setup::master(&cfg, Clock::wall(), metrics.clone()).unwrap();
        Node::started(setup, metrics).await
    }

    pub async fn start_local(&self, name: &str, listen: SocketAddr, parent: SocketAddr) -> Node {
        self.start_local_from(&self.local_config(name, listen, parent)).await
    }

    pub async fn start_local_from(&self, path: &Path) -> Node {
        let cfg = config::load(path).unwrap();
        let metrics = Metrics::new();
        let setup = setup::local(&cfg, Clock::wall(), metrics.clone()).unwrap();
        Node::started(setup, metrics).await
    }

    /// Starts a client of `site`, whose local server (named after the
    /// site) listens at `server`.
    pub async fn start_client(
        &self,
        name: &str,
        site: &str,
        platform: &str,
        server: SocketAddr,
    ) -> Node {
        let path = self.client_config(name, site, platform, server, site);
        self.start_client_from(&path).await
    }

    pub async fn start_client_from(&self, path: &Path) -> Node {
        let cfg = config::load(path).unwrap();
        let metrics = Metrics::new();
        let setup = setup::client(&cfg, Clock::wall(), metrics.clone()).unwrap();
        Node::started(setup, metrics).await
    }
}

/// A daemon running in this process, with its counters.
pub struct Node {
    pub daemon: Daemon,
    pub metrics: Arc<Metrics>,
}

impl Node {
    async fn started(setup: tiersync_net::daemon::NodeSetup, metrics: Arc<Metrics>) -> Node {
        Node { daemon: Daemon::start(setup).await.unwrap(), metrics }
    }

    pub fn addr(&self) -> SocketAddr {
        self.daemon.local_addr().unwrap()
    }

    pub async fn op(&self, req: OpRequest) -> OpResponse {
        self.daemon.operator(req).await
    }

    /// The policies this node holds (or, for a client, enforces).
    pub async fn policies(&self) -> BTreeMap<String, PolicySummary> {
        match self.op(OpRequest::ListPolicies).await {
            OpResponse::Policies(list) => list.into_iter().map(|p| (p.id.clone(), p)).collect(),
            other => panic!("list: {other:?}"),
        }
    }

    /// The revision of `policy` held here, if any.
    pub async fn revision(&self, policy: &str) -> Option<u64> {
        self.policies().await.get(policy).map(|p| p.revision)
    }

    pub async fn stop(self) {
        self.daemon.stop();
        self.daemon.wait().await.unwrap();
    }
}

/// Polls `check` every 100 ms until it holds; panics after [`WAIT`].
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A policy change creating `id` for `platforms`.
pub fn policy(id: &str, platforms: &[&str], params: &[(&str, &str)]) -> PolicyChange {
    let params: Params =
        params.iter().map(|(k, v)| (k.to_string(), Value::Str(v.to_string()))).collect();
    PolicyChange {
        id: Name::new(id),
        params: Some(params),
        content: Some(tiersync_engine::Blob::from_bytes(format!("{id} content").into_bytes())),
        platforms: Some(platforms.iter().map(|p| Name::new(p)).collect()),
        ..Default::default()
    }
}

/// Sets a policy at a node and returns the answer.
pub async fn set(node: &Node, change: PolicyChange) -> OpResponse {
    node.op(OpRequest::SetPolicy { change, platform: None }).await
}

/// Any free port's address on loopback, for a server started next.
pub fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Writes `text` before the first line of the file at `path`: top-level
/// keys of a configuration must precede its tables.
pub fn prepend(path: &Path, text: &str) {
    let old = std::fs::read_to_string(path).unwrap();
    std::fs::write(path, format!("{text}{old}")).unwrap();
}

/// [`TRANSPORT`] with some settings replaced.
pub fn transport_with(changes: &[(&str, &str)]) -> String {
    let mut text = TRANSPORT.to_string();
    for (key, value) in changes {
        let line = text.lines().find(|l| l.starts_with(&format!("{key} = "))).map(str::to_string);
        match line {
            Some(old) => text = text.replace(&old, &format!("{key} = {value}")),
            None => text += &format!("{key} = {value}\n"),
        }
    }
    text
}

/// A daemon running as a child process (see [`node_command`]), killed when
/// dropped: a test that panics leaves no process behind.
pub struct Proc {
    child: Option<Child>,
    pub log: PathBuf,
}

impl Proc {
    /// Starts the daemon `role` on `config`, its log appended to `log`, and
    /// waits until it has started: a server until it listens (its address
    /// is returned), a client until it logs its start.
    pub fn spawn(role: &str, config: &Path, log: &Path) -> (Proc, Option<SocketAddr>) {
        let before = std::fs::read_to_string(log).map(|t| t.len()).unwrap_or(0);
        let log_file = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
        let child = node_command(role, config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .unwrap();
        let proc = Proc { child: Some(child), log: log.to_owned() };
        let marker = if role == "client" { "starting node=" } else { "listening addr=" };

        // Polled every 50 ms, up to WAIT in all.
        for _ in 0..WAIT.as_millis() / 50 {
            let text = std::fs::File::open(log).map(BufReader::new).unwrap();
            let mut seen = 0;
            for line in text.lines().map_while(Result::ok) {
                seen += line.len() + 1;
                if seen <= before {
                    continue;
                }
                if let Some(at) = line.find(marker) {
                    let addr = line[at + marker.len()..].trim().parse().ok();
                    return (proc, addr);
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{role} {} did not start", config.display());
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// SIGKILL, and wait for it to be gone.
    pub fn kill_9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// Sends SIGTERM, and returns at once.
    pub fn send_term(&self) {
        let status = Command::new("kill").args(["-TERM", &self.pid().to_string()]).status();
        assert!(status.is_ok_and(|s| s.success()), "kill -TERM failed");
    }

    /// The exit status, if the process has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        let status = self.child.as_mut()?.try_wait().unwrap()?;
        self.child = None;
        Some(status)
    }

    /// Waits up to `bound` for the process to exit.
    pub fn wait_exit(&mut self, bound: Duration) -> Option<ExitStatus> {
        for _ in 0..bound.as_millis() / 20 {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// SIGTERM, then wait up to `bound` for it to exit.
    pub fn terminate(&mut self, bound: Duration) -> Option<ExitStatus> {
        self.send_term();
        self.wait_exit(bound)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The command that runs daemon `role` on the configuration file `config`.
///
/// This module serves the tests of two packages, and Cargo names only a
/// test's own package's binaries: the `tiersync-net` tests run
/// `tiersync-node ROLE CONFIG`, those of the root package (which include
/// this file by path) `tiersync ROLE --config CONFIG`, the same daemon
/// behind the command line users run.
pub fn node_command(role: &str, config: &Path) -> Command {
    if let Some(node) = option_env!("CARGO_BIN_EXE_tiersync-node") {
        let mut cmd = Command::new(node);
        cmd.arg(role).arg(config);
        cmd
    } else if let Some(cli) = option_env!("CARGO_BIN_EXE_tiersync") {
        let mut cmd = Command::new(cli);
        cmd.arg(role).arg("--config").arg(config);
        cmd
    } else {
        panic!("no daemon binary: include this module only from the net or root package's tests")
    }
}
