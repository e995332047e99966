//! The driver: one engine node, its store, its timers and its connections.
//!
//! A daemon is one task that owns the node and feeds it, in order, every
//! [`Event`] its connections report and every timer that falls due. After
//! each `handle_*` call it drains the node's [`Outbox`] in a fixed order:
//!
//! 1. observations, from which it learns what changed;
//! 2. it commits those changes to the store, in one transaction;
//! 3. only then does it queue the messages, so no acknowledgement (a
//!    `ReportAck`, a `Policies` reply acknowledging statistics, an
//!    `Accepted`) leaves before what it acknowledges is on disk;
//! 4. it arms the timers and logs the observations.
//!
//! A store error stops the daemon: the node's memory may then be ahead of
//! its disk, and the only safe continuation is a restart from the disk.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use thiserror::Error;
use tiersync_engine::message::{ErrorCode, Scope};
use tiersync_engine::outbox::{Observation, Rejection, StatusAnswer};
use tiersync_engine::stats::SiteStats;
use tiersync_engine::{
    Message, MessageKind, Name, Node, NodeId, Outbox, PolicyId, Revision, StatusKind, Time, Timer,
    codec,
};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio::time::{sleep, sleep_until};
use tracing::{debug, error, info, trace, warn};

use crate::clock::{Clock, monotonic};
use crate::config::Transport;
use crate::conn::{self, Access, CertifiedSites, ConnCtx, Event, Outgoing, ParentLink};
use crate::ids::node_id;
use crate::metrics::Metrics;
use crate::operator::{
    ClientRow, OpRequest, OpResponse, OpScope, PolicyDetail, PolicySummary, SetOutcome, SiteRow,
    StatusView, time_text,
};
use crate::pki::hex;
use crate::store::{AssignedRevision, LocalDelta, Store, StoreError};

/// Messages for the parent kept while it is unreachable, sent on
/// reconnection; older ones are dropped first (the engine asks again).
/// They are also bounded by `send_queue_bytes` together.
const PARENT_QUEUE: usize = 256;

/// Why a daemon stopped with an error.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DaemonError {
    /// The store failed; the daemon stopped so that a restart resumes from
    /// what is on disk.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The driver's task ended abnormally (a bug).
    #[error("daemon task failed: {0}")]
    Task(String),
}

/// What a daemon persists, with what it last committed so that each commit
/// writes only what changed.
#[derive(Debug)]
pub enum Persist {
    /// A master's store.
    Master {
        /// The store.
        store: Store,
        /// Uploads already committed.
        history_len: usize,
        /// The next proposal id for an operator's change at the master.
        next_proposal: u64,
    },
    /// A local server's store.
    Local {
        /// The store.
        store: Store,
        /// Revision committed per policy.
        policies: BTreeMap<PolicyId, Revision>,
        /// Revision committed.
        upto: Revision,
        /// Proposal ids committed.
        proposals: Vec<u64>,
        /// Upload sequence numbers committed.
        seq: (u64, u64),
        /// Names of the clients whose reports are committed.
        names: BTreeMap<NodeId, String>,
    },
    /// A client's store.
    Client {
        /// The store.
        store: Store,
        /// Revision committed per applied policy.
        applied: BTreeMap<PolicyId, Revision>,
        /// Revision, threats, refusals and last scan committed.
        meta: (Revision, u32, u32, Time),
    },
}

impl Persist {
    /// The store, whatever the role.
    fn store_mut(&mut self) -> &mut Store {
        match self {
            Persist::Master { store, .. }
            | Persist::Local { store, .. }
            | Persist::Client { store, .. } => store,
        }
    }
}

/// Everything a daemon runs with.
#[derive(Debug)]
pub struct NodeSetup {
    /// This node's certificate name.
    pub name: String,
    /// The engine node, restored from the store.
    pub node: Node,
    /// Its store.
    pub persist: Persist,
    /// Where servers listen, their TLS set-up and who may connect.
    pub listen: Option<(SocketAddr, Arc<rustls::ServerConfig>, Access)>,
    /// Where a child connects, and its TLS set-up.
    pub parent: Option<(ParentLink, Arc<rustls::ClientConfig>)>,
    /// Connection bounds.
    pub transport: Transport,
    /// The engine's clock.
    pub clock: Clock,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Names of known peers, for logs and counters.
    pub names: BTreeMap<NodeId, String>,
    /// The name each node id is bound to, as committed in the store: this
    /// node's own, its parent's and children's from the configuration, and
    /// every peer's admitted since the store was made. A peer whose name
    /// maps to an id bound to another name (two names, one 32-bit hash) is
    /// refused, so that it cannot overwrite the other's state.
    pub bindings: BTreeMap<NodeId, String>,
    /// The site in each admitted client's certificate, which the engine's
    /// admission check of this node reads; `None` when the node has no
    /// such check (`tiersync replay`).
    pub cert_sites: Option<Arc<CertifiedSites>>,
    /// Seed of the reconnection jitter.
    pub seed: u64,
    /// Whether a child asks its parent for news as soon as it connects (a
    /// local server fetches, a client polls). Daemons do, so that a node
    /// coming back is current at once; `tiersync replay` does not, since
    /// the simulator's nodes know nothing of connections.
    pub fetch_on_connect: bool,
}

/// Stops a daemon cleanly, like [`Daemon::stop`].
#[derive(Clone, Debug)]
pub struct Stopper(Arc<watch::Sender<bool>>);

impl Stopper {
    /// Asks the daemon to stop.
    pub fn stop(&self) {
        self.0.send_replace(true);
    }
}

/// Runs operator requests against a daemon, like [`Daemon::operator`].
#[derive(Clone, Debug)]
pub struct OperatorHandle(mpsc::Sender<Event>);

