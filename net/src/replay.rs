//! Many engine nodes as daemons in one process, over loopback TLS, with
//! the engine's clock running faster than real time: the machinery of
//! `tiersync replay`.
//!
//! This module knows nothing of scenarios (the TCP runtime never depends
//! on the simulator): its caller builds the engine nodes and the timed
//! operator actions, and [`run`] issues one certificate per node into a
//! temporary directory, starts every node as a [`Daemon`] with an
//! in-memory store, lets every child connect before the first engine
//! instant, runs each action at its engine time, and returns what every
//! node wrote to and read from each peer: application frames per message
//! kind, and the bytes that crossed the TCP sockets.
//!
//! Time: one [`Clock`] for every node, frozen at the start instant until
//! the connections are up, then running `speedup` times faster than real
//! time. Engine deadlines shrink with it (at 3600x a 30 s status deadline
//! is 8 ms of real time), while the transport's own timers (keepalive,
//! dead peer, backoff, handshake) stay in real time: a replay of a day at
//! 3600x lasts 24 s, in which a keepalive or two is sent on an idle
//! connection and nothing times out.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tiersync_engine::{Node, NodeId, Revision, Time};
use tokio::time::sleep_until;

use crate::clock::{Clock, monotonic};
use crate::config::{TlsFiles, Transport};
use crate::conn::{Access, ParentLink};
use crate::daemon::{Daemon, DaemonError, NodeSetup, OperatorHandle, Persist};
use crate::ids::Role;
use crate::metrics::{Direction, Metrics};
use crate::operator::{OpRequest, OpResponse, PolicySummary};
use crate::pki::{self, PkiError};
use crate::store::{Store, StoreError};

/// Why a replay could not run.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The nodes or actions given do not form a deployment.
    #[error("{0}")]
    Invalid(String),
    /// Certificates could not be issued or loaded.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// An in-memory store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A daemon failed to start or stopped on an error.
    #[error("node `{node}`: {source}")]
    Daemon {
        /// The node.
        node: String,
        /// What failed.
        source: DaemonError,
    },
    /// The temporary directory or the runtime could not be made.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Not every child connected within the time allowed.
    #[error("only {up} of {want} connections came up within {waited:?}")]
    NotConnected {
        /// Connections up.
        up: u64,
        /// Connections expected.
        want: u64,
        /// How long it waited.
        waited: Duration,
    },
}

/// One node of a replay.
#[derive(Debug)]
pub struct ReplayNode {
    /// Its certificate name (a DNS name: lower-case letters, digits, `-`,
    /// `.`); traffic is reported under it.
    pub name: String,
    /// Master, local server or client.
    pub role: Role,
    /// Its site (written into local and client certificates).
    pub site: String,
    /// The engine node, freshly built; its id is the one its peers know.
    pub node: Node,
    /// Its parent's name: `None` for the master only.
    pub parent: Option<String>,
}

/// An operator request made at one node at one engine instant.
#[derive(Clone, Debug)]
pub struct ReplayAction {
    /// When, in engine time. Actions at or before the start run before the
    /// clock starts, in the order given.
    pub at: Time,
    /// The node it is made at, by name.
    pub node: String,
    /// The request.
    pub req: OpRequest,
}

/// What to replay.
#[derive(Debug)]
pub struct ReplaySpec {
    /// Every node.
    pub nodes: Vec<ReplayNode>,
    /// Operator actions, in time order.
    pub actions: Vec<ReplayAction>,
    /// The engine time at which the clock starts.
    pub start: Time,
    /// The engine time at which traffic is read and the nodes stop.
    pub end: Time,
    /// Engine seconds per real second.
    pub speedup: u32,
    /// Connection bounds and timings (real time).
    pub transport: Transport,
}

/// Frames of one kind sent from one node to another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameTraffic {
    /// The node that wrote them (for `received`, the node that read them).
    pub node: String,
    /// The peer at the other end.
    pub peer: String,
    /// Message kind (`keepalive` for the transport's keepalives).
    pub kind: &'static str,
    /// Frame bytes.
    pub bytes: u64,
    /// Frames.
    pub messages: u64,
}

/// Bytes one node wrote to its TCP sockets with one peer: TLS handshake,
/// records and alerts, everything but the TCP/IP headers the kernel adds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocketTraffic {
    /// The writing node.
    pub node: String,
    /// The peer.
    pub peer: String,
    /// Bytes written.
    pub written: u64,
    /// Sessions opened with this peer (more than one is a reconnection).
    pub sessions: u64,
}

