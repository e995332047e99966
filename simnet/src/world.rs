//! The simulation: the engine's real nodes on a simulated network.
//!
//! [`run`] builds a master, local servers and clients from a scenario,
//! places them at their sites, and processes events in time order: message
//! deliveries, node timers and scenario actions (changes, status queries,
//! faults). Messages cross the links between the sender's and receiver's
//! sites, each charged the exact length of its encoded frame plus the
//! transport model's overhead. Nothing here decides what a node does: the
//! simulator only carries messages and reads observations.
//!
//! # Hops
//!
//! A message crosses its path one link at a time: it is handed to the next
//! link when it arrives at the intermediate site, as an event of its own,
//! so every link is FIFO in the order messages reach it. A copy made by a
//! link (duplication) does not occupy any link: it reaches the receiver as
//! much later than the original as the link that made it said.
//!
//! # Metering
//!
//! Bytes are counted on a link when a message is sent onto it, lost ones
//! included (they occupied the link); a message stopped by a partition
//! never got onto that link and is not counted there. `wan.bytes` is thus
//! every byte sent onto a WAN link, in either direction, ACKs included, and
//! `--trace` rows (one per delivered message, one per message lost on a
//! link or to a node that was down) add up to it in their `wan_bytes`.

use std::sync::Arc;
use std::time::Duration;

use rand::RngExt as _;
use rand::SeedableRng as _;
use rand_pcg::Pcg64Mcg;
use tiersync_engine::codec::encoded_len;
use tiersync_engine::message::Scope;
use tiersync_engine::outbox::Observation;
use tiersync_engine::stats::SecurityReport;
use tiersync_engine::{
    Client, ClientProfile, Local, Master, Message, MessageKind, Name, NodeId, Outbox, StatusKind,
    Time, Timer,
};

use crate::build::{self, Hop, Plan};
use crate::draws::Draws;
use crate::link::{Link, LossReason, Transmission};
use crate::meter::{Delivered, Meter, Record, SentCrossed};
use crate::metrics::{LinkTraffic, Observer};
use crate::nodes::{self, INITIAL_PROPOSAL_BASE};
use crate::output::{RunOutput, RunSummary};
use crate::prefetch;
use crate::queue::EventQueue;
use crate::scenario::{CrashTarget, Fault, Scenario, SkewTarget, Strategy};
use crate::seeds;
use crate::slab::{MessageSlab, Slot};
use crate::transport::{TransportModel, WireMemo};

/// How to run a scenario.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The strategy to simulate.
    pub strategy: Strategy,
    /// The seed; `None` takes the scenario's.
    pub seed: Option<u64>,
    /// Keep every propagation delay and time-series row (per link, message
    /// kind and node; for reports). Off, the run allocates none of them.
    pub keep_detail: bool,
    /// Meter and hash on the simulating thread rather than on a second
    /// one ([`crate::meter`]): the same results, more wall time; for
    /// measuring the simulation on one core.
    pub single_thread: bool,
}

/// Callbacks a caller may hook into a run (progress bars, trace files).
pub trait Hooks {
    /// Called now and then with the simulated time reached.
    fn progress(&mut self, _now: Time) {}
    /// Called, when `wants_trace` is set, for every message that ends: each
    /// one delivered, each one lost on a link, each one that reached a node
    /// that was down (see [`TraceRow::outcome`]).
    fn delivered(&mut self, _row: &TraceRow<'_>) {}
    /// Whether [`Hooks::delivered`] should be called.
    fn wants_trace(&self) -> bool {
        false
    }
}

/// Hooks that do nothing.
pub struct NoHooks;
impl Hooks for NoHooks {}

/// One message that ended (delivered or lost), for `--trace`.
#[derive(Debug)]
pub struct TraceRow<'a> {
    /// Delivery time; for a message lost on a link, the time it was handed
    /// to that link.
    pub at: Time,
    /// Sender.
    pub from: NodeId,
    /// Sender's site.
    pub from_site: &'a str,
    /// Receiver.
    pub to: NodeId,
    /// Receiver's site.
    pub to_site: &'a str,
    /// WAN links the message was sent onto, `;`-separated site names of
    /// their child ends: for a lost message, up to the one that lost it
    /// (not one whose partition stopped it).
    pub wan_links: String,
    /// Message kind.
    pub kind: &'static str,
    /// Bytes on the wire per link, in the message's direction.
    pub bytes: u64,
    /// Bytes of the message's frame alone (application bytes).
    pub frame_bytes: u64,
    /// Bytes per link crossed whole, in the reverse direction: its ACKs,
    /// and for a wake-up the client's side of the connection.
    pub reverse_bytes: u64,
    /// Bytes this message put on WAN links, both directions: `bytes` on
    /// each of `wan_links`, plus `reverse_bytes` on each it crossed whole.
    /// Zero for a copy made by a link. The sum over all rows is
    /// `wan.bytes`.
    pub wan_bytes: u64,
    /// Whether it reached a running node.
    pub delivered: bool,
    /// `delivered`, `receiver_down` (it arrived at a node that was down),
    /// `lost` (a link's loss draw took it) or `partitioned` (a link was cut).
    pub outcome: &'static str,
    /// Whether this is a copy made by a link that duplicates messages.
    pub copy: bool,
}

/// A scenario action scheduled at a time.
#[derive(Clone, Copy, Debug)]
enum Action {
    InitialPolicies,
    Change(usize),
    Query(usize),
    Crash(usize),
    Restart(usize),
    GoOffline(u32),
    ComeBack(u32),
}

/// A message lost on a link, kept until the event ends to be traced.
#[derive(Clone, Copy, Debug)]
struct LostRow {
    at: Time,
    from: NodeId,
    to: NodeId,
    kind: MessageKind,
    len: u32,
    /// The hop of its path that lost it.
    hop: u16,
    partitioned: bool,
}

/// An event in the queue: small and `Copy`, as [`EventQueue`] needs.
#[derive(Clone, Copy)]
enum Event {
    /// `len` is the frame length, computed once when the message was sent;
    /// `copy` marks a copy made by a link.
    Deliver {
        from: NodeId,
        to: NodeId,
        len: u32,
        /// The message's wire bytes per link in its own direction, as
        /// [`World::wire_bytes`] gave them when it was sent (`u32::MAX`:
        /// more, computed again on delivery).
        wire: u32,
        copy: bool,
        msg: Slot,
    },
    /// A message reached the far end of hop `hop - 1` and is handed to
    /// hop `hop` of its path; `dup` says how much later than it a copy
    /// arrives, nanoseconds, when a link it crossed made one.
    Hop {
        from: NodeId,
        to: NodeId,
        len: u32,
        hop: u16,
        msg: Slot,
        dup: Option<i64>,
    },
    Timer {
        node: NodeId,
        epoch: u32,
        timer: Timer,
    },
    Action(Action),
}