impl OperatorHandle {
    /// Runs an operator request in-process.
    pub async fn operator(&self, req: OpRequest) -> OpResponse {
        let (reply, rx) = oneshot::channel();
        if self.0.send(Event::Operator { req, reply }).await.is_err() {
            return OpResponse::Error("the daemon has stopped".into());
        }
        rx.await.unwrap_or_else(|_| OpResponse::Error("the daemon has stopped".into()))
    }
}

/// A running daemon.
#[derive(Debug)]
pub struct Daemon {
    local_addr: Option<SocketAddr>,
    events: mpsc::Sender<Event>,
    shutdown: Arc<watch::Sender<bool>>,
    task: tokio::task::JoinHandle<Result<(), DaemonError>>,
}

impl Daemon {
    /// Binds the listen address (if any), starts the node and its
    /// connections, and returns at once.
    pub async fn start(setup: NodeSetup) -> Result<Daemon, DaemonError> {
        let listener = match &setup.listen {
            Some((addr, _, _)) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| DaemonError::Bind { addr: *addr, source })?,
            ),
            None => None,
        };
        let local_addr = listener.as_ref().and_then(|l| l.local_addr().ok());
        let (events, rx) = mpsc::channel(4096);
        let shutdown = Arc::new(watch::Sender::new(false));
        let task = tokio::spawn(supervise(setup, listener, events.clone(), rx, shutdown.clone()));
        Ok(Daemon { local_addr, events, shutdown, task })
    }

    /// The address the daemon listens on (with the real port when the
    /// configuration asked for port 0).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// Runs an operator request in-process, as an operator connection
    /// would.
    pub async fn operator(&self, req: OpRequest) -> OpResponse {
        let (reply, rx) = oneshot::channel();
        if self.events.send(Event::Operator { req, reply }).await.is_err() {
            return OpResponse::Error("the daemon has stopped".into());
        }
        rx.await.unwrap_or_else(|_| OpResponse::Error("the daemon has stopped".into()))
    }

    /// A handle that runs operator requests from elsewhere (another task).
    pub fn operator_handle(&self) -> OperatorHandle {
        OperatorHandle(self.events.clone())
    }

    /// Asks the daemon to stop cleanly: stop accepting, wait (at most
    /// `shutdown_grace`) until the exchanges it started are answered,
    /// flush, close.
    pub fn stop(&self) {
        self.shutdown.send_replace(true);
    }

    /// A handle that stops the daemon from elsewhere (a signal handler).
    pub fn stopper(&self) -> Stopper {
        Stopper(Arc::clone(&self.shutdown))
    }

    /// Waits for the daemon to stop.
    pub async fn wait(self) -> Result<(), DaemonError> {
        match self.task.await {
            Ok(r) => r,
            Err(e) => Err(DaemonError::Task(e.to_string())),
        }
    }

    /// Stops the daemon at once, flushing nothing: the in-process
    /// equivalent of a crash (what is committed stays committed).
    pub fn abort(self) {
        self.task.abort();
    }
}

async fn supervise(
    setup: NodeSetup,
    listener: Option<TcpListener>,
    events: mpsc::Sender<Event>,
    mut rx: mpsc::Receiver<Event>,
    shutdown: Arc<watch::Sender<bool>>,
) -> Result<(), DaemonError> {
    let ctx = ConnCtx {
        events,
        transport: setup.transport.clone(),
        metrics: Arc::clone(&setup.metrics),
        next_conn: Arc::default(),
    };

    // Connections first, so that the node's first messages find them.
    let mut tasks = JoinSet::new();
    if let (Some(listener), Some((_, tls, access))) = (listener, &setup.listen) {
        let accept = conn::accept_loop(
            listener,
            Arc::clone(tls),
            access.clone(),
            ctx.clone(),
            shutdown.subscribe(),
        );
        tasks.spawn(accept);
    }
    if let Some((link, tls)) = &setup.parent {
        let dial = conn::dial_loop(
            link.clone(),
            Arc::clone(tls),
            ctx.clone(),
            shutdown.subscribe(),
            setup.seed,
        );
        tasks.spawn(dial);
    }
    drop(ctx);

    // Then the node, until it stops.
    let mut stop = shutdown.subscribe();
    let mut driver = Driver::new(setup);
    let result = match driver.start() {
        Ok(()) => driver.run(&mut rx, &mut stop).await,
        Err(e) => Err(e),
    };
    if let Err(e) = &result {
        error!(error = %e, "daemon stopping on error");
    }

    // Close every connection after its queue is written, then wait a
    // bounded time for the connection tasks.
    shutdown.send_replace(true);
    drop(driver);
    drop(rx);
    let drained = tokio::time::timeout(Duration::from_secs(5), async {
        while tasks.join_next().await.is_some() {}
    });
    if drained.await.is_err() {
        warn!("connections did not close in time; dropping them");
    }
    info!("stopped");
    result
}

struct Link {
    conn: u64,
    tx: mpsc::Sender<Outgoing>,
    /// Bytes queued on `tx`, not yet written.
    queued: Arc<AtomicUsize>,
    /// Ends the session.
    close: Arc<tokio::sync::Notify>,
}

/// An exchange this node started and whose answer it waits for; a
/// stopping daemon waits for these to finish.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Exchange {
    /// `Sync` or `Check`, answered by `Policies`.
    Fetch,
    /// `Propose`, answered by `Accepted` or `Refused`.
    Propose,
    /// `Poll`, answered by `PolicyUpdate`.
    Poll,
    /// `Report`, answered by `ReportAck`.
    Report,
    /// `StatusRequest`, answered by `StatusReply`.
    Status,
}

impl Exchange {
    /// The exchange a sent message starts.
    fn started_by(kind: MessageKind) -> Option<Exchange> {
        match kind {
            MessageKind::Sync | MessageKind::Check => Some(Exchange::Fetch),
            MessageKind::Propose => Some(Exchange::Propose),
            MessageKind::Poll => Some(Exchange::Poll),
            MessageKind::Report => Some(Exchange::Report),
            MessageKind::StatusRequest => Some(Exchange::Status),
            _ => None,
        }
    }

