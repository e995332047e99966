//! Application bytes per link, direction and message kind.
//!
//! The simulator's own metering ([`crate::metrics`]) charges links in wire
//! bytes: frames plus the transport model's TCP/IP and TLS overhead. To set
//! a run beside a real one (`tiersync replay`), the frames alone are
//! needed, per link: [`FrameCounter`] is a [`Hooks`] implementation that
//! adds up the frame length of every delivered message on every link its
//! path crosses, as the simulator's link metering does with wire bytes.

use std::collections::BTreeMap;

use tiersync_engine::NodeId;

use crate::build::{Plan, ServerRef};
use crate::world::{Hooks, TraceRow};

/// Which way a message crossed a link: from child to parent, or back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Way {
    /// From a client to its server, or a local server to its parent.
    Up,
    /// From a server to a client or to a child server.
    Down,
}

impl Way {
    /// `up` or `down`.
    pub fn as_str(self) -> &'static str {
        match self {
            Way::Up => "up",
            Way::Down => "down",
        }
    }
}

/// Bytes and messages of one (link, way, kind).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameTotal {
    /// Frame bytes.
    pub bytes: u64,
    /// Messages.
    pub messages: u64,
    /// Wire bytes (frames plus the transport model's overhead).
    pub wire_bytes: u64,
}

/// Adds up delivered frames per link, way and kind.
#[derive(Debug)]
pub struct FrameCounter {
    client_base: u32,
    /// Per node below the master: the node it sends "up" to.
    up_to: Vec<NodeId>,
    /// Per node: its site.
    site: Vec<usize>,
    paths: Vec<Vec<Vec<usize>>>,
    /// Totals per (link, way, kind): a message crossing two links counts
    /// on each.
    pub totals: BTreeMap<(usize, Way, &'static str), FrameTotal>,
    /// Totals per kind, each message counted once.
    pub kinds: BTreeMap<&'static str, FrameTotal>,
}

impl FrameCounter {
    /// A counter for a run of `plan`.
    pub fn new(plan: &Plan) -> FrameCounter {
        let nodes = plan.client_base as usize + plan.client_count as usize;
        let site: Vec<usize> = (0..nodes as u32).map(|n| plan.site_of(NodeId(n))).collect();
        let mut up_to = vec![NodeId(0); nodes];
        for (i, l) in plan.locals.iter().enumerate() {
            up_to[1 + i] = l.parent;
        }
        for (c, &s) in plan.client_site.iter().enumerate() {
            up_to[plan.client_base as usize + c] = match plan.client_server[s as usize] {
                ServerRef::Master => NodeId(0),
                ServerRef::Local(l) => NodeId(1 + l as u32),
            };
        }
        let paths = plan
            .paths
            .iter()
            .map(|row| row.iter().map(|hops| hops.iter().map(|h| h.link).collect()).collect())
            .collect();
        FrameCounter {
            client_base: plan.client_base,
            up_to,
            site,
            paths,
            totals: BTreeMap::new(),
            kinds: BTreeMap::new(),
        }
    }

    /// Whether a message from `from` to `to` goes up the tree.
    pub fn way(&self, from: NodeId, to: NodeId) -> Way {
        let is_parent = from.0 != 0 && self.up_to.get(from.0 as usize) == Some(&to);
        if is_parent || from.0 >= self.client_base { Way::Up } else { Way::Down }
    }

    /// The links a message from `from` to `to` crosses.
    pub fn links(&self, from: NodeId, to: NodeId) -> &[usize] {
        let (Some(&a), Some(&b)) = (self.site.get(from.0 as usize), self.site.get(to.0 as usize))
        else {
            return &[];
        };
        &self.paths[a][b]
    }
}

impl Hooks for FrameCounter {
    fn delivered(&mut self, row: &TraceRow<'_>) {
        // What a sender wrote: copies made by a duplicating link were
        // never written, and a partition kept a message off its link.
        if row.copy || row.outcome == "partitioned" {
            return;
        }
        let k = self.kinds.entry(row.kind).or_default();
        k.bytes += row.frame_bytes;
        k.messages += 1;
        k.wire_bytes += row.bytes;
        let way = self.way(row.from, row.to);
        let links: Vec<usize> = self.links(row.from, row.to).to_vec();
        for link in links {
            let t = self.totals.entry((link, way, row.kind)).or_default();
            t.bytes += row.frame_bytes;
            t.messages += 1;
            t.wire_bytes += row.bytes;
        }
    }

    fn wants_trace(&self) -> bool {
        true
    }
}
