//! A small deterministic harness for tests: nodes exchange messages with a
//! fixed latency, time jumps to the next event, and every run is bounded
//! by a step count.
//!
//! It is deliberately simpler than the simulator (no links, no bandwidth,
//! no time zones for links): it exists to test the protocol's logic in
//! isolation, the way quinn-proto tests a pair of endpoints.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use crate::blob::Blob;
use crate::client::{Client, ClientProfile};
use crate::ids::{Name, NodeId, SiteName};
use crate::local::{Local, LocalConfig};
use crate::master::{Master, MasterConfig};
use crate::message::Message;
use crate::node::Node;
use crate::outbox::{Observation, Outbox, Timer};
use crate::serve::{ClientAdmission, ServeMode};
use crate::sign::PolicyVerifier;
use crate::time::Time;

/// What the harness does with a message about to be delivered.
pub enum Verdict {
    /// Deliver it unchanged.
    Deliver,
    /// Drop it (a partition, a dead node).
    Drop,
    /// Deliver this message instead (tampering).
    Replace(Message),
}

/// A filter applied to every message: `(now, from, to, message)`.
pub type Filter = Box<dyn FnMut(Time, NodeId, NodeId, &Message) -> Verdict>;

enum Event {
    Deliver { from: NodeId, to: NodeId, msg: Message },
    Timer { node: NodeId, timer: Timer },
}

/// The step bound was reached before the target time: a livelock, or a
/// bound set too low.
#[derive(Debug, thiserror::Error)]
#[error("step bound of {0} reached at {1}")]
pub struct StepBound(pub usize, pub Time);

/// Nodes, a clock and an event queue.
pub struct Harness {
    now: Time,
    nodes: BTreeMap<NodeId, Node>,
    queue: BTreeMap<(Time, u64), Event>,
    seq: u64,
    latency: Duration,
    out: Outbox,
    filter: Option<Filter>,
    /// Every observation, with its time and node.
    pub observations: Vec<(Time, NodeId, Observation)>,
    /// Every message delivered: time, from, to, kind, encoded length.
    pub delivered: Vec<(Time, NodeId, NodeId, crate::message::MessageKind, usize)>,
}

impl Harness {
    /// An empty harness starting at `start`, delivering every message after
    /// `latency`.
    pub fn new(start: Time, latency: Duration) -> Harness {
        Harness {
            now: start,
            nodes: BTreeMap::new(),
            queue: BTreeMap::new(),
            seq: 0,
            latency,
            out: Outbox::new(),
            filter: None,
            observations: Vec::new(),
            delivered: Vec::new(),
        }
    }

    /// The current time.
    pub fn now(&self) -> Time {
        self.now
    }

    /// Installs a message filter (replacing any previous one).
    pub fn set_filter(&mut self, f: Filter) {
        self.filter = Some(f);
    }

    /// Removes the message filter.
    pub fn clear_filter(&mut self) {
        self.filter = None;
    }

    /// Adds a node and starts it.
    pub fn add(&mut self, mut node: Node) {
        let id = node.id();
        node.handle_start(self.now, &mut self.out);
        self.nodes.insert(id, node);
        self.drain(id);
    }

    /// Removes a node (a machine switched off); its pending timers and the
    /// messages queued to it are dropped, as a machine switched off loses
    /// them. Returns it, to be added back later (which starts it afresh).
    pub fn remove(&mut self, id: NodeId) -> Option<Node> {
        self.queue.retain(|_, e| match e {
            Event::Timer { node, .. } => *node != id,
            Event::Deliver { to, .. } => *to != id,
        });
        self.nodes.remove(&id)
    }