    /// The exchange a received message answers (`Error` answers any).
    fn answered_by(kind: MessageKind) -> Option<Exchange> {
        match kind {
            MessageKind::Policies => Some(Exchange::Fetch),
            MessageKind::Accepted | MessageKind::Refused => Some(Exchange::Propose),
            MessageKind::PolicyUpdate => Some(Exchange::Poll),
            MessageKind::ReportAck => Some(Exchange::Report),
            MessageKind::StatusReply => Some(Exchange::Status),
            _ => None,
        }
    }
}

struct PendingStatus {
    reply: oneshot::Sender<OpResponse>,
    kind: &'static str,
    client: Option<String>,
    /// The site asked about, for an error's wording.
    site: Option<String>,
}

struct Driver {
    name: String,
    node: Node,
    persist: Persist,
    clock: Clock,
    transport: Transport,
    metrics: Arc<Metrics>,
    out: Outbox,
    timers: BTreeMap<(Time, u64), Timer>,
    timer_seq: u64,
    peers: BTreeMap<NodeId, Link>,
    names: BTreeMap<NodeId, String>,
    bindings: BTreeMap<NodeId, String>,
    cert_sites: Option<Arc<CertifiedSites>>,
    parent: Option<NodeId>,
    parent_queue: VecDeque<Outgoing>,
    parent_queue_bytes: usize,
    pending: BTreeMap<u64, PendingStatus>,
    next_query: u64,
    sync_started: Option<Time>,
    fetch_on_connect: bool,
    /// Exchanges started per peer and not yet answered.
    awaiting: BTreeMap<(NodeId, Exchange), u32>,
    /// The last message encoded, with its frame, so that one message sent
    /// to many peers is encoded once and its bytes shared.
    last_encoded: Option<(Message, Arc<[u8]>)>,
    /// Revisions a local server itself refused for failed verification,
    /// reported upward with its statistics.
    own_rejected: u64,
}

impl Driver {
    fn new(s: NodeSetup) -> Driver {
        Driver {
            name: s.name,
            node: s.node,
            persist: s.persist,
            clock: s.clock,
            transport: s.transport,
            metrics: s.metrics,
            out: Outbox::new(),
            timers: BTreeMap::new(),
            timer_seq: 0,
            peers: BTreeMap::new(),
            names: s.names,
            bindings: s.bindings,
            cert_sites: s.cert_sites,
            parent: s.parent.map(|(l, _)| l.id),
            parent_queue: VecDeque::new(),
            parent_queue_bytes: 0,
            pending: BTreeMap::new(),
            next_query: 0,
            sync_started: None,
            fetch_on_connect: s.fetch_on_connect,
            awaiting: BTreeMap::new(),
            last_encoded: None,
            own_rejected: 0,
        }
    }

    /// The node id of a node named `name`: the one this daemon knows it
    /// by, else the id derived from the name.
    fn id_of(&self, name: &str) -> NodeId {
        self.names.iter().find(|(_, n)| *n == name).map_or_else(|| node_id(name), |(id, _)| *id)
    }

    fn peer_name(&self, id: NodeId) -> String {
        self.names.get(&id).cloned().unwrap_or_else(|| id.to_string())
    }

    fn start(&mut self) -> Result<(), DaemonError> {
        info!(node = %self.name, id = %self.node.id(), "starting");
        if let Node::Local(l) = &self.node {
            self.own_rejected = l.rejected_by_server();
        }
        self.step(|n, now, out| n.handle_start(now, out), None)?;
        // No child server is connected yet, and a request to a child that
        // is not connected is dropped: until a child connects, status
        // queries mark its sites missing at once rather than wait for it.
        let children: Vec<NodeId> = match &self.node {
            Node::Master(m) => m.config().children.keys().copied().collect(),
            Node::Local(l) => l.config().children.keys().copied().collect(),
            Node::Client(_) => Vec::new(),
        };
        for child in children {
            self.step(|n, now, out| n.handle_peer_down(now, child, out), None)?;
        }
        Ok(())
    }

    /// Whether every exchange this node started has been answered and no
    /// operator waits for a status answer.
    fn quiescent(&self) -> bool {
        self.awaiting.is_empty() && self.pending.is_empty()
    }

    async fn run(
        &mut self,
        rx: &mut mpsc::Receiver<Event>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), DaemonError> {
        // Stopping: no timers fire (no new exchange starts), requests of
        // children are still answered, and the loop ends once every
        // exchange this node started is answered, or at the grace's end.
        let mut stopping: Option<tokio::time::Instant> = None;
        loop {
            if stopping.is_some() && self.quiescent() {
                info!("stopping: no exchange in flight");
                return Ok(());
            }
            let far = monotonic() + Duration::from_secs(3600);
            let next_timer = self.timers.keys().next().map(|(t, _)| self.clock.instant_at(*t));
            let wake = next_timer.unwrap_or(far);
            let grace_end = stopping.unwrap_or(far);
            tokio::select! {
                ev = rx.recv() => match ev {
                    Some(ev) => self.on_event(ev, stopping.is_some())?,
                    None => return Ok(()),
                },
                _ = sleep_until(wake), if stopping.is_none() => self.fire_due()?,
                r = shutdown.changed(), if stopping.is_none() => {
                    if r.is_err() || *shutdown.borrow() {
                        let in_flight: u32 = self.awaiting.values().sum();
                        info!(in_flight, max_wait = ?self.transport.shutdown_grace,
                            "stopping: no new work");
                        stopping = Some(monotonic() + self.transport.shutdown_grace);
                    }
                }
                // A status query's deadline is a timer of the node; while
                // stopping, timers still due are fired so that it answers.
                _ = sleep(Duration::from_millis(20)), if stopping.is_some() => {
                    if !self.pending.is_empty() {
                        self.fire_due()?;
                    }
                }
                _ = sleep_until(grace_end), if stopping.is_some() => {
                    let left: u32 = self.awaiting.values().sum();
                    warn!(left, "stopping with exchanges unanswered after the grace");
                    return Ok(());
                }
            }
        }
    }

