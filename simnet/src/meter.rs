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

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use tiersync_engine::outbox::Observation;
use tiersync_engine::{MessageKind, NodeId, Time};

use crate::build::Plan;
use crate::link::Direction;
use crate::metrics::{LinkTraffic, Observer};
use crate::tracehash::TraceHasher;

/// A rarer count the event loop asks for; the two counts of nearly every
/// message go as [`SentCrossed`] and [`Delivered`] instead.
pub(crate) enum Record {
    /// [`Observer::count_kind`] and [`Observer::count_sent`].
    Sent { at: Time, from: NodeId, kind: MessageKind, wire: u64, reverse: u64, frame: u64 },
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
    /// [`Observer::record`]; boxed, being rare and large.
    Observed { at: Time, node: NodeId, client: Option<u32>, o: Box<Observation> },
    /// Any other, rarer call on the observer.
    Call(ObserverCall),
}

/// [`Record::Sent`] and [`Record::Crossing`] of one message's first link,
/// in one record (most messages), when the sizes fit 32 bits.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SentCrossed {
    pub at: Time,
    pub from: NodeId,
    pub kind: MessageKind,
    pub frame: u32,
    pub wire: u32,
    pub reverse: u32,
    pub link: u32,
    pub dir: Direction,
    pub business: bool,
    pub start: Time,
    pub busy_ns: u64,
}

/// A message delivered to a running node: its trace hash record and
/// [`Observer::count_received`]; `heard` is the site the master heard
/// about when the message was a client's report to it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Delivered {
    pub at: Time,
    pub from: NodeId,
    pub to: NodeId,
    pub kind: MessageKind,
    pub heard: Option<u16>,
    pub len: u64,
    pub wire: u64,
}

/// One count as it travels to the metering thread: six machine words,
/// the first holding a tag in its low byte.
///
/// Why words and not the enum: an enum built on the stack and copied into
/// the buffer is written with narrow stores and read back with wide
/// loads, which the CPU cannot forward, and the event loop stalled on
/// that copy for every message. Words computed in registers are stored
/// once, where they belong.
type Packed = [u64; 6];

/// Tags of [`Packed`] counts.
const TAG_SENT_CROSSED: u64 = 1;
const TAG_DELIVERED: u64 = 2;
/// The next record of the batch's `rare` list.
const TAG_RARE: u64 = 3;

impl SentCrossed {
    #[inline(always)]
    fn pack(self) -> Packed {
        let head = TAG_SENT_CROSSED
            | (self.kind as u64) << 8
            | (self.dir as u64) << 16
            | u64::from(self.business) << 17
            | u64::from(self.link) << 32;
        [
            head,
            self.at.0 as u64,
            self.start.0 as u64,
            u64::from(self.from.0) | u64::from(self.frame) << 32,
            u64::from(self.wire) | u64::from(self.reverse) << 32,
            self.busy_ns,
        ]
    }

    #[inline(always)]
    fn unpack(w: &Packed) -> SentCrossed {
        SentCrossed {
            at: Time(w[1] as i64),
            from: NodeId(w[3] as u32),
            kind: kind_of(w[0] >> 8),
            frame: (w[3] >> 32) as u32,
            wire: w[4] as u32,
            reverse: (w[4] >> 32) as u32,
            link: (w[0] >> 32) as u32,
            dir: if w[0] >> 16 & 1 == 0 { Direction::Down } else { Direction::Up },
            business: w[0] >> 17 & 1 == 1,
            start: Time(w[2] as i64),
            busy_ns: w[5],
        }
    }
}

impl Delivered {
    #[inline(always)]
    fn pack(self) -> Packed {
        let heard = match self.heard {
            Some(site) => 1 << 16 | u64::from(site) << 32,
            None => 0,
        };
        [
            TAG_DELIVERED | (self.kind as u64) << 8 | heard,
            self.at.0 as u64,
            u64::from(self.from.0) | u64::from(self.to.0) << 32,
            self.len,
            self.wire,
            0,
        ]
    }

    #[inline(always)]
    fn unpack(w: &Packed) -> Delivered {
        Delivered {
            at: Time(w[1] as i64),
            from: NodeId(w[2] as u32),
            to: NodeId((w[2] >> 32) as u32),
            kind: kind_of(w[0] >> 8),
            heard: (w[0] >> 16 & 1 == 1).then_some((w[0] >> 32) as u16),
            len: w[3],
            wire: w[4],
        }
    }
}