/// What the simulator keeps per node beside the engine's own state.
#[derive(Clone, Copy, Debug)]
struct NodeState {
    /// Incarnation: timers of an earlier one are dropped.
    epoch: u32,
    /// Up, or crashed / switched off.
    up: bool,
    /// The node's site index.
    site: u16,
    /// Clock offset, nanoseconds (fault `skew`).
    skew: i64,
    /// For a client: the address of the report whose frame length is
    /// `report_len` (0: none), a report [`World::report_pin`] keeps alive
    /// so that its address cannot be reused by another. Kept here, beside
    /// what every event of the node reads, rather than in an array of its
    /// own: one cache line per client event instead of two.
    report: usize,
    /// The frame length of the `report` message.
    report_len: u32,
}

impl NodeState {
    /// A node at `site`, up, in its first incarnation.
    fn new(site: usize) -> NodeState {
        NodeState { epoch: 0, up: true, site: site as u16, skew: 0, report: 0, report_len: 0 }
    }
}

/// A client and what the simulator keeps for it, side by side: every event
/// of a client reads both, so they share two adjacent cache lines (the
/// alignment keeps the pair from straddling a third) instead of sitting in
/// two arrays a cache miss apart each.
#[repr(align(64))]
struct SimClient {
    state: NodeState,
    node: Client,
}

/// How many events ahead [`World::prefetch`] warms memory: far enough for
/// a cache miss to complete (a few hundred nanoseconds of work), near
/// enough that the lines are still cached when the event runs.
const PREFETCH_AHEAD: usize = 8;

/// How many events ahead [`World::prefetch_deep`] follows pointers held
/// in the records [`World::prefetch`] warmed a few events before.
const PREFETCH_DEEP: usize = 4;

/// How many events ahead [`World::prefetch_record`] follows the index
/// entry [`World::prefetch_deep`] warmed.
const PREFETCH_RECORD: usize = 2;

/// Runs `scenario` and returns its summary and detail.
pub fn run(scenario: &Scenario, opts: &RunOptions, hooks: &mut dyn Hooks) -> RunOutput {
    #[allow(clippy::disallowed_methods)] // Timing the run is the one wall-clock reading.
    let wall = std::time::Instant::now();
    let mut w = World::new(scenario, opts);
    w.run(hooks);
    w.finish(wall)
}

/// The exact frame length of an engine message. Every engine message
/// encodes (the codec's tests cover each kind), so a failure is an engine
/// bug, stopped loudly rather than charged as some made-up length.
fn frame_len_of(msg: &Message) -> u64 {
    encoded_len(msg).expect("engine messages always encode") as u64
}

/// Everything a run holds.
struct World<'a> {
    sc: &'a Scenario,
    strategy: Strategy,
    seed: u64,
    /// Shared with the metering thread.
    plan: Arc<Plan>,
    master: Master,
    locals: Vec<Local>,
    /// The clients, each with its [`NodeState`].
    clients: Vec<SimClient>,
    /// Per server node (the master, then the local servers): incarnation,
    /// up or down, site, clock offset.
    servers: Vec<NodeState>,
    links: Vec<Link>,
    queue: EventQueue<Event>,
    /// The messages the queue's deliveries carry.
    in_flight: MessageSlab,
    out: Outbox,
    /// Whether the run keeps its detail (per-request rows and the like).
    keep_detail: bool,
    /// The links' random draws ([`crate::draws`]).
    net_rng: Draws,
    transport: TransportModel,
    /// Wire bytes of recent frame lengths, as `transport` gives them.
    wire_memo: WireMemo,
    /// The run's counts and trace hash, kept on a second thread.
    meter: Meter,
    events: u64,
    delivered: u64,
    lost: u64,
    now: Time,
    profiles: Vec<Arc<ClientProfile>>,
    client_profile: Vec<u32>,
    /// Per client: the report whose frame length its [`NodeState`] holds.
    report_pin: Vec<Option<Arc<SecurityReport>>>,
    /// Per message kind: connection bytes of a client exchange, (in the
    /// message's direction, in the reverse direction).
    conn: [(u64, u64); MessageKind::ALL.len()],
    /// Whether `--trace` rows are wanted.
    trace_on: bool,
    /// Messages lost on links during the current event, to be traced.
    lost_rows: Vec<LostRow>,
    /// Changes made while their local server was down, as (local index,
    /// change index): the operator makes them when it is back.
    pending_changes: Vec<(usize, usize)>,
}