    fn fire_due(&mut self) -> Result<(), DaemonError> {
        let now = self.clock.now();
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let timer = entry.remove();
            trace!(?timer, "timer");
            self.step(|n, now, out| n.handle_timer(now, timer, out), None)?;
        }
        Ok(())
    }

    fn on_event(&mut self, ev: Event, stopping: bool) -> Result<(), DaemonError> {
        match ev {
            Event::Connected { peer, name, conn, tx, queued, close } => {
                self.names.insert(peer, name);
                self.peers.insert(peer, Link { conn, tx, queued, close });
                self.count_children();
                if Some(peer) == self.parent {
                    self.on_parent_up(peer)?;
                } else if self.is_child_server(peer) {
                    // Authenticated again: status queries ask it again.
                    self.step(|n, now, out| n.handle_peer_up(now, peer, out), None)?;
                }
            }
            Event::Disconnected { peer, conn } => {
                // A later session of the same peer already replaced this
                // one: the peer is up, and this news is stale.
                if self.peers.get(&peer).is_some_and(|l| l.conn != conn) {
                    return Ok(());
                }
                // Removed here, or already by `enqueue` when its queue
                // closed or overflowed (which ends the session too).
                if self.peers.remove(&peer).is_some() {
                    self.count_children();
                    // What was asked of this peer will not be answered.
                    self.awaiting.retain(|(p, _), _| *p != peer);
                }
                if self.is_child_server(peer) {
                    // A status query must not wait its deadline for a
                    // child that can no longer answer.
                    info!(peer = %self.peer_name(peer), "child server disconnected");
                    self.step(|n, now, out| n.handle_peer_down(now, peer, out), None)?;
                }
            }
            Event::Message { from, msg } => {
                let now = self.clock.now();
                match &msg {
                    Message::Sync { have, .. } | Message::Check { have, .. } => {
                        let child = self.peer_name(from);
                        self.metrics.revision(&child, have.0);
                        if matches!(msg, Message::Sync { .. }) {
                            self.metrics.child_synced(&child, now);
                        }
                    }
                    Message::Poll { have, .. } => {
                        self.metrics.client_polled(&self.peer_name(from), now, have.0);
                    }
                    _ => {}
                }
                self.answered(from, msg.kind());
                let hint = matches!(msg, Message::Report { .. }).then_some(from);
                self.step(|n, now, out| n.handle_message(now, from, msg, out), hint)?;
            }
            Event::Admit { peer, identity, reply } => {
                let verdict = if stopping {
                    Err("the daemon is stopping".to_string())
                } else {
                    self.admit(peer, &identity)?
                };
                let _ = reply.send(verdict);
            }
            Event::Operator { req, reply } => {
                if stopping {
                    let _ = reply.send(OpResponse::Error("the daemon is stopping".into()));
                } else {
                    self.on_operator(req, reply)?;
                }
            }
        }
        Ok(())
    }

    /// Admits a peer that passed the certificate checks, unless its node id
    /// is bound to another name. A new binding is committed before the
    /// answer, so that it holds after a restart; a refusal changes nothing.
    fn admit(
        &mut self,
        peer: NodeId,
        identity: &crate::ids::PeerIdentity,
    ) -> Result<Result<(), String>, DaemonError> {
        let name = &identity.name;
        match self.bindings.get(&peer) {
            Some(bound) if bound != name => {
                return Ok(Err(format!(
                    "node-id collision: `{name}` maps to node id {peer}, which this server \
                     already knows as `{bound}`; the two would overwrite each other's state, \
                     so `{name}` is refused until one of them is renamed"
                )));
            }
            Some(_) => {}
            None => {
                self.persist.store_mut().bind_node_name(peer, name)?;
                self.bindings.insert(peer, name.clone());
            }
        }
        if let (Some(table), crate::ids::Role::Client, Some(site)) =
            (&self.cert_sites, identity.role, &identity.site)
        {
            table.record(peer, name, site);
        }
        Ok(Ok(()))
    }

    /// Whether `peer` is a server configured below this one (not a client,
    /// not the parent): the peers whose connections status queries follow.
    fn is_child_server(&self, peer: NodeId) -> bool {
        match &self.node {
            Node::Master(m) => m.config().children.contains_key(&peer),
            Node::Local(l) => l.config().children.contains_key(&peer),
            Node::Client(_) => false,
        }
    }

    fn count_children(&self) {
        let children = self.peers.keys().filter(|p| Some(**p) != self.parent).count();
        self.metrics.set_connected_children(children);
    }

    /// A message of `kind` from `peer` answers one exchange started with
    /// it (an `Error` answers the oldest kind outstanding).
    fn answered(&mut self, peer: NodeId, kind: MessageKind) {
        let key = match Exchange::answered_by(kind) {
            Some(e) => Some((peer, e)),
            None if kind == MessageKind::Error => self
                .awaiting
                .range((peer, Exchange::Fetch)..=(peer, Exchange::Status))
                .next()
                .map(|(k, _)| *k),
            None => None,
        };
        if let Some(key) = key
            && let Some(n) = self.awaiting.get_mut(&key)
        {
            *n -= 1;
            if *n == 0 {
                self.awaiting.remove(&key);
            }
        }
    }

    /// The parent is reachable again: send what waited for it, and (for a
    /// daemon) ask for news at once rather than at the next scheduled time.
    fn on_parent_up(&mut self, parent: NodeId) -> Result<(), DaemonError> {
        // Taken whole: a session that already ended puts frames back in the
        // queue, which must not be drained again in this loop.
        self.parent_queue_bytes = 0;
        for o in std::mem::take(&mut self.parent_queue) {
            self.enqueue(parent, o);
        }
        if !self.fetch_on_connect {
            return Ok(());
        }
        self.step(
            |n, now, out| match n {
                Node::Local(l) => l.handle_fetch_now(now, out),
                Node::Client(c) => c.handle_poll_now(now, out),
                Node::Master(_) => {}
            },
            None,
        )
    }

    /// One `handle_*` call and everything after it, in the order the module
    /// documentation gives.
    fn step(
        &mut self,
        f: impl FnOnce(&mut Node, Time, &mut Outbox),
        report_from: Option<NodeId>,
    ) -> Result<(), DaemonError> {
        let now = self.clock.now();
        f(&mut self.node, now, &mut self.out);

        let mut observations = Vec::new();
        while let Some(o) = self.out.poll_observation() {
            observations.push(o);
        }
        self.persist(now, report_from, &observations)?;
        self.count_own_refusals()?;

        while let Some(t) = self.out.poll_transmit() {
            self.send(t.to, &t.msg);
        }
        while let Some((at, timer)) = self.out.poll_timer() {
            self.timer_seq += 1;
            self.timers.insert((at, self.timer_seq), timer);
        }
        for o in observations {
            self.observe(now, o);
        }
        let revision = match &self.node {
            Node::Master(m) => m.store().current(),
            Node::Local(l) => l.store().current(),
            Node::Client(c) => c.have(),
        };
        self.metrics.revision(&self.name, revision.0);
        Ok(())
    }

    /// Commits the number of revisions a local server refused from its
    /// parent because they failed verification, whenever the engine's
    /// count ([`Local::rejected_by_server`]) moved: it travels up in the
    /// server's statistics and must survive a restart.
    fn count_own_refusals(&mut self) -> Result<(), DaemonError> {
        let Node::Local(l) = &self.node else { return Ok(()) };
        let Persist::Local { store, .. } = &mut self.persist else { return Ok(()) };
        let refused = l.rejected_by_server();
        if refused != self.own_rejected {
            self.own_rejected = refused;
            store.set_local_own_rejected(refused)?;
        }
        Ok(())
    }

    fn send(&mut self, to: NodeId, msg: &Message) {
        // One message to many peers (a fan-out, the same answer to many
        // clients) is encoded once. Equal messages encode equally: every
        // field that could compare equal yet encode differently (a float
        // zero's sign in parameters) sits in a signed policy or proposal
        // whose signature or id differs whenever its encoding does.
        let bytes = match &self.last_encoded {
            Some((m, b)) if m == msg => Arc::clone(b),
            _ => match codec::encode(msg) {
                Ok(b) => {
                    let b: Arc<[u8]> = b.into();
                    self.last_encoded = Some((msg.clone(), Arc::clone(&b)));
                    b
                }
                Err(e) => {
                    error!(peer = %self.peer_name(to), error = %e, "cannot encode a message");
                    return;
                }
            },
        };
        if bytes.len() > self.transport.max_frame_bytes.saturating_add(4) {
            let (peer, len) = (self.peer_name(to), bytes.len());
            error!(%peer, len, "message larger than max_frame_bytes: not sent");
            return;
        }
        trace!(peer = %self.peer_name(to), kind = msg.kind().as_str(), len = bytes.len(), "send");
        self.enqueue(to, Outgoing { bytes, kind: msg.kind() });
    }

    fn enqueue(&mut self, to: NodeId, o: Outgoing) {
        let Some(link) = self.peers.get(&to) else {
            self.hold_for_parent(to, o);
            return;
        };

        // A peer whose queue holds more than `send_queue_bytes` (an empty
        // queue takes any frame) reads too slowly to keep.
        let (len, kind) = (o.bytes.len(), o.kind);
        let queued = link.queued.load(Ordering::Relaxed);
        let over = queued > 0 && queued.saturating_add(len) > self.transport.send_queue_bytes;
        let sent = if over { Err(None) } else { link.tx.try_send(o).map_err(Some) };
        match sent {
            Ok(()) => {
                link.queued.fetch_add(len, Ordering::Relaxed);
                if let Some(e) = Exchange::started_by(kind) {
                    *self.awaiting.entry((to, e)).or_default() += 1;
                }
            }
            Err(None | Some(mpsc::error::TrySendError::Full(_))) => {
                let peer = self.peer_name(to);
                warn!(%peer, queued, "send queue full: peer reads too slowly; closing");
                link.close.notify_one();
                self.peers.remove(&to);
                self.awaiting.retain(|(p, _), _| *p != to);
                self.count_children();
            }
            Err(Some(mpsc::error::TrySendError::Closed(o))) => {
                self.peers.remove(&to);
                self.awaiting.retain(|(p, _), _| *p != to);
                self.count_children();
                self.hold_for_parent(to, o);
            }
        }
    }

    fn hold_for_parent(&mut self, to: NodeId, o: Outgoing) {
        if Some(to) == self.parent {
            self.parent_queue_bytes += o.bytes.len();
            self.parent_queue.push_back(o);
            while self.parent_queue.len() > PARENT_QUEUE
                || (self.parent_queue.len() > 1
                    && self.parent_queue_bytes > self.transport.send_queue_bytes)
            {
                if let Some(old) = self.parent_queue.pop_front() {
                    self.parent_queue_bytes -= old.bytes.len();
                }
            }
        } else {
            let peer = self.peer_name(to);
            debug!(%peer, kind = o.kind.as_str(), "peer not connected; dropped");
        }
    }

    /// Commits what the last call changed.
    fn persist(
        &mut self,
        now: Time,
        report_from: Option<NodeId>,
        obs: &[Observation],
    ) -> Result<(), DaemonError> {
        match (&mut self.persist, &self.node) {
            (Persist::Master { store, history_len, .. }, Node::Master(m)) => {
                let mut revisions = Vec::new();
                for o in obs {
                    if let Observation::RevisionAssigned {
                        policy,
                        revision,
                        origin,
                        proposal,
                        ..
                    } = o
                    {
                        match m.store().get(policy).filter(|h| h.revision() == *revision) {
                            Some(held) => revisions.push(AssignedRevision {
                                held,
                                origin: *origin,
                                proposal: *proposal,
                                at: now,
                            }),
                            None => error!(%policy, %revision, "assigned revision is not held"),
                        }
                    }
                }
                let uploads = &m.history()[(*history_len).min(m.history().len())..];
                if !revisions.is_empty() || !uploads.is_empty() {
                    store.master_commit(&revisions, uploads)?;
                    *history_len = m.history().len();
                }
            }
            (Persist::Local { store, policies, upto, proposals, seq, names }, Node::Local(l)) => {
                let mut d = LocalDelta::default();
                for held in l.store().iter() {
                    if policies.get(held.id()) != Some(&held.revision()) {
                        d.policies.push(held.clone());
                    }
                }
                d.removed =
                    policies.keys().filter(|id| l.store().get(id).is_none()).cloned().collect();
                if l.store().current() != *upto {
                    d.upto = Some(l.store().current());
                }
                if let Some(from) = report_from
                    && let Some(rec) = l.clients().get(from)
                {
                    let name = self.names.get(&from).filter(|n| names.get(&from) != Some(*n));
                    d.clients.push((from, name.cloned(), rec.clone()));
                }
                for o in obs {
                    if let Observation::StatsStored { from, sites } = o {
                        for (child, stats) in l.child_stats() {
                            if child == *from && sites.iter().any(|(s, _)| *s == stats.site) {
                                d.child_stats.push((child, stats.clone()));
                            }
                        }
                    }
                }
                let ids: Vec<u64> = l.proposals().map(|(p, _)| p).collect();
                if ids != *proposals {
                    d.proposals = Some(l.proposals().map(|(p, c)| (p, c.clone())).collect());
                }
                let now_seq = (l.stats_seq(), l.stats_acked());
                if now_seq != *seq {
                    d.stats_seq = Some(now_seq);
                }
                if d.is_empty() {
                    return Ok(());
                }
                store.local_commit(&d)?;
                for h in &d.policies {
                    policies.insert(h.id().clone(), h.revision());
                }
                for id in &d.removed {
                    policies.remove(id);
                }
                *upto = l.store().current();
                *proposals = ids;
                *seq = now_seq;
                for (id, name, _) in &d.clients {
                    if let Some(n) = name {
                        names.insert(*id, n.clone());
                    }
                }
            }
            (Persist::Client { store, applied, meta }, Node::Client(c)) => {
                let state = c.state();
                let now_meta = (state.have, state.threats, state.rejected, state.last_scan);
                let changed: Vec<_> = state
                    .applied
                    .iter()
                    .filter(|e| applied.get(&e.id) != Some(&e.revision))
                    .map(|e| &**e)
                    .collect();
                let removed: Vec<PolicyId> = applied
                    .keys()
                    .filter(|id| !state.applied.iter().any(|e| &e.id == *id))
                    .cloned()
                    .collect();
                if changed.is_empty() && removed.is_empty() && now_meta == *meta {
                    return Ok(());
                }
                store.client_commit(&state, &changed, &removed)?;
                *applied = state.applied.iter().map(|e| (e.id.clone(), e.revision)).collect();
                *meta = now_meta;
            }
            _ => error!("store of another role than the node; nothing persisted"),
        }
        Ok(())
    }

    /// Logs an observation, updates counters, answers operators.
    fn observe(&mut self, now: Time, o: Observation) {
        match o {
            Observation::StatusAnswered { query, answer } => {
                if let Some(p) = self.pending.remove(&query) {
                    let _ = p.reply.send(status_view(p.kind, p.client, p.site, answer));
                }
            }
            Observation::RevisionAssigned { policy, revision, origin, urgent, .. } => {
                let origin = self.peer_name(origin);
                info!(%policy, revision = revision.0, %origin, urgent, "revision assigned");
            }
            Observation::PoliciesStored { upto, count, snapshot } => {
                info!(upto = upto.0, count, snapshot, "policies stored");
            }
            Observation::SyncStarted { attempt } => {
                if attempt == 1 {
                    self.sync_started = Some(now);
                }
                debug!(attempt, "sync started");
            }
            Observation::SyncCompleted { upto } => {
                match self.sync_started.take().map(|s| now.saturating_since(s)) {
                    Some(took) => {
                        self.metrics.sync_done(took);
                        let took_ms = took.as_secs_f64() * 1e3;
                        info!(upto = upto.0, took_ms, "sync completed");
                    }
                    None => info!(upto = upto.0, "sync completed"),
                }
            }
            Observation::SyncAbandoned { attempts } => {
                warn!(attempts, "sync abandoned until the next window");
            }
            Observation::Applied { policy, revision } => {
                self.metrics.applied(policy.as_str(), revision.0);
                info!(%policy, revision = revision.0, "policy applied");
            }
            Observation::Removed { policy } => info!(%policy, "policy no longer applies"),
            Observation::ProposalRefused { proposal, code } => {
                warn!(proposal, ?code, "proposal refused by the master");
            }
            Observation::StatsStored { from, sites } => {
                debug!(from = %self.peer_name(from), sites = sites.len(), "statistics stored");
            }
            Observation::Rejected { peer, reason: Rejection::Integrity(e) } => {
                warn!(peer = %self.peer_name(peer), error = %e,
                    "policy failed verification: refused, last good policy kept");
            }
            Observation::Rejected { peer, reason } => {
                debug!(peer = %self.peer_name(peer), ?reason, "input rejected");
            }
            other => trace!(?other, "observation"),
        }
    }

    fn on_operator(
        &mut self,
        req: OpRequest,
        reply: oneshot::Sender<OpResponse>,
    ) -> Result<(), DaemonError> {
        let answer = match req {
            OpRequest::SetPolicy { change, platform } => self.set_policy(change, platform)?,
            OpRequest::ListPolicies => self.list_policies(),
            OpRequest::SyncNow => {
                if !matches!(self.node, Node::Local(_)) {
                    OpResponse::Error("only a local server synchronises with a parent".into())
                } else {
                    self.step(
                        |n, now, out| {
                            if let Node::Local(l) = n {
                                l.handle_sync_now(now, out);
                            }
                        },
                        None,
                    )?;
                    OpResponse::Done("synchronisation started".into())
                }
            }
            OpRequest::ShowPolicy { id, revision } => self.show_policy(&id, revision)?,
            OpRequest::Status { current, scope } => {
                if !matches!(self.node, Node::Master(_)) {
                    OpResponse::Error("status is asked at the master".into())
                } else {
                    self.next_query += 1;
                    let query = self.next_query;
                    let kind = if current { "current" } else { "historical" };
                    let (scope, client, site) = match scope {
                        OpScope::All => (Scope::All, None, None),
                        OpScope::Site(s) => (Scope::Site(Name::new(&s)), None, Some(s)),
                        OpScope::Client(c) => (Scope::Client(self.id_of(&c)), Some(c), None),
                    };
                    self.pending.insert(query, PendingStatus { reply, kind, client, site });
                    let kind = if current {
                        StatusKind::Current
                    } else {
                        StatusKind::Historical { at: None }
                    };
                    return self.step(
                        |n, now, out| {
                            if let Node::Master(m) = n {
                                m.handle_status_query(now, query, kind, scope, out);
                            }
                        },
                        None,
                    );
                }
            }
        };
        let _ = reply.send(answer);
        Ok(())
    }

    fn set_policy(
        &mut self,
        mut change: tiersync_engine::PolicyChange,
        platform: Option<String>,
    ) -> Result<OpResponse, DaemonError> {
        let spec = match &self.node {
            Node::Master(m) => m.store().get(&change.id).map(|h| h.full.record.spec.clone()),
            Node::Local(l) => l.store().get(&change.id).map(|h| h.full.record.spec.clone()),
            Node::Client(_) => {
                return Ok(OpResponse::Error(
                    "policies are set at the master or a local server".into(),
                ));
            }
        };

        // With --platform, the parameters are that platform's overlay; the
        // other platforms' overlays are kept.
        let platform_only = platform.is_some();
        if let Some(p) = platform {
            let mut overlays = spec.map(|s| s.platform_params).unwrap_or_default();
            if let Some(params) = change.params.take() {
                overlays.insert(Name::new(&p), params);
            }
            change.platform_params = Some(overlays);
        }
        let policy = change.id.to_string();
        match (&mut self.persist, &self.node) {
            (Persist::Master { next_proposal, .. }, Node::Master(_)) => {
                let proposal = *next_proposal;
                *next_proposal += 1;
                let mut result = None;
                self.step(
                    |n, now, out| {
                        if let Node::Master(m) = n {
                            result = Some(m.handle_set_policy(now, change, proposal, out));
                        }
                    },
                    None,
                )?;
                Ok(match result {
                    Some(Ok(rev)) => OpResponse::PolicySet(SetOutcome {
                        policy,
                        revision: Some(rev.0),
                        proposal,
                        node: self.name.clone(),
                    }),
                    Some(Err(code)) => {
                        OpResponse::Error(refusal_text(code, &policy, platform_only))
                    }
                    None => OpResponse::Error("not a master".into()),
                })
            }
            (Persist::Local { store, .. }, Node::Local(_)) => {
                let proposal = store.next_proposal()?;
                self.step(
                    |n, now, out| {
                        if let Node::Local(l) = n {
                            l.handle_set_policy(now, change, proposal, out);
                        }
                    },
                    None,
                )?;
                let node = self.name.clone();
                Ok(OpResponse::PolicySet(SetOutcome { policy, revision: None, proposal, node }))
            }
            _ => Ok(OpResponse::Error("no policy store here".into())),
        }
    }

    fn held(&self) -> Option<&tiersync_engine::store::PolicyStore> {
        match &self.node {
            Node::Master(m) => Some(m.store()),
            Node::Local(l) => Some(l.store()),
            Node::Client(_) => None,
        }
    }

    fn list_policies(&self) -> OpResponse {
        if let Node::Client(c) = &self.node {
            // A client lists what it enforces: its effective policies.
            let applied = c.applied().iter().map(|e| PolicySummary {
                id: e.id.to_string(),
                revision: e.revision.0,
                platforms: vec![e.platform.to_string()],
                content_bytes: e.content.as_ref().map_or(0, |b| b.len() as u64),
                site_overlays: e.site.iter().map(|s| s.to_string()).collect(),
                urgent: false,
            });
            return OpResponse::Policies(applied.collect());
        }
        let Some(store) = self.held() else {
            return OpResponse::Error("no policy set here".into());
        };
        OpResponse::Policies(store.iter().map(|h| summary(&h.full)).collect())
    }

    fn show_policy(&self, id: &str, revision: Option<u64>) -> Result<OpResponse, DaemonError> {
        let Some(held) = self.held().and_then(|s| s.get(&Name::new(id))) else {
            return Ok(OpResponse::Error(format!("no policy `{id}`")));
        };
        let mut history = Vec::new();
        let mut shown = (*held.full).clone();
        if let Persist::Master { store, .. } = &self.persist {
            for (rev, at, origin, signed) in store.master_revisions(id)? {
                history.push((rev.0, time_text(at), self.peer_name(origin)));
                if Some(rev.0) == revision {
                    shown = signed;
                }
            }
        }
        if let Some(r) = revision
            && shown.record.revision.0 != r
        {
            return Ok(OpResponse::Error(format!(
                "`{id}` has no revision {r} here (a local server keeps only the latest)"
            )));
        }
        let spec = &shown.record.spec;
        let json = |v: serde_json::Value| v.to_string();
        let overlays = |m: &BTreeMap<Name, tiersync_engine::Params>| {
            json(serde_json::Value::Object(
                m.iter().map(|(k, v)| (k.to_string(), crate::operator::params_json(v))).collect(),
            ))
        };
        Ok(OpResponse::Policy(Box::new(PolicyDetail {
            summary: summary(&shown),
            content_revision: shown.record.content_revision.0,
            content_sha256: hex(&shown.record.content_digest),
            params: json(crate::operator::params_json(&spec.params)),
            platform_params: overlays(&spec.platform_params),
            site_params: overlays(&spec.site_params),
            history,
        })))
    }
}