    /// A node, by id.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[&id]
    }

    /// The master, by id. Panics when `id` is not a master (tests only).
    pub fn master(&self, id: NodeId) -> &Master {
        match &self.nodes[&id] {
            Node::Master(m) => m,
            _ => panic!("{id} is not a master"),
        }
    }

    /// A local server, by id. Panics when `id` is not one (tests only).
    pub fn local(&self, id: NodeId) -> &Local {
        match &self.nodes[&id] {
            Node::Local(l) => l,
            _ => panic!("{id} is not a local server"),
        }
    }

    /// A client, by id. Panics when `id` is not one (tests only).
    pub fn client(&self, id: NodeId) -> &Client {
        match &self.nodes[&id] {
            Node::Client(c) => c,
            _ => panic!("{id} is not a client"),
        }
    }

    /// Runs `f` on a node (an operator command) and processes its effects.
    pub fn with<R>(&mut self, id: NodeId, f: impl FnOnce(&mut Node, Time, &mut Outbox) -> R) -> R {
        let node = self.nodes.get_mut(&id).expect("no such node");
        let r = f(node, self.now, &mut self.out);
        self.drain(id);
        r
    }

    /// Delivers a message from outside the deployment (a forged peer, a
    /// garbage sender) straight to `to`.
    pub fn inject(&mut self, from: NodeId, to: NodeId, msg: Message) {
        self.push(self.now, Event::Deliver { from, to, msg });
    }

    fn push(&mut self, at: Time, e: Event) {
        self.seq += 1;
        self.queue.insert((at, self.seq), e);
    }

    fn drain(&mut self, id: NodeId) {
        while let Some(t) = self.out.poll_transmit() {
            let at = self.now + self.latency;
            self.push(at, Event::Deliver { from: id, to: t.to, msg: t.msg });
        }
        while let Some((at, timer)) = self.out.poll_timer() {
            self.push(at.max(self.now), Event::Timer { node: id, timer });
        }
        while let Some(o) = self.out.poll_observation() {
            self.observations.push((self.now, id, o));
        }
    }

    /// Processes the next event, if any is due at or before `until`.
    pub fn step(&mut self, until: Time) -> bool {
        let Some(entry) = self.queue.first_entry() else { return false };
        if entry.key().0 > until {
            return false;
        }
        let ((at, _), event) = entry.remove_entry();
        self.now = at;
        match event {
            Event::Deliver { from, to, mut msg } => {
                if let Some(f) = &mut self.filter {
                    match f(at, from, to, &msg) {
                        Verdict::Deliver => {}
                        Verdict::Drop => return true,
                        Verdict::Replace(m) => msg = m,
                    }
                }
                let Some(node) = self.nodes.get_mut(&to) else { return true };
                // Every engine message encodes; the codec's tests cover
                // each kind, so a failure here is an engine bug.
                let len = crate::codec::encoded_len(&msg).expect("engine messages encode");
                self.delivered.push((at, from, to, msg.kind(), len));
                node.handle_message(at, from, msg, &mut self.out);
                self.drain(to);
            }
            Event::Timer { node, timer } => {
                let Some(n) = self.nodes.get_mut(&node) else { return true };
                n.handle_timer(at, timer, &mut self.out);
                self.drain(node);
            }
        }
        true
    }

    /// Runs every event up to `until`, then sets the clock to `until`.
    pub fn run_until(&mut self, until: Time, max_steps: usize) -> Result<usize, StepBound> {
        let mut steps = 0;
        while self.step(until) {
            steps += 1;
            if steps >= max_steps {
                return Err(StepBound(max_steps, self.now));
            }
        }
        self.now = self.now.max(until);
        Ok(steps)
    }

    /// Runs for `d` of simulated time.
    pub fn run_for(&mut self, d: Duration, max_steps: usize) -> Result<usize, StepBound> {
        self.run_until(self.now + d, max_steps)
    }

    /// Observations of one node, in order.
    pub fn observed(&self, id: NodeId) -> impl Iterator<Item = &Observation> {
        self.observations.iter().filter(move |(_, n, _)| *n == id).map(|(_, _, o)| o)
    }
}

