//! The simulation: the engine's real nodes on a simulated network.
//!
//! [`run`] builds a master, local servers and clients from a scenario,
//! places them at their sites, and processes events in time order: message
//! deliveries, node timers and scenario actions (changes, status queries,
//! faults). Messages cross the links between the sender's and receiver's
//! sites, each charged the exact length of its encoded frame plus the
//! transport model's overhead. Nothing here decides what a node does: the
//! simulator only carries messages and reads observations.

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

use crate::build::{self, Plan};
use crate::link::{Link, Transmission};
use crate::metrics::{LinkTraffic, Observer};
use crate::nodes::{self, INITIAL_PROPOSAL_BASE};
use crate::output::{RunOutput, RunSummary};
use crate::prefetch;
use crate::queue::EventQueue;
use crate::scenario::{CrashTarget, Fault, Scenario, SkewTarget, Strategy};
use crate::seeds;
use crate::tracehash::TraceHasher;
use crate::transport::TransportModel;

/// How to run a scenario.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The strategy to simulate.
    pub strategy: Strategy,
    /// The seed; `None` takes the scenario's.
    pub seed: Option<u64>,
    /// Keep every propagation delay and time-series row (for reports).
    pub keep_detail: bool,
}

/// Callbacks a caller may hook into a run (progress bars, trace files).
pub trait Hooks {
    /// Called now and then with the simulated time reached.
    fn progress(&mut self, _now: Time) {}
    /// Called for every delivered message, when `wants_trace` is set.
    fn delivered(&mut self, _row: &TraceRow<'_>) {}
    /// Whether [`Hooks::delivered`] should be called.
    fn wants_trace(&self) -> bool {
        false
    }
}

/// Hooks that do nothing.
pub struct NoHooks;
impl Hooks for NoHooks {}

/// One delivered message, for `--trace`.
#[derive(Debug)]
pub struct TraceRow<'a> {
    /// Delivery time.
    pub at: Time,
    /// Sender.
    pub from: NodeId,
    /// Sender's site.
    pub from_site: &'a str,
    /// Receiver.
    pub to: NodeId,
    /// Receiver's site.
    pub to_site: &'a str,
    /// WAN links crossed, `;`-separated site names of their child ends.
    pub wan_links: String,
    /// Message kind.
    pub kind: &'static str,
    /// Bytes on the wire.
    pub bytes: u64,
    /// Bytes of the message's frame alone (application bytes).
    pub frame_bytes: u64,
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

/// An event in the queue.
enum Event {
    /// `len` is the frame length, computed once when the message was sent.
    Deliver {
        from: NodeId,
        to: NodeId,
        len: u32,
        msg: Box<Message>,
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
}

impl NodeState {
    fn at(self, site: usize) -> NodeState {
        NodeState { site: site as u16, ..self }
    }
}

/// How many events ahead [`World::prefetch`] warms memory: far enough for
/// a cache miss to complete (a few hundred nanoseconds of work), near
/// enough that the lines are still cached when the event runs.
const PREFETCH_AHEAD: usize = 4;

/// Runs `scenario` and returns its summary and detail.
pub fn run(scenario: &Scenario, opts: &RunOptions, hooks: &mut dyn Hooks) -> RunOutput {
    #[allow(clippy::disallowed_methods)] // Timing the run is the one wall-clock reading.
    let wall = std::time::Instant::now();
    let mut w = World::new(scenario, opts);
    w.run(hooks);
    #[allow(clippy::disallowed_methods)] // The run's wall time, printed, never in results.
    let wall_seconds = wall.elapsed().as_secs_f64();
    w.finish(wall_seconds)
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
    plan: Plan,
    master: Master,
    locals: Vec<Local>,
    clients: Vec<Client>,
    /// Per node: incarnation, up or down, site, clock offset. One array of
    /// small records, so that an event touching a node costs one cache line.
    state: Vec<NodeState>,
    links: Vec<Link>,
    queue: EventQueue<Event>,
    out: Outbox,
    net_rng: Pcg64Mcg,
    transport: TransportModel,
    obs: Observer,
    trace: TraceHasher,
    events: u64,
    delivered: u64,
    lost: u64,
    now: Time,
    profiles: Vec<Arc<ClientProfile>>,
    client_profile: Vec<u32>,
    /// Per client: its last report and that report's frame length.
    report_len: Vec<Option<(Arc<SecurityReport>, u32)>>,
}

impl<'a> World<'a> {
    fn new(sc: &'a Scenario, opts: &RunOptions) -> World<'a> {
        let seed = opts.seed.unwrap_or(sc.seed);
        let plan = build::plan(sc, opts.strategy);
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
        let state: Vec<NodeState> = (0..node_count as u32)
            .map(|n| NodeState { epoch: 0, up: true, site: 0, skew: 0 }.at(plan.site_of(NodeId(n))))
            .collect();
        // The scenario loader validated every link's numbers already.
        let links = plan
            .links
            .iter()
            .map(|l| Link::new(l.config.clone()).expect("validated link"))
            .collect();
        let obs = Observer::new(sc, &plan, &clients, &profiles, &client_profile, opts.keep_detail);

        let mut w = World {
            sc,
            strategy: opts.strategy,
            seed,
            plan,
            master,
            locals,
            clients,
            state,
            links,
            queue: EventQueue::with_capacity(node_count * 2 + 1024),
            out: Outbox::new(),
            net_rng: Pcg64Mcg::seed_from_u64(seeds::derive(seed, "network", 0)),
            transport,
            obs,
            trace: TraceHasher::new(),
            events: 0,
            delivered: 0,
            lost: 0,
            now: sc.start,
            report_len: vec![None; client_profile.len()],
            profiles,
            client_profile,
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
                    for node in self.nodes_of(site, s.node == SkewTarget::Local) {
                        self.state[node.0 as usize].skew = ns;
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
            self.clients[i].handle_start(now, &mut self.out);
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

    /// The site a node sits at.
    fn site(&self, id: NodeId) -> usize {
        self.state[id.0 as usize].site as usize
    }

    /// The time a node's own clock shows.
    fn node_now(&self, id: NodeId) -> Time {
        Time(self.now.0 + self.state[id.0 as usize].skew)
    }

    fn run(&mut self, hooks: &mut dyn Hooks) {
        let end = self.sc.end();
        let trace = hooks.wants_trace();
        let mut next_progress = 0u64;
        while let Some((at, event)) = self.queue.pop() {
            if at > end {
                break;
            }
            self.now = at;
            self.events += 1;
            if let Some((_, ahead)) = self.queue.peek_in_bucket(PREFETCH_AHEAD) {
                self.prefetch(ahead);
            }
            if self.events >= next_progress {
                hooks.progress(at);
                next_progress = self.events + 1_000_000;
            }
            match event {
                Event::Deliver { from, to, len, msg } => {
                    self.deliver(from, to, u64::from(len), *msg, trace, hooks)
                }
                Event::Timer { node, epoch, timer } => {
                    let st = self.state[node.0 as usize];
                    if st.epoch == epoch && st.up {
                        self.fire(node, timer);
                    }
                }
                Event::Action(a) => self.act(a),
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
                prefetch::read(&**msg);
                *to
            }
            Event::Timer { node, .. } => *node,
            Event::Action(_) => return,
        };
        if let Some(st) = self.state.get(node.0 as usize) {
            prefetch::read(st);
        }
        if let Some(c) = node.0.checked_sub(self.plan.client_base)
            && let Some(client) = self.clients.get(c as usize)
        {
            prefetch::read_all(client);
        }
    }

    fn deliver(
        &mut self,
        from: NodeId,
        to: NodeId,
        len: u64,
        msg: Message,
        trace: bool,
        hooks: &mut dyn Hooks,
    ) {
        if !self.state[to.0 as usize].up {
            self.lost += 1;
            return;
        }
        let kind = msg.kind();
        self.delivered += 1;
        let mut record = [0u8; 25];
        record[..8].copy_from_slice(&self.now.0.to_le_bytes());
        record[8..12].copy_from_slice(&from.0.to_le_bytes());
        record[12..16].copy_from_slice(&to.0.to_le_bytes());
        record[16] = kind as u8;
        record[17..].copy_from_slice(&len.to_le_bytes());
        self.trace.update(&record);
        if trace {
            let (fs, ts) = (self.site(from), self.site(to));
            let wan_links = self.plan.paths[fs][ts]
                .iter()
                .filter(|h| self.plan.links[h.link].wan)
                .map(|h| self.sc.sites[self.plan.links[h.link].site].name.as_str())
                .collect::<Vec<_>>()
                .join(";");
            hooks.delivered(&TraceRow {
                at: self.now,
                from,
                from_site: &self.sc.sites[fs].name,
                to,
                to_site: &self.sc.sites[ts].name,
                wan_links,
                kind: kind.as_str(),
                bytes: self.wire_bytes(from, to, kind, len),
                frame_bytes: len,
            });
        }
        if to == NodeId(0)
            && let Message::Report { report } = &msg
        {
            self.obs.site_heard(self.now, &report.site);
        }

        let now = self.node_now(to);
        let idx = to.0 as usize;
        if to.0 == 0 {
            self.master.handle_message(now, from, msg, &mut self.out);
        } else if idx < self.plan.client_base as usize {
            self.locals[idx - 1].handle_message(now, from, msg, &mut self.out);
        } else {
            let c = idx - self.plan.client_base as usize;
            self.clients[c].handle_message(now, from, msg, &mut self.out);
        }
        self.drain(to);
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
            self.clients[c].handle_timer(now, timer, &mut self.out);
        }
        self.drain(node);
    }

    /// Carries out what a node asked for: sends, timers, observations.
    fn drain(&mut self, node: NodeId) {
        while let Some(t) = self.out.poll_transmit() {
            self.send(node, t.to, t.msg);
        }
        let NodeState { epoch, skew, .. } = self.state[node.0 as usize];
        while let Some((at, timer)) = self.out.poll_timer() {
            // The node asked in its own clock; the queue runs on true time.
            let at = Time(at.0 - skew).max(self.now);
            self.queue.push(at, Event::Timer { node, epoch, timer });
        }
        while let Some(o) = self.out.poll_observation() {
            self.observe(node, o);
        }
    }

    /// Wire bytes of one message: frame plus transport overhead, plus
    /// connection setup and teardown for client exchanges, which open a
    /// connection each (an agent polling over HTTPS).
    fn wire_bytes(&self, from: NodeId, to: NodeId, kind: MessageKind, frame: u64) -> u64 {
        let mut bytes = self.transport.wire_bytes(frame);
        let client_side = from.0 >= self.plan.client_base || to.0 >= self.plan.client_base;
        if client_side {
            let (setup_c2s, setup_s2c) = self.transport.connection_setup_bytes();
            let (down_c2s, down_s2c) = self.transport.teardown_bytes();
            match kind {
                // The client opens a connection for its request...
                MessageKind::Poll | MessageKind::Report => bytes += setup_c2s + down_c2s,
                // ...and the server's answer closes it.
                MessageKind::PolicyUpdate | MessageKind::ReportAck | MessageKind::Error => {
                    bytes += setup_s2c + down_s2c
                }
                // A wake-up reaches the client on a connection of its own.
                MessageKind::Wake => bytes += setup_c2s + setup_s2c + down_c2s + down_s2c,
                _ => {}
            }
        }
        bytes
    }

    /// The exact frame length of `msg`, sent by `from`.
    ///
    /// A client resends the same shared report while nothing in it changed,
    /// so its length is remembered per client with the report it belongs
    /// to. The cache holds a reference to that report, so its address
    /// cannot be reused by another report while the entry stands.
    fn frame_len(&mut self, from: NodeId, msg: &Message) -> u64 {
        let client = from.0.checked_sub(self.plan.client_base);
        let (Some(c), Message::Report { report }) = (client, msg) else {
            return frame_len_of(msg);
        };
        let slot = &mut self.report_len[c as usize];
        if let Some((cached, len)) = slot
            && Arc::ptr_eq(cached, report)
        {
            return u64::from(*len);
        }
        let len = frame_len_of(msg);
        *slot = u32::try_from(len).ok().map(|l| (report.clone(), l));
        len
    }

    /// Sends a message across the links between the two nodes' sites.
    ///
    /// Every hop is booked when the message is sent, each at the time the
    /// message reaches it. A known limit: on a path of several WAN links
    /// (flat clients two tiers below the master), a later message can book
    /// the second link before an earlier one that is still crossing the
    /// first, so FIFO holds per link in order of sending, not of arrival.
    fn send(&mut self, from: NodeId, to: NodeId, msg: Message) {
        let kind = msg.kind();
        let frame = self.frame_len(from, &msg);
        let wire = self.wire_bytes(from, to, kind, frame);
        let ack = self.transport.ack_bytes(frame);
        self.obs.count_kind(kind, wire, frame);
        if from.0 == 0 || to.0 == 0 {
            self.obs.count_master(self.now, from.0 == 0, wire);
        }
        self.obs.count_servers(from, to, wire);

        let (fs, ts) = (self.site(from), self.site(to));
        let mut t = self.now;
        let mut duplicate = None;
        for hop in self.plan.paths[fs][ts].iter() {
            let link = &mut self.links[hop.link];
            match link.transmit(hop.dir, t, wire, &mut self.net_rng) {
                Transmission::Lost { .. } => {
                    self.lost += 1;
                    return;
                }
                Transmission::Delivered { start, arrive, duplicate_arrive, serialisation } => {
                    let wan = self.plan.links[hop.link].wan;
                    let business = wan && self.plan.business[hop.link].contains(start);
                    let traffic = LinkTraffic {
                        bytes: wire,
                        busy: serialisation,
                        business,
                        wan,
                        message: true,
                    };
                    self.obs.count_link(hop.link, hop.dir, start, traffic);
                    if ack > 0 {
                        // Pure ACKs flow back; counted, never delaying data.
                        let acks = LinkTraffic {
                            bytes: ack,
                            busy: Duration::ZERO,
                            message: false,
                            ..traffic
                        };
                        self.obs.count_link(hop.link, hop.dir.reverse(), start, acks);
                    }
                    if duplicate.is_none() {
                        duplicate = duplicate_arrive.map(|d| d.0 - arrive.0);
                    }
                    t = arrive;
                }
            }
        }
        if let Some(extra) = duplicate {
            let copy = Box::new(msg.clone());
            let len = u32::try_from(frame).unwrap_or(u32::MAX);
            self.queue.push(Time(t.0 + extra), Event::Deliver { from, to, len, msg: copy });
        }
        if from.0 < self.plan.client_base && to.0 < self.plan.client_base {
            self.obs.server_message(self.now, from, to, &msg, wire, &self.plan);
        }
        let len = u32::try_from(frame).unwrap_or(u32::MAX);
        self.queue.push(t, Event::Deliver { from, to, len, msg: Box::new(msg) });
    }

    fn observe(&mut self, node: NodeId, o: Observation) {
        let client = node.0.checked_sub(self.plan.client_base);
        self.obs.record(self.now, node, client, o, &self.plan);
    }

    fn act(&mut self, a: Action) {
        match a {
            Action::InitialPolicies => {
                for (i, p) in self.sc.policies.iter().enumerate() {
                    self.obs.policy_defined(&p.id, &p.platforms);
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
                self.obs.query_asked(i, self.now);
                let now = self.node_now(NodeId(0));
                self.master.handle_status_query(now, i as u64, kind, scope, &mut self.out);
                self.drain(NodeId(0));
            }
            Action::Crash(i) => self.crash(i, true),
            Action::Restart(i) => self.crash(i, false),
            Action::GoOffline(c) => {
                let id = NodeId(self.plan.client_base + c);
                self.state[id.0 as usize].up = false;
                self.state[id.0 as usize].epoch += 1;
                if let Some(off) = &self.sc.client.offline {
                    let back = self.now + Duration::from(off.off);
                    self.queue.push(back, Event::Action(Action::ComeBack(c)));
                }
            }
            Action::ComeBack(c) => {
                let id = NodeId(self.plan.client_base + c);
                self.state[id.0 as usize].up = true;
                let now = self.node_now(id);
                self.clients[c as usize].handle_start(now, &mut self.out);
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
    fn apply_change(&mut self, i: usize) {
        let c = &self.sc.changes[i];
        let change = nodes::scenario_change(self.sc, self.seed, i);
        self.obs.change_made(i, self.now, c.platforms.as_deref());
        match nodes::change_origin(self.sc, &self.plan, self.strategy, i) {
            Some(l) => {
                let id = NodeId(1 + l as u32);
                if !self.state[id.0 as usize].up {
                    return;
                }
                let now = self.node_now(id);
                self.obs.proposal_origin(id, i as u64, i);
                self.locals[l].handle_set_policy(now, change, i as u64, &mut self.out);
                self.drain(id);
            }
            _ => {
                let now = self.node_now(NodeId(0));
                self.obs.proposal_origin(NodeId(0), i as u64, i);
                let _ = self.master.handle_set_policy(now, change, i as u64, &mut self.out);
                self.drain(NodeId(0));
            }
        }
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
                self.state[idx].up = false;
                self.state[idx].epoch += 1;
                continue;
            }
            self.state[idx].up = true;
            let now = self.node_now(id);
            if idx < self.plan.client_base as usize {
                self.locals[idx - 1].handle_restart(now, &mut self.out);
            } else {
                let ci = idx - self.plan.client_base as usize;
                let profile = self.profiles[self.client_profile[ci] as usize].clone();
                let seed = seeds::derive(self.seed, "client-reinstall", id.0 as u64);
                self.clients[ci] = Client::new(id, profile, seed);
                self.clients[ci].handle_start(now, &mut self.out);
            }
            self.drain(id);
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
        for (c, client) in self.clients.iter().enumerate() {
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

    fn finish(mut self, wall_seconds: f64) -> RunOutput {
        let end = self.sc.end();
        let hash = self.trace.finalize();
        let trace_hash: String = hash[..16].iter().map(|b| format!("{b:02x}")).collect();

        let online = self.plan.client_base as usize;
        let online_at_end = self.state[online..].iter().filter(|s| s.up).count() as u64;
        let reporting_at_master = match self.strategy {
            Strategy::Tiered => {
                let mut n: u64 = self.master.latest_stats().map(|s| s.clients()).sum();
                n += self.master.clients().len() as u64;
                n
            }
            _ => self.master.clients().len() as u64,
        };
        let up_to_date_at_end = self.count_up_to_date();
        let (summary_parts, detail) = self.obs.finish(end, &self.plan, self.sc);
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
            rejections: summary_parts.rejections,
            transport_model: self.transport.clone(),
        };
        RunOutput { summary, detail, platforms: summary_parts.platforms }
    }
}