/// Why the master refused an operator's `policy set` for `policy`, in
/// words: each refusal code the engine can give, with what to do about it.
/// `platform_only` says the change came with `--platform`, whose file is
/// only an overlay of an existing policy.
fn refusal_text(code: ErrorCode, policy: &str, platform_only: bool) -> String {
    let why = match code {
        ErrorCode::UnknownPolicy if platform_only => format!(
            "there is no policy `{policy}` yet, and `--platform` only adds an overlay to an \
             existing one: create it first with a file that lists `platforms`"
        ),
        ErrorCode::UnknownPolicy => format!(
            "there is no policy `{policy}` yet, and a new policy needs `platforms` in its file"
        ),
        ErrorCode::UnknownPeer => "this operator's node is not one the master accepts \
            changes from"
            .to_string(),
        ErrorCode::RevisionFromFuture => {
            "the change names a revision the master has not reached".to_string()
        }
        ErrorCode::UnknownClient => "the change names a client no server holds".to_string(),
        ErrorCode::UnknownSite => {
            "the change names a site that is not in the deployment".to_string()
        }
        ErrorCode::WrongSite => "the change is for a site this server does not serve".to_string(),
        ErrorCode::Unexpected => "the master does not take this change here".to_string(),
        ErrorCode::UnsupportedVersion => {
            "the change uses a protocol version the master does not speak".to_string()
        }
        ErrorCode::BadFrame => "the change could not be decoded".to_string(),
        ErrorCode::UnknownPlatform => {
            "the change names a platform the master does not serve".to_string()
        }
    };
    format!("refused ({code:?}): {why}")
}