/// The message kind whose index is the low byte of `bits`.
#[inline(always)]
fn kind_of(bits: u64) -> MessageKind {
    let i = (bits & 0xff) as usize;
    debug_assert!(i < MessageKind::ALL.len());
    MessageKind::ALL[i.min(MessageKind::ALL.len() - 1)]
}

/// The node whose counts a packed record will touch, to warm its memory.
#[inline(always)]
fn node_of(w: &Packed) -> Option<NodeId> {
    match w[0] & 0xff {
        TAG_SENT_CROSSED => Some(NodeId(w[3] as u32)),
        TAG_DELIVERED => Some(NodeId((w[2] >> 32) as u32)),
        _ => None,
    }
}

/// A call on the observer, made on the metering thread.
pub(crate) type ObserverCall = Box<dyn FnOnce(&mut Observer, &Plan) + Send>;

/// Records gathered before a batch goes to the metering thread: 32,768
/// of 48 bytes, 1.5 MiB. The metering thread keeps up and sleeps between
/// batches, so every batch sent wakes it with a system call. At 4,096 a
/// batch, `scale-100k` spent about 3% of the event loop's samples in those
/// wake-ups and ran about 10% slower than at 32,768 (tiered 10.3 s against
/// 9.3 s); a larger batch gained nothing more.
const BATCH: usize = 32768;

/// Batches in flight between the two threads: enough to ride out a pause
/// of either side, few enough to bound memory (12 MiB of batches).
const IN_FLIGHT: usize = 8;

/// Counts in the order they were made: packed ones, and the rare ones
/// their [`TAG_RARE`] words stand for, in order.
#[derive(Default)]
struct Batch {
    words: Vec<Packed>,
    rare: Vec<Record>,
}

impl Batch {
    fn with_capacity(n: usize) -> Batch {
        Batch { words: Vec::with_capacity(n), rare: Vec::new() }
    }

