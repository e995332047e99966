//! One type for any node, so a driver can hold a mixed population.

use crate::client::Client;
use crate::ids::NodeId;
use crate::local::Local;
use crate::master::Master;
use crate::message::Message;
use crate::outbox::{Outbox, Timer};
use crate::time::Time;

/// A master, local server or client.
///
/// # Calling order
///
/// 1. Build the node, then call [`Node::handle_start`] once.
/// 2. Feed it input as it happens: [`Node::handle_message`] for a message
///    from a peer, [`Node::handle_timer`] when a timer it asked for is due.
///    Operator commands go to the role's own `handle_*` methods. A driver
///    that sees connections also calls [`Node::handle_peer_down`] when a
///    peer's connection closes and [`Node::handle_peer_up`] when it is
///    authenticated again; the simulator, which has no connections, never
///    does, and every peer then counts as reachable.
/// 3. After each call, drain the [`Outbox`] with `poll_transmit`,
///    `poll_timer` and `poll_observation`, and act on what it holds.
///
/// `now` must never go backwards between calls on one node.
#[derive(Debug)]
pub enum Node {
    /// The master policy server.
    Master(Master),
    /// A local policy server.
    Local(Local),
    /// A client.
    Client(Client),
}

impl Node {
    /// This node's id.
    pub fn id(&self) -> NodeId {
        match self {
            Node::Master(m) => m.id(),
            Node::Local(l) => l.id(),
            Node::Client(c) => c.id(),
        }
    }

    /// Starts the node: it arms its first timers.
    pub fn handle_start(&mut self, now: Time, out: &mut Outbox) {
        match self {
            Node::Master(_) => {}
            Node::Local(l) => l.handle_start(now, out),
            Node::Client(c) => c.handle_start(now, out),
        }
    }

    /// Delivers a message from `from`.
    pub fn handle_message(&mut self, now: Time, from: NodeId, msg: Message, out: &mut Outbox) {
        match self {
            Node::Master(m) => m.handle_message(now, from, msg, out),
            Node::Local(l) => l.handle_message(now, from, msg, out),
            Node::Client(c) => c.handle_message(now, from, msg, out),
        }
    }

    /// The connection to `peer` closed: a server stops waiting for that
    /// child's status reply, and does not ask it again until it is up (see
    /// [`Master::handle_peer_down`]). A client ignores it. Only drivers
    /// that see connections call this.
    pub fn handle_peer_down(&mut self, now: Time, peer: NodeId, out: &mut Outbox) {
        match self {
            Node::Master(m) => m.handle_peer_down(now, peer, out),
            Node::Local(l) => l.handle_peer_down(now, peer, out),
            Node::Client(_) => {}
        }
    }

    /// The connection to `peer` is up again (authenticated). Only drivers
    /// that see connections call this.
    pub fn handle_peer_up(&mut self, now: Time, peer: NodeId, out: &mut Outbox) {
        match self {
            Node::Master(m) => m.handle_peer_up(now, peer, out),
            Node::Local(l) => l.handle_peer_up(now, peer, out),
            Node::Client(_) => {}
        }
    }

    /// Fires a timer the node asked for.
    pub fn handle_timer(&mut self, now: Time, timer: Timer, out: &mut Outbox) {
        match self {
            Node::Master(m) => m.handle_timer(now, timer, out),
            Node::Local(l) => l.handle_timer(now, timer, out),
            Node::Client(c) => c.handle_timer(now, timer, out),
        }
    }
}