impl<'a> World<'a> {
    fn new(sc: &'a Scenario, opts: &RunOptions) -> World<'a> {
        let seed = opts.seed.unwrap_or(sc.seed);
        let plan = Arc::new(build::plan(sc, opts.strategy));
        let transport = TransportModel::default();

        // The nodes, configured where `tiersync replay` finds them too.
        let set = nodes::node_set(sc, &plan, opts.strategy, seed);
        let master = Master::new(set.master);
        let locals: Vec<Local> = set.locals.into_iter().map(Local::new).collect();
        let profiles = set.profiles;
        let clients: Vec<Client> = set
            .clients
            .iter()
            .map(|c| Client::new(c.id, profiles[c.profile as usize].clone(), c.seed))
            .collect();
        let client_profile: Vec<u32> = set.clients.iter().map(|c| c.profile).collect();

        let node_count = plan.client_base as usize + clients.len();
        let servers: Vec<NodeState> =
            (0..plan.client_base).map(|n| NodeState::new(plan.site_of(NodeId(n)))).collect();
        // The scenario loader validated every link's numbers already.
        let links = plan
            .links
            .iter()
            .map(|l| Link::new(l.config.clone()).expect("validated link"))
            .collect();
        let obs = Observer::new(sc, &plan, &clients, &profiles, &client_profile, opts.keep_detail);
        let clients: Vec<SimClient> = clients
            .into_iter()
            .enumerate()
            .map(|(c, node)| {
                let site = plan.site_of(NodeId(plan.client_base + c as u32));
                SimClient { state: NodeState::new(site), node }
            })
            .collect();
        let meter = Meter::new(obs, plan.clone(), !opts.single_thread);
        let mut conn = [(0, 0); MessageKind::ALL.len()];
        for kind in MessageKind::ALL {
            if let Some(&role) = transport.client_connections.get(kind.as_str()) {
                conn[kind as usize] = transport.connection_bytes(role);
            }
        }

        let mut w = World {
            sc,
            strategy: opts.strategy,
            seed,
            plan,
            master,
            locals,
            clients,
            servers,
            links,
            queue: EventQueue::with_capacity(node_count * 2 + 1024),
            in_flight: MessageSlab::default(),
            out: Outbox::new(),
            keep_detail: opts.keep_detail,
            net_rng: Draws::new(Pcg64Mcg::seed_from_u64(seeds::derive(seed, "network", 0))),
            transport,
            wire_memo: WireMemo::default(),
            meter,
            events: 0,
            delivered: 0,
            lost: 0,
            now: sc.start,
            report_pin: vec![None; client_profile.len()],
            profiles,
            client_profile,
            conn,
            trace_on: false,
            lost_rows: Vec::new(),
            pending_changes: Vec::new(),
        };
        w.schedule_scenario();
        w
    }

    /// Puts the scenario's actions and faults in the queue and starts
    /// every node.
    fn schedule_scenario(&mut self) {
        let sc = self.sc;
        let start = sc.start;
        self.queue.push(start, Event::Action(Action::InitialPolicies));

        // Link faults are properties of the links; node faults are events.
        for (i, f) in sc.faults.iter().enumerate() {
            let site = sc.site_index(f.site()).unwrap_or(0);
            match f {
                Fault::Partition(p) => {
                    if let Some(l) = self.plan.wan_link[site] {
                        let _ = self.links[l].add_partition(p.from, p.to);
                    }
                }
                Fault::Loss(p) => {
                    if let Some(l) = self.plan.wan_link[site] {
                        let from = p.from.unwrap_or(start);
                        let to = p.to.unwrap_or(sc.end());
                        let _ = self.links[l].add_loss_window(from, to, p.rate.value());
                    }
                }
                Fault::Duplicate(p) => {
                    if let Some(l) = self.plan.wan_link[site] {
                        let _ = self.links[l].add_duplicate_window(start, sc.end(), p.rate.value());
                    }
                }
                Fault::Crash(c) => {
                    self.queue.push(c.at, Event::Action(Action::Crash(i)));
                    let back = c.at + Duration::from(c.restart_after);
                    self.queue.push(back, Event::Action(Action::Restart(i)));
                }
                Fault::Skew(s) => {
                    let ns = s.offset.as_nanos();
                    let nodes = match s.node {
                        SkewTarget::Local => self.nodes_of(site, true),
                        SkewTarget::Clients => self.nodes_of(site, false),
                        SkewTarget::Master => vec![NodeId(0)],
                        SkewTarget::Client(n) => {
                            let (from, to) = self.plan.client_range[site];
                            let c = from.saturating_add(n);
                            (c < to)
                                .then(|| NodeId(self.plan.client_base + c))
                                .into_iter()
                                .collect()
                        }
                    };
                    for node in nodes {
                        self.st_mut(node).skew = ns;
                    }
                }
            }
        }

        for (i, _) in sc.changes.iter().enumerate() {
            self.queue.push(sc.changes[i].at, Event::Action(Action::Change(i)));
        }
        for (i, q) in sc.status_queries.iter().enumerate() {
            self.queue.push(q.at, Event::Action(Action::Query(i)));
        }

        // Laptops that go off for days: a share of clients, chosen by seed.
        if let Some(off) = &sc.client.offline {
            let mut rng = Pcg64Mcg::seed_from_u64(seeds::derive(self.seed, "offline", 0));
            let every: Duration = off.every.into();
            for c in 0..self.clients.len() as u32 {
                if rng.random_bool(off.share.value()) {
                    let phase = rng.random_range(0..every.as_nanos() as u64);
                    let at = start + Duration::from_nanos(phase);
                    self.queue.push(at, Event::Action(Action::GoOffline(c)));
                }
            }
        }

        // Start every node.
        for i in 0..self.locals.len() {
            let id = NodeId(1 + i as u32);
            let now = self.node_now(id);
            self.locals[i].handle_start(now, &mut self.out);
            self.drain(id);
        }
        for i in 0..self.clients.len() {
            let id = NodeId(self.plan.client_base + i as u32);
            let now = self.node_now(id);
            self.clients[i].node.handle_start(now, &mut self.out);
            self.drain(id);
        }
    }

    /// The nodes of a site: its local server, or its clients.
    fn nodes_of(&self, site: usize, local: bool) -> Vec<NodeId> {
        if local {
            self.plan
                .locals
                .iter()
                .position(|l| l.site == site)
                .map(|i| vec![NodeId(1 + i as u32)])
                .unwrap_or_default()
        } else {
            let (from, to) = self.plan.client_range[site];
            (from..to).map(|i| NodeId(self.plan.client_base + i)).collect()
        }
    }

    /// What the simulator keeps for a node.
    #[inline]
    fn st(&self, id: NodeId) -> &NodeState {
        match id.0.checked_sub(self.plan.client_base) {
            Some(c) => &self.clients[c as usize].state,
            None => &self.servers[id.0 as usize],
        }
    }

    /// What the simulator keeps for a node, to change it.
    #[inline]
    fn st_mut(&mut self, id: NodeId) -> &mut NodeState {
        match id.0.checked_sub(self.plan.client_base) {
            Some(c) => &mut self.clients[c as usize].state,
            None => &mut self.servers[id.0 as usize],
        }
    }

    /// The site a node sits at.
    fn site(&self, id: NodeId) -> usize {
        self.st(id).site as usize
    }

    /// The time a node's own clock shows.
    fn node_now(&self, id: NodeId) -> Time {
        Time(self.now.0 + self.st(id).skew)
    }

    fn run(&mut self, hooks: &mut dyn Hooks) {
        let end = self.sc.end();
        let trace = hooks.wants_trace();
        self.trace_on = trace;
        let mut next_progress = 0u64;
        while let Some((at, event)) = self.queue.pop() {
            if at > end {
                break;
            }
            self.now = at;
            self.events += 1;
            if let Some((_, ahead)) = self.queue.peek_ahead(PREFETCH_AHEAD) {
                self.prefetch(ahead);
            }
            if let Some((_, ahead)) = self.queue.peek_ahead(PREFETCH_DEEP) {
                self.prefetch_deep(ahead);
            }
            if let Some((_, ahead)) = self.queue.peek_ahead(PREFETCH_RECORD) {
                self.prefetch_record(ahead);
            }
            if self.events >= next_progress {
                hooks.progress(at);
                next_progress = self.events + 1_000_000;
            }
            match event {
                Event::Deliver { from, to, len, wire, copy, msg } => {
                    let msg = self.in_flight.take(msg);
                    let len = u64::from(len);
                    let wire = match wire {
                        u32::MAX => self.forward_bytes(from, to, msg.kind(), len),
                        w => u64::from(w),
                    };
                    self.deliver(from, to, len, wire, copy, msg, trace, hooks)
                }
                Event::Hop { from, to, len, hop, msg, dup } => {
                    self.next_hop(from, to, len, hop, msg, dup)
                }
                Event::Timer { node, epoch, timer } => {
                    let st = self.st(node);
                    if st.epoch == epoch && st.up {
                        self.fire(node, timer);
                    }
                }
                Event::Action(a) => self.act(a),
            }
            if !self.lost_rows.is_empty() {
                self.trace_lost(hooks);
            }
        }
        self.now = end;
        hooks.progress(end);
    }

    /// Asks the CPU to start loading the memory an upcoming event will
    /// touch: its node's record, the client it wakes and the message it
    /// carries. With a hundred thousand clients these are cache misses
    /// taken one after the other; fetched a few events early they overlap
    /// with the work in between. Changes no result, only timing.
    fn prefetch(&self, ev: &Event) {
        let node = match ev {
            Event::Deliver { to, msg, .. } => {
                prefetch::read(self.in_flight.get(*msg));
                *to
            }
            Event::Timer { node, .. } => *node,
            Event::Hop { .. } | Event::Action(_) => return,
        };
        match node.0.checked_sub(self.plan.client_base) {
            Some(c) => {
                if let Some(client) = self.clients.get(c as usize) {
                    prefetch::read_all(client);
                }
            }
            None => {
                if let Some(st) = self.servers.get(node.0 as usize) {
                    prefetch::read(st);
                }
            }
        }
    }

    /// The second step of [`World::prefetch`]: memory reached through the
    /// records it warmed, now cached, for a client's report timer: the
    /// report the client will resend, and where its server's index keeps
    /// the client. Changes no result, only timing.
    fn prefetch_deep(&self, ev: &Event) {
        let Some((client, table)) = self.report_ahead(ev) else { return };
        if let Some(report) = self.clients[client].node.last_report() {
            // The reference counts sit just before the report.
            let at = Arc::as_ptr(report);
            prefetch::line(at.cast::<u8>().wrapping_sub(16));
            prefetch::read_all(&**report);
        }
        if let Some(entry) = table.index_hint(NodeId(self.plan.client_base + client as u32)) {
            prefetch::read(entry);
        }
    }

    /// The third step: the record the server will overwrite with the
    /// report, found through the index entry warmed before.
    fn prefetch_record(&self, ev: &Event) {
        let Some((client, table)) = self.report_ahead(ev) else { return };
        if let Some(record) = table.get(NodeId(self.plan.client_base + client as u32)) {
            prefetch::read(record);
        }
    }

    /// For a client's report timer: the client's index and the table of
    /// client records of the server it reports to.
    ///
    /// The server comes from the client's site in its [`NodeState`], which
    /// [`World::prefetch`] warmed a few events before, not from the
    /// client's profile (a pointer to follow from the client's record) or
    /// the plan's per-client site array (a cache miss of its own).
    fn report_ahead(&self, ev: &Event) -> Option<(usize, &tiersync_engine::stats::ClientTable)> {
        let Event::Timer { node, timer: Timer::Report, .. } = ev else { return None };
        let client = node.0.checked_sub(self.plan.client_base)? as usize;
        let site = self.clients.get(client)?.state.site;
        let table = match self.plan.client_server[usize::from(site)] {
            build::ServerRef::Master => self.master.clients(),
            build::ServerRef::Local(l) => self.locals.get(l)?.clients(),
        };
        Some((client, table))
    }

    #[allow(clippy::too_many_arguments)]
    fn deliver(
        &mut self,
        from: NodeId,
        to: NodeId,
        len: u64,
        wire: u64,
        copy: bool,
        msg: Message,
        trace: bool,
        hooks: &mut dyn Hooks,
    ) {
        let kind = msg.kind();
        if !self.st(to).up {
            self.lost += 1;
            if trace {
                self.trace_end(hooks, from, to, kind, len, copy, "receiver_down");
            }
            return;
        }
        self.delivered += 1;
        if trace {
            self.trace_end(hooks, from, to, kind, len, copy, "delivered");
        }
        let heard = match &msg {
            Message::Report { report } if to == NodeId(0) => {
                self.plan.site_names.iter().position(|s| *s == report.site).map(|i| i as u16)
            }
            _ => None,
        };
        let at = self.now;
        self.meter.delivered(Delivered { at, from, to, kind, heard, len, wire });

        let now = self.node_now(to);
        let idx = to.0 as usize;
        if to.0 == 0 {
            self.master.handle_message(now, from, msg, &mut self.out);
        } else if idx < self.plan.client_base as usize {
            self.locals[idx - 1].handle_message(now, from, msg, &mut self.out);
        } else {
            let c = idx - self.plan.client_base as usize;
            self.clients[c].node.handle_message(now, from, msg, &mut self.out);
        }
        self.drain(to);
    }

    /// The `;`-separated WAN links among hops `hops` of the path from
    /// `from` to `to`, and how many there are.
    fn wan_links(&self, from: NodeId, to: NodeId, hops: std::ops::Range<usize>) -> (String, u64) {
        let (fs, ts) = (self.site(from), self.site(to));
        let names: Vec<&str> = self.plan.paths[fs][ts][hops]
            .iter()
            .filter(|h| self.plan.links[h.link].wan)
            .map(|h| self.sc.sites[self.plan.links[h.link].site].name.as_str())
            .collect();
        (names.join(";"), names.len() as u64)
    }

    /// Traces a message that crossed its whole path: delivered, or arrived
    /// at a node that was down.
    #[allow(clippy::too_many_arguments)]
    fn trace_end(
        &self,
        hooks: &mut dyn Hooks,
        from: NodeId,
        to: NodeId,
        kind: MessageKind,
        len: u64,
        copy: bool,
        outcome: &'static str,
    ) {
        let (fs, ts) = (self.site(from), self.site(to));
        let (wire, reverse) = self.wire_bytes(from, to, kind, len);
        let (wan_links, n) = self.wan_links(from, to, 0..self.plan.paths[fs][ts].len());
        hooks.delivered(&TraceRow {
            at: self.now,
            from,
            from_site: &self.sc.sites[fs].name,
            to,
            to_site: &self.sc.sites[ts].name,
            wan_links,
            kind: kind.as_str(),
            bytes: wire,
            frame_bytes: len,
            reverse_bytes: reverse,
            wan_bytes: if copy { 0 } else { n * (wire + reverse) },
            delivered: outcome == "delivered",
            outcome,
            copy,
        });
    }

    /// Traces the messages lost on links during the event just run.
    fn trace_lost(&mut self, hooks: &mut dyn Hooks) {
        for row in std::mem::take(&mut self.lost_rows) {
            let LostRow { at, from, to, kind, len, hop, partitioned } = row;
            let (fs, ts) = (self.site(from), self.site(to));
            let hop = usize::from(hop);
            let (wire, reverse) = self.wire_bytes(from, to, kind, u64::from(len));
            // Whole crossings before the hop that lost it, then that hop
            // unless a partition kept the message off it.
            let (_, whole) = self.wan_links(from, to, 0..hop);
            let sent_onto = if partitioned { hop } else { hop + 1 };
            let (wan_links, onto) = self.wan_links(from, to, 0..sent_onto);
            hooks.delivered(&TraceRow {
                at,
                from,
                from_site: &self.sc.sites[fs].name,
                to,
                to_site: &self.sc.sites[ts].name,
                wan_links,
                kind: kind.as_str(),
                bytes: wire,
                frame_bytes: u64::from(len),
                reverse_bytes: reverse,
                wan_bytes: whole * reverse + onto * wire,
                delivered: false,
                outcome: if partitioned { "partitioned" } else { "lost" },
                copy: false,
            });
        }
    }

    fn fire(&mut self, node: NodeId, timer: Timer) {
        let now = self.node_now(node);
        let idx = node.0 as usize;
        if node.0 == 0 {
            self.master.handle_timer(now, timer, &mut self.out);
        } else if idx < self.plan.client_base as usize {
            self.locals[idx - 1].handle_timer(now, timer, &mut self.out);
        } else {
            let c = idx - self.plan.client_base as usize;
            self.clients[c].node.handle_timer(now, timer, &mut self.out);
        }
        self.drain(node);
    }

    /// Carries out what a node asked for: sends, timers, observations.
    fn drain(&mut self, node: NodeId) {
        while let Some(t) = self.out.poll_transmit() {
            self.send(node, t.to, t.msg);
        }
        let NodeState { epoch, skew, .. } = *self.st(node);
        while let Some((at, timer)) = self.out.poll_timer() {
            // The node asked in its own clock; the queue runs on true time.
            let at = Time(at.0 - skew).max(self.now);
            self.queue.push(at, Event::Timer { node, epoch, timer });
        }
        while let Some(o) = self.out.poll_observation() {
            self.observe(node, o);
        }
    }

    /// Wire bytes of one message per link, as (in its own direction, in
    /// the reverse direction): frame plus transport overhead, plus the
    /// connection bytes of a client exchange, which opens a connection
    /// each (an agent polling over HTTPS; see
    /// [`TransportModel::client_connections`]); back, its pure ACKs and
    /// the receiver's side of a connection of its own.
    #[inline(always)]
    fn wire_bytes(&self, from: NodeId, to: NodeId, kind: MessageKind, frame: u64) -> (u64, u64) {
        let (wire, ack) = self.wire_memo.get(&self.transport, frame);
        if self.opens_connections(from, to) {
            let (forward, back) = self.conn[kind as usize];
            (wire + forward, ack + back)
        } else {
            (wire, ack)
        }
    }

    /// The first of [`World::wire_bytes`]: the bytes in the message's own
    /// direction.
    fn forward_bytes(&self, from: NodeId, to: NodeId, kind: MessageKind, frame: u64) -> u64 {
        self.wire_bytes(from, to, kind, frame).0
    }

    /// Whether messages between the two nodes pay connection bytes: client
    /// exchanges, and server ones when server connections are not kept.
    fn opens_connections(&self, from: NodeId, to: NodeId) -> bool {
        let client_side = from.0 >= self.plan.client_base || to.0 >= self.plan.client_base;
        client_side || !self.transport.server_connections_persistent
    }

    /// The exact frame length of `msg`, sent by `from`.
    ///
    /// A client resends the same shared report while nothing in it changed,
    /// so its length is remembered per client with the report it belongs
    /// to, by address; [`World::report_pin`] holds that report, so its
    /// address cannot be reused by another report while the entry stands.
    fn frame_len(&mut self, from: NodeId, msg: &Message) -> u64 {
        let client = from.0.checked_sub(self.plan.client_base);
        let (Some(c), Message::Report { report }) = (client, msg) else {
            return frame_len_of(msg);
        };
        let address = Arc::as_ptr(report) as usize;
        let st = &mut self.clients[c as usize].state;
        if st.report == address {
            return u64::from(st.report_len);
        }
        let len = frame_len_of(msg);
        if let Ok(l) = u32::try_from(len) {
            st.report = address;
            st.report_len = l;
            self.report_pin[c as usize] = Some(report.clone());
        }
        len
    }

    /// Sends a message across the links between the two nodes' sites: it
    /// is handed to the first link now, and to each next one when it
    /// arrives at the site between them ([`Event::Hop`]).
    fn send(&mut self, from: NodeId, to: NodeId, msg: Message) {
        let kind = msg.kind();
        let frame = self.frame_len(from, &msg);
        let (wire, reverse) = self.wire_bytes(from, to, kind, frame);
        let len = u32::try_from(frame).unwrap_or(u32::MAX);
        let path = &self.plan.paths[self.site(from)][self.site(to)];
        let (first, single_hop) = (path[0], path.len() == 1);
        // The send is counted with the first crossing, in one record.
        let sent = Some(frame);
        let crossed = self.cross(from, to, kind, len, (wire, reverse), 0, first, sent);
        let Some((arrive, dup)) = crossed else {
            return;
        };
        if self.keep_detail && from.0 < self.plan.client_base && to.0 < self.plan.client_base {
            let (now, msg) = (self.now, msg.clone());
            self.meter.push(Record::Call(Box::new(move |obs, plan| {
                obs.server_message(now, from, to, &msg, wire, plan);
            })));
        }
        let msg = self.in_flight.put(msg);
        if single_hop {
            let wire = u32::try_from(wire).unwrap_or(u32::MAX);
            self.arrive(from, to, len, wire, arrive, dup, msg);
        } else {
            self.queue.push(arrive, Event::Hop { from, to, len, hop: 1, msg, dup });
        }
    }

    /// A message arrived at the site between hop `hop - 1` and hop `hop`
    /// of its path: it goes on across hop `hop`.
    fn next_hop(
        &mut self,
        from: NodeId,
        to: NodeId,
        len: u32,
        hop: u16,
        msg: Slot,
        dup: Option<i64>,
    ) {
        let kind = self.in_flight.get(msg).kind();
        let bytes = self.wire_bytes(from, to, kind, u64::from(len));
        let h = self.plan.paths[self.site(from)][self.site(to)][usize::from(hop)];
        let crossed = self.cross(from, to, kind, len, bytes, usize::from(hop), h, None);
        let Some((arrive, here)) = crossed else {
            self.in_flight.take(msg);
            return;
        };
        let dup = dup.or(here);
        if usize::from(hop) + 1 == self.plan.paths[self.site(from)][self.site(to)].len() {
            let wire = u32::try_from(bytes.0).unwrap_or(u32::MAX);
            self.arrive(from, to, len, wire, arrive, dup, msg);
        } else {
            self.queue.push(arrive, Event::Hop { from, to, len, hop: hop + 1, msg, dup });
        }
    }

    /// Queues the delivery of a message that crossed its last link at
    /// `arrive`, and of its copy `dup` nanoseconds later if a link made one.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn arrive(
        &mut self,
        from: NodeId,
        to: NodeId,
        len: u32,
        wire: u32,
        arrive: Time,
        dup: Option<i64>,
        msg: Slot,
    ) {
        if let Some(extra) = dup {
            let copy = self.in_flight.get(msg).clone();
            let copy = self.in_flight.put(copy);
            self.queue.push(arrive, Event::Deliver { from, to, len, wire, copy: false, msg });
            let at = Time(arrive.0 + extra);
            self.queue.push(at, Event::Deliver { from, to, len, wire, copy: true, msg: copy });
        } else {
            self.queue.push(arrive, Event::Deliver { from, to, len, wire, copy: false, msg });
        }
    }