/// One site of a test [`Fleet`].
#[derive(Clone, Debug)]
pub struct SiteSpec {
    /// Site name.
    pub name: &'static str,
    /// IANA time zone.
    pub tz: &'static str,
    /// Parent site; `None` for sites directly below the master.
    pub parent: Option<&'static str>,
    /// Clients per platform.
    pub clients: Vec<(&'static str, u32)>,
}

/// A test deployment: a master (id 1), one local server per site (ids
/// 100+), clients (ids 10 000+), built into a [`Harness`].
pub struct Fleet {
    /// The harness running it.
    pub h: Harness,
    /// The master's id.
    pub master: NodeId,
    /// Local server per site name.
    pub locals: BTreeMap<&'static str, NodeId>,
    /// Clients per site name.
    pub clients: BTreeMap<&'static str, Vec<NodeId>>,
    /// The verifier every node uses.
    pub verifier: PolicyVerifier,
}

/// The site name of the master in a [`Fleet`].
pub const MASTER_SITE: &str = "hq";

/// The client platforms every server of a [`Fleet`] accepts.
pub const KNOWN_PLATFORMS: [&str; 3] = ["linux", "macos", "windows"];

impl Fleet {
    /// Builds a tiered deployment (`tiered = true`) or the flat baseline in
    /// which every client polls the master with `flat_mode`.
    pub fn build(
        start: Time,
        sites: &[SiteSpec],
        tiered: bool,
        flat_mode: ServeMode,
        tune: impl Fn(&mut LocalConfig),
    ) -> Fleet {
        let master = NodeId(1);
        let secret = [7u8; 32];
        let signer = crate::sign::PolicySigner::from_secret(secret);
        let verifier = PolicyVerifier::new(signer.public());
        let mut h = Harness::new(start, Duration::from_millis(50));

        let mut locals = BTreeMap::new();
        for (i, s) in sites.iter().enumerate() {
            locals.insert(s.name, NodeId(100 + i as u32));
        }
        let children_of = |parent: Option<&str>| -> BTreeMap<NodeId, SiteName> {
            sites
                .iter()
                .filter(|s| s.parent == parent)
                .map(|s| (locals[s.name], Name::new(s.name)))
                .collect()
        };

        // The sites below each local server, its own included.
        let subtree = |root: &'static str| -> BTreeSet<SiteName> {
            let mut below = BTreeSet::from([Name::new(root)]);
            let mut frontier = vec![root];
            while let Some(p) = frontier.pop() {
                for s in sites.iter().filter(|s| s.parent == Some(p)) {
                    below.insert(Name::new(s.name));
                    frontier.push(s.name);
                }
            }
            below
        };
        let child_sites = |children: &BTreeMap<NodeId, SiteName>| {
            let names: BTreeMap<NodeId, &'static str> =
                sites.iter().map(|s| (locals[s.name], s.name)).collect();
            children.keys().map(|id| (*id, subtree(names[id]))).collect()
        };
        let platforms: Vec<Name> = KNOWN_PLATFORMS.iter().map(|p| Name::new(p)).collect();

        let mut all_sites: Vec<SiteName> = sites.iter().map(|s| Name::new(s.name)).collect();
        all_sites.push(Name::new(MASTER_SITE));
        let master_children = if tiered { children_of(None) } else { BTreeMap::new() };
        let mut mcfg = MasterConfig::new(
            master,
            Name::new(MASTER_SITE),
            all_sites.clone(),
            master_children.clone(),
            secret,
        );
        mcfg.client_mode = flat_mode;
        mcfg.child_sites = child_sites(&master_children);
        // Tiered, only the master's own site polls it; flat, every site.
        let direct = if tiered { vec![Name::new(MASTER_SITE)] } else { all_sites };
        mcfg.clients = ClientAdmission { sites: direct, platforms: platforms.clone(), check: None };
        h.add(Node::Master(Master::new(mcfg)));

        if tiered {
            for (i, s) in sites.iter().enumerate() {
                let parent = s.parent.map_or(master, |p| locals[p]);
                let tz = jiff::tz::TimeZone::get(s.tz).expect("test time zone");
                let mut cfg = LocalConfig::new(
                    locals[s.name],
                    Name::new(s.name),
                    parent,
                    tz,
                    verifier.clone(),
                    1000 + i as u64,
                );
                cfg.children = children_of(Some(s.name));
                cfg.child_sites = child_sites(&cfg.children);
                cfg.clients.platforms = platforms.clone();
                tune(&mut cfg);
                h.add(Node::Local(Local::new(cfg)));
            }
        }

        let mut clients = BTreeMap::new();
        let mut next = 10_000u32;
        for s in sites {
            let mut ids = Vec::new();
            for (platform, count) in &s.clients {
                let profile = Arc::new(ClientProfile {
                    site: Name::new(s.name),
                    platform: Name::new(platform),
                    server: if tiered { locals[s.name] } else { master },
                    poll: Duration::from_secs(3600),
                    splay: Duration::from_secs(1800),
                    status_every: Duration::from_secs(3600),
                    inventory: Blob::filler(256, 1),
                    engine_version: 5,
                    threat_rate: 0.01,
                    scan_every: Duration::from_secs(86_400),
                    wake_splay: Duration::from_secs(60),
                    verifier: verifier.clone(),
                });
                for _ in 0..*count {
                    let id = NodeId(next);
                    next += 1;
                    h.add(Node::Client(Client::new(id, profile.clone(), u64::from(id.0))));
                    ids.push(id);
                }
            }
            clients.insert(s.name, ids);
        }
        Fleet { h, master, locals, clients, verifier }
    }

    /// Every client id, in order.
    pub fn all_clients(&self) -> Vec<NodeId> {
        self.clients.values().flatten().copied().collect()
    }
}
