//! Metering and the trace hash, on a thread of their own.
//!
//! Counting a message (per kind, per node, per link and minute, the trace
//! hash) costs about as much as simulating it, and none of it feeds back
//! into the simulation: the event loop only writes to the [`Observer`]
//! and the trace hash, never reads them. So the loop writes one small
//! [`Record`] per count into a buffer, and a second thread applies the
//! records, in the order they were written, to the observer and the hash.
//! The observer sees exactly the calls, in exactly the order, that a
//! single thread would have made: every number of a run is the same, only
//! the wall time changes (`simnet/tests/simulation.rs` checks the JSON and
//! trace hash of a metered run against an inline one).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use tiersync_engine::outbox::Observation;
use tiersync_engine::{MessageKind, NodeId, Time};

use crate::build::Plan;
use crate::link::Direction;
use crate::metrics::{LinkTraffic, Observer};
use crate::tracehash::TraceHasher;

/// One count the event loop asks for.
pub(crate) enum Record {
    /// [`Observer::count_kind`] and [`Observer::count_sent`].
    Sent { at: Time, from: NodeId, kind: MessageKind, wire: u64, reverse: u64, frame: u64 },
    /// [`Record::Sent`] and [`Record::Crossing`] of one message's first
    /// link, in one record (most messages), when the sizes fit 32 bits.
    SentCrossed {
        at: Time,
        from: NodeId,
        kind: MessageKind,
        frame: u32,
        wire: u32,
        reverse: u32,
        link: u32,
        dir: Direction,
        business: bool,
        start: Time,
        busy_ns: u64,
    },
    /// [`Observer::count_crossing`].
    Crossing {
        link: u32,
        dir: Direction,
        business: bool,
        at: Time,
        wire: u64,
        busy_ns: u64,
        reverse: u64,
    },
    /// [`Observer::count_link`]: a message a link lost.
    Lost { link: u32, dir: Direction, at: Time, traffic: LinkTraffic },
    /// A message delivered to a running node: its trace hash record and
    /// [`Observer::count_received`]; `heard` is the site the master heard
    /// about when the message was a client's report to it.
    Delivered {
        at: Time,
        from: NodeId,
        to: NodeId,
        kind: MessageKind,
        heard: Option<u16>,
        len: u64,
        wire: u64,
    },
    /// [`Observer::record`]; boxed, being rare and large.
    Observed { at: Time, node: NodeId, client: Option<u32>, o: Box<Observation> },
    /// Any other, rarer call on the observer.
    Call(ObserverCall),
}

/// A call on the observer, made on the metering thread.
pub(crate) type ObserverCall = Box<dyn FnOnce(&mut Observer, &Plan) + Send>;

/// Records gathered before a batch goes to the metering thread.
const BATCH: usize = 4096;

/// Batches in flight between the two threads: enough to ride out a pause
/// of either side, few enough to bound memory (a few MiB).
const IN_FLIGHT: usize = 8;

/// What the metering side holds.
struct Sink {
    obs: Observer,
    trace: TraceHasher,
    plan: Arc<Plan>,
}

/// How many records ahead the metering thread warms the memory a record
/// will touch (a client's group index, a cache miss in a large fleet).
const AHEAD: usize = 8;

impl Sink {
    /// Applies a batch in order, warming memory [`AHEAD`] records early.
    fn apply_batch(&mut self, batch: &mut Vec<Record>, pending: &mut VecDeque<Record>) {
        for r in batch.drain(..) {
            match &r {
                Record::Sent { from: node, .. }
                | Record::SentCrossed { from: node, .. }
                | Record::Delivered { to: node, .. } => {
                    self.obs.prefetch_node(*node);
                }
                _ => {}
            }
            pending.push_back(r);
            if pending.len() > AHEAD
                && let Some(r) = pending.pop_front()
            {
                self.apply(r);
            }
        }
    }

    /// Applies what [`Sink::apply_batch`] still holds.
    fn apply_pending(&mut self, pending: &mut VecDeque<Record>) {
        while let Some(r) = pending.pop_front() {
            self.apply(r);
        }
    }