    /// Hands a message to hop `hop` of its path, `h`, now and meters it there:
    /// `bytes` on the link's direction (lost or not, once it is sent onto
    /// it), the reverse bytes back once it crossed; with `sent` (the frame
    /// length, on the first hop) also the sending itself. Returns when it reaches
    /// the far end and, when the link made a copy, how much later the copy
    /// arrives; `None` when the link lost it. A known limit: the ACKs of a
    /// message are counted as it crosses each link, so a message that then
    /// reaches a node that is down still has its ACKs counted.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn cross(
        &mut self,
        from: NodeId,
        to: NodeId,
        kind: MessageKind,
        len: u32,
        (wire, reverse): (u64, u64),
        hop: usize,
        h: Hop,
        sent: Option<u64>,
    ) -> Option<(Time, Option<i64>)> {
        let at = self.now;
        let wan = self.plan.links[h.link].wan;
        let dir = if wan { h.dir } else { self.plan.lan_direction(from, to) };
        match self.links[h.link].transmit(dir, self.now, wire, &mut self.net_rng) {
            Transmission::Lost { reason, start, serialisation } => {
                if let Some(frame) = sent {
                    self.meter.push(Record::Sent { at, from, kind, wire, reverse, frame });
                }
                self.lost += 1;
                let partitioned = reason == LossReason::Partition;
                if !partitioned {
                    let business = wan && self.plan.business[h.link].contains(start);
                    let traffic = LinkTraffic {
                        bytes: wire,
                        busy_ns: serialisation.as_nanos() as u64,
                        business,
                        wan,
                        message: true,
                        lost: true,
                    };
                    let link = h.link as u32;
                    self.meter.push(Record::Lost { link, dir, at: start, traffic });
                }
                if self.trace_on {
                    let hop = u16::try_from(hop).unwrap_or(u16::MAX);
                    self.lost_rows.push(LostRow { at, from, to, kind, len, hop, partitioned });
                }
                None
            }
            Transmission::Delivered { start, arrive, duplicate_arrive, serialisation } => {
                let business = wan && self.plan.business[h.link].contains(start);
                // ACKs (and a wake-up's far side of the handshake) flow
                // back; counted, never delaying data.
                let busy_ns = serialisation.as_nanos() as u64;
                let link = h.link as u32;
                let small = (u32::try_from(wire).ok(), u32::try_from(reverse).ok());
                match (sent.map(u32::try_from), small) {
                    (Some(Ok(frame)), (Some(wire), Some(reverse))) => {
                        self.meter.sent_crossed(SentCrossed {
                            at,
                            from,
                            kind,
                            frame,
                            wire,
                            reverse,
                            link,
                            dir,
                            business,
                            start,
                            busy_ns,
                        });
                    }
                    _ => {
                        if let Some(frame) = sent {
                            self.meter.push(Record::Sent { at, from, kind, wire, reverse, frame });
                        }
                        let at = start;
                        let crossing =
                            Record::Crossing { link, dir, business, at, wire, busy_ns, reverse };
                        self.meter.push(crossing);
                    }
                }
                Some((arrive, duplicate_arrive.map(|d| d.0 - arrive.0)))
            }
        }
    }

    fn observe(&mut self, node: NodeId, o: Observation) {
        let client = node.0.checked_sub(self.plan.client_base);
        let at = self.now;
        self.meter.push(Record::Observed { at, node, client, o: Box::new(o) });
    }

    fn act(&mut self, a: Action) {
        match a {
            Action::InitialPolicies => {
                for (i, p) in self.sc.policies.iter().enumerate() {
                    let (id, platforms) = (p.id.clone(), p.platforms.clone());
                    self.meter.push(Record::Call(Box::new(move |obs, _| {
                        obs.policy_defined(&id, &platforms);
                    })));
                    let change = nodes::initial_change(self.sc, self.seed, i);
                    let now = self.node_now(NodeId(0));
                    let proposal = INITIAL_PROPOSAL_BASE + i as u64;
                    let _ = self.master.handle_set_policy(now, change, proposal, &mut self.out);
                    self.drain(NodeId(0));
                }
            }
            Action::Change(i) => self.apply_change(i),
            Action::Query(i) => {
                let q = &self.sc.status_queries[i];
                let kind = match q.kind {
                    crate::scenario::StatusKind::Current => StatusKind::Current,
                    crate::scenario::StatusKind::Historical => {
                        StatusKind::Historical { at: Some(self.now) }
                    }
                };
                let scope = match (&q.site, q.client) {
                    (Some(s), _) => Scope::Site(Name::new(s)),
                    (None, Some(c)) => Scope::Client(NodeId(self.plan.client_base + c as u32)),
                    _ => Scope::All,
                };
                let now = self.now;
                self.meter.push(Record::Call(Box::new(move |obs, _| obs.query_asked(i, now))));
                let now = self.node_now(NodeId(0));
                self.master.handle_status_query(now, i as u64, kind, scope, &mut self.out);
                self.drain(NodeId(0));
            }
            Action::Crash(i) => self.crash(i, true),
            Action::Restart(i) => self.crash(i, false),
            Action::GoOffline(c) => {
                let id = NodeId(self.plan.client_base + c);
                let st = self.st_mut(id);
                st.up = false;
                st.epoch += 1;
                if let Some(off) = &self.sc.client.offline {
                    let back = self.now + Duration::from(off.off);
                    self.queue.push(back, Event::Action(Action::ComeBack(c)));
                }
            }
            Action::ComeBack(c) => {
                let id = NodeId(self.plan.client_base + c);
                self.st_mut(id).up = true;
                let now = self.node_now(id);
                self.clients[c as usize].node.handle_start(now, &mut self.out);
                self.drain(id);
                if let Some(off) = &self.sc.client.offline {
                    let next = self.now + Duration::from(off.every) - Duration::from(off.off);
                    self.queue.push(next, Event::Action(Action::GoOffline(c)));
                }
            }
        }
    }

    /// A scenario change, made where its origin says. Under the flat
    /// strategies there are no local servers, so a change created at a
    /// site is made at the master at the same moment.
    ///
    /// A change due at a local server that is down waits: the operator
    /// makes it again as soon as the server is back ([`World::crash`]). Its
    /// delay still counts from the scenario's time, and if the server never
    /// comes back it is dropped, its clients counted as never applied.
    fn apply_change(&mut self, i: usize) {
        let c = &self.sc.changes[i];
        let (now, platforms) = (self.now, c.platforms.clone());
        self.meter.push(Record::Call(Box::new(move |obs, _| {
            obs.change_made(i, now, platforms.as_deref());
        })));
        match nodes::change_origin(self.sc, &self.plan, self.strategy, i) {
            Some(l) => {
                if !self.servers[1 + l].up {
                    self.meter.push(Record::Call(Box::new(move |obs, _| obs.change_deferred(i))));
                    self.pending_changes.push((l, i));
                    return;
                }
                self.change_at_local(l, i);
            }
            _ => {
                let change = self.policy_change(i);
                let now = self.node_now(NodeId(0));
                self.meter.push(Record::Call(Box::new(move |obs, _| {
                    obs.proposal_origin(NodeId(0), i as u64, i);
                })));
                let _ = self.master.handle_set_policy(now, change, i as u64, &mut self.out);
                self.drain(NodeId(0));
            }
        }
    }

    /// Makes change `i` at local server `l`, which is up.
    fn change_at_local(&mut self, l: usize, i: usize) {
        let id = NodeId(1 + l as u32);
        let change = self.policy_change(i);
        let now = self.node_now(id);
        self.meter.push(Record::Call(Box::new(move |obs, _| {
            obs.proposal_origin(id, i as u64, i);
        })));
        self.locals[l].handle_set_policy(now, change, i as u64, &mut self.out);
        self.drain(id);
    }

    /// Scenario change `i` as the engine takes it.
    fn policy_change(&self, i: usize) -> tiersync_engine::PolicyChange {
        nodes::scenario_change(self.sc, self.seed, i)
    }

    /// A crash (`down`) or restart of the nodes a fault names. A local
    /// server keeps its store; a client loses its memory.
    fn crash(&mut self, fault: usize, down: bool) {
        let Fault::Crash(c) = &self.sc.faults[fault] else { return };
        let site = self.sc.site_index(&c.site).unwrap_or(0);
        let nodes = match c.node {
            CrashTarget::Local => self.nodes_of(site, true),
            CrashTarget::Clients => self.nodes_of(site, false),
            CrashTarget::Share(p) => {
                let mut rng =
                    Pcg64Mcg::seed_from_u64(seeds::derive(self.seed, "crash", fault as u64));
                self.nodes_of(site, false)
                    .into_iter()
                    .filter(|_| rng.random_bool(p.value()))
                    .collect()
            }
        };
        for id in nodes {
            let idx = id.0 as usize;
            if down {
                let st = self.st_mut(id);
                st.up = false;
                st.epoch += 1;
                continue;
            }
            self.st_mut(id).up = true;
            let now = self.node_now(id);
            if idx < self.plan.client_base as usize {
                self.locals[idx - 1].handle_restart(now, &mut self.out);
                self.drain(id);
                // The operator makes the changes the server missed, in order.
                let (due, wait): (Vec<_>, Vec<_>) =
                    self.pending_changes.iter().partition(|&&(l, _)| l == idx - 1);
                self.pending_changes = wait;
                for (l, change) in due {
                    self.change_at_local(l, change);
                }
            } else {
                let ci = idx - self.plan.client_base as usize;
                let profile = self.profiles[self.client_profile[ci] as usize].clone();
                let seed = seeds::derive(self.seed, "client-reinstall", id.0 as u64);
                self.clients[ci].node = Client::new(id, profile, seed);
                self.clients[ci].node.handle_start(now, &mut self.out);
                self.drain(id);
            }
        }
    }

    /// Clients whose enforced policies equal the derivation of the master's
    /// final set for their site and platform (ids, revisions, parameters).
    fn count_up_to_date(&self) -> u64 {
        let want: Vec<Vec<(Name, u64, tiersync_engine::Params)>> = self
            .profiles
            .iter()
            .map(|p| {
                self.master
                    .store()
                    .iter()
                    .filter(|h| h.full.record.spec.applies_to(&p.platform))
                    .map(|h| {
                        let spec = &h.full.record.spec;
                        let scope = spec.scope_for(&p.site);
                        let params = spec.derive_params(scope.as_ref(), &p.platform);
                        (h.id().clone(), h.revision().0, params)
                    })
                    .collect()
            })
            .collect();
        let mut n = 0;
        for (c, client) in self.clients.iter().map(|c| &c.node).enumerate() {
            let w = &want[self.client_profile[c] as usize];
            let got = client.applied();
            let same = got.len() == w.len()
                && got.iter().zip(w).all(|(e, (id, rev, params))| {
                    &e.id == id && e.revision.0 == *rev && &e.params == params
                });
            n += u64::from(same);
        }
        n
    }

    /// Closes the books; `wall` is when the run started.
    fn finish(self, wall: std::time::Instant) -> RunOutput {
        let end = self.sc.end();
        let up_to_date_at_end = self.count_up_to_date();
        let (mut obs, hash) = self.meter.finish();
        let trace_hash: String = hash[..16].iter().map(|b| format!("{b:02x}")).collect();

        let online_at_end = self.clients.iter().filter(|c| c.state.up).count() as u64;
        let reporting_at_master = match self.strategy {
            Strategy::Tiered => {
                let mut n: u64 = self.master.latest_stats().map(|s| s.clients()).sum();
                n += self.master.clients().len() as u64;
                n
            }
            _ => self.master.clients().len() as u64,
        };
        for &(_, change) in &self.pending_changes {
            obs.change_dropped(change);
        }
        let (summary_parts, detail) = obs.finish(end, &self.plan, self.sc);
        // Once the metering thread is done; what follows is only copying.
        #[allow(clippy::disallowed_methods)] // The run's wall time, printed, never in results.
        let wall_seconds = wall.elapsed().as_secs_f64();
        let summary = RunSummary {
            scenario: self.sc.name.clone(),
            strategy: self.strategy.name().to_string(),
            seed: self.seed,
            trace_hash,
            simulated_seconds: end.saturating_since(self.sc.start).as_secs_f64(),
            wall_seconds,
            events: self.events,
            delivered_messages: self.delivered,
            wan: summary_parts.wan,
            master: summary_parts.master,
            propagation_seconds: summary_parts.propagation,
            staleness_client_hours: summary_parts.staleness_client_hours,
            clients: crate::output::ClientSummary {
                total: self.clients.len() as u64,
                online_at_end,
                reporting_at_master,
                up_to_date_at_end,
            },
            by_kind: summary_parts.by_kind,
            servers: summary_parts.servers,
            sites: summary_parts.sites,
            status_queries: summary_parts.queries,
            lost_messages: self.lost,
            changes: summary_parts.changes,
            client_groups: summary_parts.client_groups,
            links: summary_parts.links,
            rejections: summary_parts.rejections,
            transport_model: self.transport.clone(),
        };
        RunOutput { summary, detail, platforms: summary_parts.platforms }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tiersync_engine::Revision;

    /// Flat clients at `eu` (one WAN hop from the master) and at `x`
    /// below it (two hops, the first a slow line).
    const TWO_HOPS: &str = r#"
name = "two-hops"
seed = 1
start = "2026-03-02T00:00:00Z"
duration = "1d"
strategy = "flat"

[master]
site = "hq"

[client]
poll = "1h"
splay = "30m"
status_every = "1h"
inventory = "1KiB"

[local]
sync_window = "02:00-04:00"

[[site]]
name = "hq"
timezone = "UTC"

[[site]]
name = "eu"
parent = "hq"
timezone = "UTC"
clients = { linux = 1 }
wan = { bandwidth = "1Mbit/s", latency = "10ms" }

[[site]]
name = "x"
parent = "eu"
timezone = "UTC"
clients = { linux = 1 }
wan = { bandwidth = "16kbit/s", latency = "10ms" }

[[fault]]
kind = "skew"
site = "hq"
node = "master"
offset = "1h"

[[fault]]
kind = "skew"
site = "x"
client = 0
offset = "-90s"
"#;

    fn world(sc: &Scenario) -> World<'_> {
        let opts = RunOptions {
            strategy: Strategy::Flat,
            seed: None,
            keep_detail: false,
            single_thread: false,
        };
        let mut w = World::new(sc, &opts);
        // Start from idle links and an empty queue: only the test's sends.
        w.queue = EventQueue::new();
        w.links = w.plan.links.iter().map(|l| Link::new(l.config.clone()).unwrap()).collect();
        w
    }

    /// Runs the queue, handing messages on between links, and returns the
    /// deliveries as (sender, time).
    fn deliveries(w: &mut World<'_>) -> Vec<(NodeId, Time)> {
        let mut out = Vec::new();
        while let Some((at, ev)) = w.queue.pop() {
            w.now = at;
            match ev {
                Event::Hop { from, to, len, hop, msg, dup } => {
                    w.next_hop(from, to, len, hop, msg, dup)
                }
                Event::Deliver { from, .. } => out.push((from, at)),
                _ => {}
            }
        }
        out
    }

    /// A message sent from `x` reaches `eu` after the slow first link; one
    /// sent from `eu` while it is still on that link crosses the idle
    /// second link at once instead of waiting behind it (the FIFO of each
    /// link is in order of arrival, not of sending).
    #[test]
    fn each_link_is_fifo_in_order_of_arrival() {
        let sc = Scenario::from_str_named(TWO_HOPS, "two-hops.toml").unwrap();
        let mut w = world(&sc);
        let (eu_client, x_client) = (NodeId(w.plan.client_base), NodeId(w.plan.client_base + 1));
        let wake = || Message::Wake { revision: Revision(1) };
        let (wire, _) = w.wire_bytes(x_client, NodeId(0), MessageKind::Wake, frame_len_of(&wake()));
        let at = |bits: u64, bps: u64| Duration::from_nanos((bits * 1_000_000_000).div_ceil(bps));
        let lat = Duration::from_millis(10);

        let t0 = sc.start;
        w.now = t0;
        w.send(x_client, NodeId(0), wake());
        let half = t0 + Duration::from_millis(500);
        w.now = half;
        w.send(eu_client, NodeId(0), wake());
        let got = deliveries(&mut w);

        // The eu message does not queue: it left at 0.5 s.
        let eu_arrives = half + at(wire * 8, 1_000_000) + lat;
        // The x message reached eu after 16 kbit/s, then crossed 1 Mbit/s.
        let at_eu = t0 + at(wire * 8, 16_000) + lat;
        assert!(at_eu > eu_arrives, "the test needs the eu message to go first");
        let x_arrives = at_eu + at(wire * 8, 1_000_000) + lat;
        assert_eq!(got, vec![(eu_client, eu_arrives), (x_client, x_arrives)]);
    }

    #[test]
    fn skew_moves_the_master_or_one_client_only() {
        let sc = Scenario::from_str_named(TWO_HOPS, "two-hops.toml").unwrap();
        let w = world(&sc);
        let servers = w.servers.iter().map(|s| s.skew);
        let skews: Vec<i64> = servers.chain(w.clients.iter().map(|c| c.state.skew)).collect();
        let hour = 3_600_000_000_000;
        // The master, the client at eu, the client at x.
        assert_eq!(skews, vec![hour, 0, -90_000_000_000]);
    }
}