    fn clear(&mut self) {
        self.words.clear();
        self.rare.clear();
    }
}

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
    fn apply_batch(&mut self, batch: &mut Batch) {
        let mut rare = std::mem::take(&mut batch.rare).into_iter();
        for (i, w) in batch.words.iter().enumerate() {
            if let Some(node) = batch.words.get(i + AHEAD).and_then(node_of) {
                self.obs.prefetch_node(node);
            }
            match w[0] & 0xff {
                TAG_RARE => {
                    if let Some(r) = rare.next() {
                        self.apply(r);
                    }
                }
                _ => self.apply_packed(w),
            }
        }
        batch.clear();
    }

    #[inline]
    fn apply_packed(&mut self, w: &Packed) {
        match w[0] & 0xff {
            TAG_SENT_CROSSED => self.apply_sent_crossed(SentCrossed::unpack(w)),
            TAG_DELIVERED => self.apply_delivered(Delivered::unpack(w)),
            _ => debug_assert!(false, "an unknown metering tag"),
        }
    }

    #[inline]
    fn apply_sent_crossed(&mut self, r: SentCrossed) {
        let (wire, reverse) = (u64::from(r.wire), u64::from(r.reverse));
        self.obs.count_kind(r.at, r.kind, wire, reverse, u64::from(r.frame));
        self.obs.count_sent(r.at, r.from, wire);
        let link = r.link as usize;
        self.obs.count_crossing(link, r.dir, r.start, wire, r.busy_ns, reverse, r.business);
    }

    #[inline]
    fn apply_delivered(&mut self, r: Delivered) {
        let Delivered { at, from, to, kind, heard, len, wire } = r;
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

    fn apply(&mut self, r: Record) {
        match r {
            Record::Sent { at, from, kind, wire, reverse, frame } => {
                self.obs.count_kind(at, kind, wire, reverse, frame);
                self.obs.count_sent(at, from, wire);
            }
            Record::Crossing { link, dir, business, at, wire, busy_ns, reverse } => {
                let link = link as usize;
                self.obs.count_crossing(link, dir, at, wire, busy_ns, reverse, business);
            }
            Record::Lost { link, dir, at, traffic } => {
                self.obs.count_link(link as usize, dir, at, traffic);
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
    buf: Batch,
    /// `None` when no thread could be started, or none was asked for:
    /// records are applied at once, on this thread.
    worker: Option<Worker>,
    inline: Option<Sink>,
}

struct Worker {
    full: SyncSender<Batch>,
    empty: Receiver<Batch>,
    handle: JoinHandle<Option<Sink>>,
}

impl Meter {
    /// Meters into `obs`, on a thread of its own when `threaded` (and a
    /// thread can be started; if not, on this one).
    pub(crate) fn new(obs: Observer, plan: Arc<Plan>, threaded: bool) -> Meter {
        // The metering thread hashes inline: it is the second thread.
        let sink = Sink { obs, trace: TraceHasher::without_thread(), plan };
        let inline = |sink| Meter { buf: Batch::default(), worker: None, inline: Some(sink) };
        if !threaded {
            return inline(sink);
        }

        // The sink goes over once the thread runs, so that it is still
        // here if the thread cannot be started.
        let (sink_tx, sink_rx) = sync_channel::<Sink>(1);
        let (full_tx, full_rx) = sync_channel::<Batch>(IN_FLIGHT);
        let (empty_tx, empty_rx) = sync_channel::<Batch>(IN_FLIGHT + 1);
        let spawned = std::thread::Builder::new().name("metering".into()).spawn(move || {
            let mut sink = sink_rx.recv().ok()?;
            for mut batch in full_rx {
                sink.apply_batch(&mut batch);
                let _ = empty_tx.try_send(batch);
            }
            Some(sink)
        });
        let Ok(handle) = spawned else { return inline(sink) };
        if let Err(e) = sink_tx.send(sink) {
            return inline(e.0);
        }
        Meter {
            buf: Batch::with_capacity(BATCH),
            worker: Some(Worker { full: full_tx, empty: empty_rx, handle }),
            inline: None,
        }
    }

    /// Counts a message's sending and first crossing.
    #[inline(always)]
    pub(crate) fn sent_crossed(&mut self, r: SentCrossed) {
        match &mut self.inline {
            Some(sink) => sink.apply_sent_crossed(r),
            None => self.push_packed(r.pack()),
        }
    }

    /// Counts a delivery.
    #[inline(always)]
    pub(crate) fn delivered(&mut self, r: Delivered) {
        match &mut self.inline {
            Some(sink) => sink.apply_delivered(r),
            None => self.push_packed(r.pack()),
        }
    }

    /// Appends packed words for the metering thread. Takes them by value
    /// and never by reference, so that they go from registers to the
    /// buffer without a stop on the stack.
    #[inline(always)]
    fn push_packed(&mut self, w: Packed) {
        self.buf.words.push(w);
        if self.buf.words.len() >= BATCH {
            self.flush();
        }
    }

    /// Counts `r`, now or on the metering thread.
    #[inline]
    pub(crate) fn push(&mut self, r: Record) {
        if let Some(sink) = &mut self.inline {
            sink.apply(r);
            return;
        }
        self.buf.rare.push(r);
        self.push_packed([TAG_RARE, 0, 0, 0, 0, 0]);
    }

    /// Hands the gathered records to the metering thread.
    fn flush(&mut self) {
        let Some(w) = &self.worker else { return };
        let next = w.empty.try_recv().unwrap_or_else(|_| Batch::with_capacity(BATCH));
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every field of the two packed counts comes back as it went in, for
    /// every message kind and at the limits of each field.
    #[test]
    fn packed_counts_round_trip() {
        for (i, &kind) in MessageKind::ALL.iter().enumerate() {
            assert_eq!(kind as usize, i, "MessageKind::ALL is in discriminant order");
            for (dir, business, heard) in
                [(Direction::Up, true, Some(u16::MAX)), (Direction::Down, false, None)]
            {
                let sent = SentCrossed {
                    at: Time(i64::MIN + i as i64),
                    from: NodeId(u32::MAX - i as u32),
                    kind,
                    frame: u32::MAX,
                    wire: u32::MAX - 1,
                    reverse: 7,
                    link: u32::MAX,
                    dir,
                    business,
                    start: Time(i64::MAX),
                    busy_ns: u64::MAX,
                };
                let back = SentCrossed::unpack(&sent.pack());
                assert_eq!(format!("{back:?}"), format!("{sent:?}"));
                assert_eq!(node_of(&sent.pack()), Some(sent.from));

                let delivered = Delivered {
                    at: Time(-5),
                    from: NodeId(3),
                    to: NodeId(u32::MAX),
                    kind,
                    heard,
                    len: u64::MAX,
                    wire: 1 << 40,
                };
                let back = Delivered::unpack(&delivered.pack());
                assert_eq!(format!("{back:?}"), format!("{delivered:?}"));
                assert_eq!(node_of(&delivered.pack()), Some(delivered.to));
            }
        }
    }
}