    #[inline]
    fn apply(&mut self, r: Record) {
        match r {
            Record::Sent { at, from, kind, wire, reverse, frame } => {
                self.obs.count_kind(kind, wire, reverse, frame);
                self.obs.count_sent(at, from, wire);
            }
            Record::SentCrossed {
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
            } => {
                let (wire, reverse) = (u64::from(wire), u64::from(reverse));
                self.obs.count_kind(kind, wire, reverse, u64::from(frame));
                self.obs.count_sent(at, from, wire);
                let link = link as usize;
                self.obs.count_crossing(link, dir, start, wire, busy_ns, reverse, business);
            }
            Record::Crossing { link, dir, business, at, wire, busy_ns, reverse } => {
                let link = link as usize;
                self.obs.count_crossing(link, dir, at, wire, busy_ns, reverse, business);
            }
            Record::Lost { link, dir, at, traffic } => {
                self.obs.count_link(link as usize, dir, at, traffic);
            }
            Record::Delivered { at, from, to, kind, heard, len, wire } => {
                let mut record = [0u8; 25];
                record[..8].copy_from_slice(&at.0.to_le_bytes());
                record[8..12].copy_from_slice(&from.0.to_le_bytes());
                record[12..16].copy_from_slice(&to.0.to_le_bytes());
                record[16] = kind as u8;
                record[17..].copy_from_slice(&len.to_le_bytes());
                self.trace.update(&record);
                self.obs.count_received(at, to, wire);
                if let Some(site) = heard {
                    self.obs.site_heard_at(at, usize::from(site));
                }
            }
            Record::Observed { at, node, client, o } => {
                self.obs.record(at, node, client, *o, &self.plan);
            }
            Record::Call(f) => f(&mut self.obs, &self.plan),
        }
    }
}

/// The event loop's end of the metering: takes records, hands them over.
pub(crate) struct Meter {
    buf: Vec<Record>,
    /// `None` when no thread could be started, or none was asked for:
    /// records are applied at once, on this thread.
    worker: Option<Worker>,
    inline: Option<Sink>,
}

struct Worker {
    full: SyncSender<Vec<Record>>,
    empty: Receiver<Vec<Record>>,
    handle: JoinHandle<Option<Sink>>,
}

impl Meter {
    /// Meters into `obs`, on a thread of its own when `threaded` (and a
    /// thread can be started; if not, on this one).
    pub(crate) fn new(obs: Observer, plan: Arc<Plan>, threaded: bool) -> Meter {
        // The metering thread hashes inline: it is the second thread.
        let sink = Sink { obs, trace: TraceHasher::without_thread(), plan };
        let inline = |sink| Meter { buf: Vec::new(), worker: None, inline: Some(sink) };
        if !threaded {
            return inline(sink);
        }

        // The sink goes over once the thread runs, so that it is still
        // here if the thread cannot be started.
        let (sink_tx, sink_rx) = sync_channel::<Sink>(1);
        let (full_tx, full_rx) = sync_channel::<Vec<Record>>(IN_FLIGHT);
        let (empty_tx, empty_rx) = sync_channel::<Vec<Record>>(IN_FLIGHT + 1);
        let spawned = std::thread::Builder::new().name("metering".into()).spawn(move || {
            let mut sink = sink_rx.recv().ok()?;
            let mut pending = VecDeque::with_capacity(AHEAD + 1);
            for mut batch in full_rx {
                sink.apply_batch(&mut batch, &mut pending);
                let _ = empty_tx.try_send(batch);
            }
            sink.apply_pending(&mut pending);
            Some(sink)
        });
        let Ok(handle) = spawned else { return inline(sink) };
        if let Err(e) = sink_tx.send(sink) {
            return inline(e.0);
        }
        Meter {
            buf: Vec::with_capacity(BATCH),
            worker: Some(Worker { full: full_tx, empty: empty_rx, handle }),
            inline: None,
        }
    }

    /// Counts `r`, now or on the metering thread.
    #[inline]
    pub(crate) fn push(&mut self, r: Record) {
        if let Some(sink) = &mut self.inline {
            sink.apply(r);
            return;
        }
        self.buf.push(r);
        if self.buf.len() >= BATCH {
            self.flush();
        }
    }

    /// Hands the gathered records to the metering thread.
    fn flush(&mut self) {
        let Some(w) = &self.worker else { return };
        let next = w.empty.try_recv().unwrap_or_else(|_| Vec::with_capacity(BATCH));
        let batch = std::mem::replace(&mut self.buf, next);
        if w.full.send(batch).is_err() {
            // The thread ended early: only a panic ends it; pass it on.
            self.join();
        }
    }

    /// Waits for the metering thread and takes its sink back, passing on
    /// its panic.
    fn join(&mut self) -> Sink {
        let w = self.worker.take().expect("the metering thread is joined once");
        drop(w.full);
        match w.handle.join() {
            Ok(Some(sink)) => sink,
            Ok(None) => unreachable!("the sink is sent before any record"),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    /// Applies every record and returns the observer and the trace hash.
    pub(crate) fn finish(mut self) -> (Observer, [u8; 32]) {
        let mut sink = match self.inline.take() {
            Some(sink) => sink,
            None => {
                self.flush();
                self.join()
            }
        };
        let hash = sink.trace.finalize();
        (sink.obs, hash)
    }
}