fn summary(p: &tiersync_engine::policy::SignedPolicy) -> PolicySummary {
    let r = &p.record;
    PolicySummary {
        id: r.id.to_string(),
        revision: r.revision.0,
        platforms: r.spec.platforms.iter().map(|p| p.to_string()).collect(),
        content_bytes: r.content_len,
        site_overlays: r.spec.site_params.keys().map(|s| s.to_string()).collect(),
        urgent: r.urgent,
    }
}

fn site_row(s: &SiteStats) -> SiteRow {
    let sum = |f: fn(&tiersync_engine::stats::PlatformStats) -> u64| -> u64 {
        s.platforms.values().map(f).sum()
    };
    SiteRow {
        site: s.site.to_string(),
        as_of: time_text(s.as_of),
        clients: sum(|p| p.clients),
        compliant: sum(|p| p.compliant),
        firewall_on: sum(|p| p.firewall_on),
        stale: sum(|p| p.stale),
        threats: sum(|p| p.threats),
        rejected_policies: sum(|p| p.rejected_policies),
        rejected_by_server: s.rejected_by_server,
    }
}

fn status_view(
    kind: &str,
    client: Option<String>,
    site: Option<String>,
    a: StatusAnswer,
) -> OpResponse {
    if let Some(code) = a.error {
        let text = match (code, &client, &site) {
            (ErrorCode::UnknownClient, Some(c), _) => {
                format!("no local server holds a report from client `{c}`")
            }
            (ErrorCode::UnknownSite, _, Some(s)) => format!("no site `{s}` below this master"),
            _ => format!("status refused: {code:?}"),
        };
        return OpResponse::Error(text);
    }
    // A drill-down for a client that no answering server holds, while some
    // did not answer: say so, rather than a table of the sites that did not.
    if let (Some(c), None, false) = (&client, &a.client, a.missing.is_empty()) {
        let missing: Vec<String> = a.missing.iter().map(|s| s.to_string()).collect();
        return OpResponse::Error(format!(
            "client `{c}`: no server that answered holds it, and {} did not answer (not \
             connected, or silent to the deadline)",
            missing.join(", ")
        ));
    }
    let client = a.client.map(|d| ClientRow {
        name: client.unwrap_or_else(|| d.client.to_string()),
        site: d.report.site.to_string(),
        platform: d.report.platform.to_string(),
        seen: time_text(d.seen),
        applied: d.report.applied.iter().map(|(p, r)| (p.to_string(), r.0)).collect(),
        firewall_on: d.report.firewall_on,
        threats: d.report.threats_found,
        rejected_policies: d.report.rejected_policies,
    });
    OpResponse::Status(StatusView {
        kind: kind.to_string(),
        sites: a.sites.iter().map(site_row).collect(),
        missing: a.missing.iter().map(|s| s.to_string()).collect(),
        client,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each code the master can refuse `policy set` with is reported with
    /// its own reason, and only a missing policy is blamed on `platforms`.
    #[test]
    fn each_refusal_of_policy_set_says_its_own_reason() {
        let texts: Vec<String> =
            ErrorCode::ALL.iter().map(|c| refusal_text(*c, "antivirus", false)).collect();
        for (code, text) in ErrorCode::ALL.iter().zip(&texts) {
            assert!(text.starts_with(&format!("refused ({code:?}): ")), "{text}");
            let blames_platforms = text.contains("`platforms`");
            assert_eq!(blames_platforms, *code == ErrorCode::UnknownPolicy, "{text}");
        }
        let distinct: std::collections::BTreeSet<&String> = texts.iter().collect();
        assert_eq!(distinct.len(), texts.len(), "two codes share a reason");
        let overlay = refusal_text(ErrorCode::UnknownPolicy, "firewall", true);
        assert!(overlay.contains("no policy `firewall`"), "{overlay}");
        assert!(overlay.contains("`--platform` only adds an overlay"), "{overlay}");
    }
}