/// The answer to one action.
#[derive(Debug)]
pub struct ActionAnswer {
    /// Index of the action in [`ReplaySpec::actions`].
    pub action: usize,
    /// Real time between the action's instant and its request reaching the
    /// daemon's queue.
    pub late: Duration,
    /// The answer.
    pub response: OpResponse,
}

/// What a replay measured.
#[derive(Debug)]
pub struct ReplayOutcome {
    /// Frames written, per writer, peer and kind, keepalives included.
    pub sent: Vec<FrameTraffic>,
    /// Frames read, per reader, peer and kind.
    pub received: Vec<FrameTraffic>,
    /// Socket bytes written, per writer and peer.
    pub sockets: Vec<SocketTraffic>,
    /// One answer per action.
    pub answers: Vec<ActionAnswer>,
    /// The policies every node holds at the end (a client: enforces).
    pub policies: BTreeMap<String, Vec<PolicySummary>>,
    /// Real seconds from the first daemon's start until every child was
    /// connected.
    pub connect_seconds: f64,
    /// Whether that happened before the clock started.
    pub connected_before_start: bool,
    /// Real seconds of the replay proper, from the clock's start.
    pub replay_seconds: f64,
}

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<TempDir, ReplayError> {
        let base = std::env::temp_dir();
        for n in 0..1000u32 {
            let dir = base.join(format!("tiersync-replay-{}-{n}", std::process::id()));
            match std::fs::create_dir(&dir) {
                Ok(()) => return Ok(TempDir(dir)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(source) => {
                    return Err(ReplayError::Io {
                        what: format!("create {}", dir.display()),
                        source,
                    });
                }
            }
        }
        let source = std::io::Error::other("no free name");
        Err(ReplayError::Io { what: "create a temporary directory".into(), source })
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The soft limit on open files, from `/proc/self/limits` where there is
/// one.
fn open_files_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Runs a replay to its end and returns what it measured. Blocks; makes a
/// runtime of its own.
pub fn run(spec: ReplaySpec) -> Result<ReplayOutcome, ReplayError> {
    check(&spec)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| ReplayError::Io { what: "start the runtime".into(), source })?;
    runtime.block_on(run_async(spec))
}

/// Checks names, parents and actions, and that the process may open a
/// socket pair per child.
fn check(spec: &ReplaySpec) -> Result<(), ReplayError> {
    let names: BTreeSet<&str> = spec.nodes.iter().map(|n| n.name.as_str()).collect();
    if names.len() != spec.nodes.len() {
        return Err(ReplayError::Invalid("two nodes have the same name".into()));
    }
    let masters = spec.nodes.iter().filter(|n| n.role == Role::Master).count();
    if masters != 1 {
        return Err(ReplayError::Invalid(format!("a replay needs one master, not {masters}")));
    }
    for n in &spec.nodes {
        if !crate::ids::valid_name(&n.name) {
            return Err(ReplayError::Invalid(format!("`{}` is not a DNS name", n.name)));
        }
        match (&n.parent, n.role) {
            (None, Role::Master) => {}
            (Some(p), Role::Local | Role::Client) if names.contains(p.as_str()) => {}
            (p, role) => {
                return Err(ReplayError::Invalid(format!(
                    "{role} `{}` has parent {p:?}, which is not a server of the replay",
                    n.name
                )));
            }
        }
    }
    if let Some(a) = spec.actions.iter().find(|a| !names.contains(a.node.as_str())) {
        return Err(ReplayError::Invalid(format!("an action names no node: `{}`", a.node)));
    }

    // Each child holds two sockets of this process, one at each end.
    let need = 2 * spec.nodes.len() as u64 + 64;
    if let Some(limit) = open_files_limit()
        && limit < need
    {
        return Err(ReplayError::Invalid(format!(
            "{} nodes need about {need} open files, but the limit is {limit}: raise it \
             (`ulimit -n {need}`) or replay fewer clients",
            spec.nodes.len()
        )));
    }
    Ok(())
}

fn tls_files(dir: &Path, name: &str) -> TlsFiles {
    TlsFiles {
        ca: dir.join("ca.pem"),
        cert: dir.join(format!("{name}.pem")),
        key: dir.join(format!("{name}.key")),
    }
}

/// A running node of the replay.
struct Running {
    name: String,
    daemon: Daemon,
    ops: OperatorHandle,
    metrics: Arc<Metrics>,
    /// Children expected to connect (servers).
    children: u64,
}

async fn run_async(spec: ReplaySpec) -> Result<ReplayOutcome, ReplayError> {
    let ReplaySpec { nodes, actions, start, end, speedup, transport } = spec;

    // One certificate per node.
    let tmp = TempDir::new()?;
    let dir = tmp.0.join("pki");
    pki::init(&dir)?;
    for n in &nodes {
        let site = (n.role != Role::Master).then_some(n.site.as_str());
        pki::issue(&dir, n.role, &n.name, site)?;
    }

    // Who is below whom, and every node's id.
    let ids: Arc<BTreeMap<String, NodeId>> =
        Arc::new(nodes.iter().map(|n| (n.name.clone(), n.node.id())).collect());
    let all_names: BTreeMap<NodeId, String> = ids.iter().map(|(n, id)| (*id, n.clone())).collect();
    let mut child_servers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut client_sites: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut children: BTreeMap<String, u64> = BTreeMap::new();
    for n in &nodes {
        if let Some(p) = &n.parent {
            *children.entry(p.clone()).or_default() += 1;
            match n.role {
                Role::Local => child_servers.entry(p.clone()).or_default().push(n.name.clone()),
                _ => {
                    client_sites.entry(p.clone()).or_default().insert(n.site.clone());
                }
            }
        }
    }

    // Servers start parents first, so that each child knows the port its
    // parent got; clients last. The clock starts once all could connect.
    let (mut rest, clients): (Vec<ReplayNode>, Vec<ReplayNode>) =
        nodes.into_iter().partition(|n| n.role != Role::Client);
    let mut order: Vec<ReplayNode> = Vec::with_capacity(rest.len() + clients.len());
    let mut placed: BTreeSet<String> = BTreeSet::new();
    while !rest.is_empty() {
        let (ready, wait): (Vec<_>, Vec<_>) =
            rest.into_iter().partition(|n| n.parent.as_ref().is_none_or(|p| placed.contains(p)));
        if ready.is_empty() {
            return Err(ReplayError::Invalid("the parents of some servers form a cycle".into()));
        }
        placed.extend(ready.iter().map(|n| n.name.clone()));
        order.extend(ready);
        rest = wait;
    }
    order.extend(clients);
    let lead = Duration::from_millis(1500 + 5 * order.len() as u64);
    let began = monotonic();
    let clock = Clock::starting_at(start, speedup, began + lead);

    let mut addrs: BTreeMap<String, SocketAddr> = BTreeMap::new();
    let mut running: Vec<Running> = Vec::with_capacity(order.len());
    for n in order {
        let files = tls_files(&dir, &n.name);
        let metrics = Metrics::new();
        let is_server = n.role != Role::Client;
        let listen = if is_server {
            let access = Access {
                children: child_servers.get(&n.name).cloned().unwrap_or_default(),
                client_sites: client_sites
                    .get(&n.name)
                    .map(|s| s.iter().cloned().collect())
                    .unwrap_or_default(),
                ids: Arc::clone(&ids),
            };
            let any: SocketAddr = ([127, 0, 0, 1], 0).into();
            Some((any, pki::server_config(&files)?, access))
        } else {
            None
        };
        let parent = match &n.parent {
            Some(p) => {
                let addr = addrs.get(p).ok_or_else(|| {
                    ReplayError::Invalid(format!(
                        "`{}` has a parent that is no server: `{p}`",
                        n.name
                    ))
                })?;
                let link = ParentLink { addr: addr.to_string(), name: p.clone(), id: ids[p] };
                Some((link, pki::client_config(&files)?))
            }
            None => None,
        };

        // The master knows every name (status drill-downs name clients);
        // others their own, their parent's and their children's.
        let names = if n.role == Role::Master {
            all_names.clone()
        } else {
            let own = n.node.id();
            all_names
                .iter()
                .filter(|(id, name)| {
                    **id == own
                        || Some(*name) == n.parent.as_ref()
                        || child_servers.get(&n.name).is_some_and(|c| c.contains(name))
                })
                .map(|(id, name)| (*id, name.clone()))
                .collect()
        };
        let persist = match n.role {
            Role::Master => Persist::Master {
                store: Store::in_memory(Role::Master, &n.name)?,
                history_len: 0,
                next_proposal: 1,
            },
            Role::Local => Persist::Local {
                store: Store::in_memory(Role::Local, &n.name)?,
                policies: BTreeMap::new(),
                upto: Revision(0),
                proposals: Vec::new(),
                seq: (0, 0),
                names: BTreeMap::new(),
            },
            _ => Persist::Client {
                store: Store::in_memory(Role::Client, &n.name)?,
                applied: BTreeMap::new(),
                meta: (Revision(0), 0, 0, Time(0)),
            },
        };
        let seed = u64::from(n.node.id().0);
        let setup = NodeSetup {
            name: n.name.clone(),
            node: n.node,
            persist,
            listen,
            parent,
            transport: transport.clone(),
            clock,
            metrics: Arc::clone(&metrics),
            names,
            // Ids come from the caller, one per name; the nodes bring their
            // own client admission.
            bindings: BTreeMap::new(),
            cert_sites: None,
            seed,
            fetch_on_connect: false,
        };
        let daemon = Daemon::start(setup)
            .await
            .map_err(|source| ReplayError::Daemon { node: n.name.clone(), source })?;
        if let Some(addr) = daemon.local_addr() {
            addrs.insert(n.name.clone(), addr);
        }
        let ops = daemon.operator_handle();
        let want = children.get(&n.name).copied().unwrap_or(0);
        running.push(Running { name: n.name, daemon, ops, metrics, children: want });
    }

    // Every child connected, then the actions due at the start.
    let want: u64 = running.iter().map(|r| r.children).sum();
    let allowed = lead + Duration::from_secs(30);
    loop {
        let up: u64 = running.iter().map(|r| r.metrics.connected_children().min(r.children)).sum();
        if up == want {
            break;
        }
        if monotonic() > began + allowed {
            return Err(ReplayError::NotConnected { up, want, waited: allowed });
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let connected = monotonic();
    let connected_before_start = connected < began + lead;
    let by_name: BTreeMap<String, OperatorHandle> =
        running.iter().map(|r| (r.name.clone(), r.ops.clone())).collect();
    let mut answers = Vec::with_capacity(actions.len());
    let mut timed = tokio::task::JoinSet::new();
    for (i, a) in actions.into_iter().enumerate() {
        let ops = by_name[&a.node].clone();
        if a.at <= start {
            let response = ops.operator(a.req).await;
            answers.push(ActionAnswer { action: i, late: Duration::ZERO, response });
            continue;
        }
        let due = clock.instant_at(a.at);
        timed.spawn(async move {
            sleep_until(due).await;
            let late = monotonic().saturating_duration_since(due);
            ActionAnswer { action: i, late, response: ops.operator(a.req).await }
        });
    }

    // The run, to its end; traffic is read at the end instant.
    let started = clock.instant_at(start);
    sleep_until(clock.instant_at(end)).await;
    let mut sent = Vec::new();
    let mut received = Vec::new();
    let mut sockets = Vec::new();
    for r in &running {
        for (peer, dir, kind, bytes, messages) in r.metrics.all_frames() {
            let t = FrameTraffic { node: r.name.clone(), peer, kind, bytes, messages };
            match dir {
                Direction::Out => sent.push(t),
                Direction::In => received.push(t),
            }
        }
        for (peer, written, _) in r.metrics.sockets() {
            let sessions = r.metrics.sessions(&peer);
            sockets.push(SocketTraffic { node: r.name.clone(), peer, written, sessions });
        }
    }
    let replay_seconds = monotonic().saturating_duration_since(started).as_secs_f64();

    // What each node holds, then a clean stop of everything.
    while let Some(a) = timed.join_next().await {
        if let Ok(a) = a {
            answers.push(a);
        }
    }
    answers.sort_by_key(|a| a.action);
    let mut policies = BTreeMap::new();
    for r in &running {
        if let OpResponse::Policies(list) = r.ops.operator(OpRequest::ListPolicies).await {
            policies.insert(r.name.clone(), list);
        }
    }
    // Children stop before their parents (clients first, the master
    // last), so that what they have in flight is still answered.
    for r in running.into_iter().rev() {
        r.daemon.stop();
        r.daemon.wait().await.map_err(|source| ReplayError::Daemon { node: r.name, source })?;
    }
    drop(tmp);
    Ok(ReplayOutcome {
        sent,
        received,
        sockets,
        answers,
        policies,
        connect_seconds: connected.saturating_duration_since(began).as_secs_f64(),
        connected_before_start,
        replay_seconds,
    })
}
