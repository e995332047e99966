//! The simulator's pending-event queue.
//!
//! Simultaneous events are common in a simulation: a thousand clients whose
//! poll timers were set from the same instant, or a message and a timer that
//! land on the same nanosecond. If their order depended on the queue's
//! internal layout, a change elsewhere in the code could change a result.
//! [`EventQueue`] therefore orders by time and then by insertion sequence,
//! so events at one instant run first-in, first-out, and the whole run is
//! fixed by its inputs.
//!
//! # Layout
//!
//! A calendar queue. Time is cut into buckets of [`BUCKET_NS`] (about one
//! second); a ring of [`RING`] buckets (about 39 hours) holds the events
//! of the near future in plain vectors: those pushed in key order (nearly
//! all: timers are set in time order, an interval ahead) appended as they
//! come, the few others (strays) beside them. When the clock reaches a
//! bucket, the run is read front to back with a cursor, and its strays
//! join a small heap beside it. An event pushed into the bucket being consumed
//! goes into the slot just read when it comes before everything left there
//! (a message arriving a moment from now), and otherwise into a small heap
//! beside it, the earlier of the two fronts popping first. Events beyond
//! the ring's horizon wait in a binary heap and move into the ring as the
//! clock approaches them.
//!
//! Why: a simulated client's timers fire every hour or so, always within
//! the horizon, so almost every push is an append to a vector, almost no
//! bucket needs sorting, and almost every pop takes the front of a short
//! run. With millions of pending events a binary heap pays a cache miss
//! per level on every pop; here the cost per event does not grow with the
//! number pending.
//!
//! Events pushed before the first pop wait in a plain vector and are
//! placed once the first pop fixes where the clock starts: a driver
//! scheduling a run's initial events in any order (a change on day three
//! before a timer at the start) would otherwise push most of them "into
//! the past" of the first one, into the sorted run, one shift at a time.
//! The buffer of a drained bucket is handed to the next bucket that
//! receives its first event, so a steady simulation mostly pushes without
//! allocating, while only buckets that hold events hold memory.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use tiersync_engine::Time;

/// Width of one bucket, nanoseconds: 2^30 ns, about 1.07 s. Small enough
/// that a bucket of a million-client run holds a few thousand events (one
/// quick sort), large enough that an hour spans only about 3,400 buckets.
pub const BUCKET_NS: i64 = 1 << 30;

/// Buckets in the ring: 2^17, a horizon of about 39 hours, beyond a day so
/// that daily synchronisation timers stay out of the overflow heap.
pub const RING: usize = 1 << 17;

/// The ordering key of a pending event: (time in nanoseconds since the Unix
/// epoch, insertion sequence). Tuples compare lexicographically, so equal
/// times fall back to the sequence, which makes ties first in, first out.
type Key = (i64, u64);

/// An event beyond the ring's horizon, ordered by key alone.
struct Far<E> {
    key: Key,
    event: E,
}

impl<E> PartialEq for Far<E> {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl<E> Eq for Far<E> {}
impl<E> PartialOrd for Far<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<E> Ord for Far<E> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key.cmp(&other.key)
    }
}

/// A priority queue of future events, earliest first, ties in push order.
///
/// Calling order for a driver: `push` the initial events, then loop on
/// [`pop`](Self::pop) until it returns `None` or the simulated end time is
/// passed; handling one event may `push` more. An event pushed earlier than
/// the last one popped still comes out in key order among those pending,
/// but a simulation that does so is running backwards in time.
pub struct EventQueue<E> {
    /// Sorted events of every bucket up to and including `cur`, as sorted
    /// when the clock reached the bucket, plus those pushed since that go
    /// before all of them; those before `head` have been popped (events
    /// are `Copy`, so a popped one is left in place, not moved out).
    current: Vec<(Key, E)>,
    /// The next event of `current` to pop.
    head: usize,
    /// Events pushed into the bucket being consumed after it was sorted
    /// that do not go to the front of `current`: a heap, so that a push
    /// costs a few comparisons, not a shift of everything after it in a
    /// bucket of thousands. [`pop`](Self::pop) takes the earlier of the
    /// two fronts.
    late: BinaryHeap<Reverse<Far<E>>>,
    /// Events of buckets `cur + 1 .. cur + RING`, at index `bucket mod
    /// RING`, each in key order: an event pushed at or after the last one
    /// there is appended, as nearly every timer is (timers are set in time
    /// order, a fixed interval ahead).
    ring: Vec<Vec<(Key, E)>>,
    /// Per ring bucket, the events that came before its last one when
    /// pushed (a message arriving just past a bucket's start), unsorted.
    /// When the clock reaches the bucket these few go into the `late`
    /// heap, which merges them with the ordered run as they pop: where
    /// sorting a run of thousands with a few strays in it would cost a
    /// full sort.
    strays: Vec<Vec<(Key, E)>>,
    /// Events held in `ring`.
    in_ring: usize,
    /// Events at or beyond `cur + RING`.
    far: BinaryHeap<Reverse<Far<E>>>,
    /// The bucket being consumed; `None` before the first pop.
    cur: Option<i64>,
    /// Events pushed before the first pop, in push order.
    before_start: Vec<(Key, E)>,
    /// An empty vector with capacity (the last drained run's), given to
    /// the next bucket that receives its first event, so that buckets do
    /// not grow from nothing each time.
    spare: Vec<(Key, E)>,
    /// The same for [`EventQueue::strays`]: only buckets holding strays
    /// hold memory for them.
    spare_strays: Vec<(Key, E)>,
    /// Events pending in all.
    len: usize,
    /// The sequence number the next push will receive. A `u64` will not wrap:
    /// at 10^9 pushes per second it lasts for centuries.
    next_seq: u64,
}

fn bucket_of(t: i64) -> i64 {
    t.div_euclid(BUCKET_NS)
}

fn ring_slot(bucket: i64) -> usize {
    bucket.rem_euclid(RING as i64) as usize
}

impl<E: Copy> EventQueue<E> {
    /// An empty queue.
    pub fn new() -> Self {
        Self::with_capacity(0)
    }

    /// An empty queue. The capacity hint is accepted for compatibility; the
    /// ring's buckets grow as events arrive.
    pub fn with_capacity(_capacity: usize) -> Self {
        EventQueue {
            current: Vec::new(),
            head: 0,
            late: BinaryHeap::new(),
            ring: (0..RING).map(|_| Vec::new()).collect(),
            strays: (0..RING).map(|_| Vec::new()).collect(),
            in_ring: 0,
            far: BinaryHeap::new(),
            cur: None,
            before_start: Vec::new(),
            spare: Vec::new(),
            spare_strays: Vec::new(),
            len: 0,
            next_seq: 0,
        }
    }

    /// Schedules `event` at `at`.
    pub fn push(&mut self, at: Time, event: E) {
        let key = (at.0, self.next_seq);
        self.next_seq += 1;
        if self.len == 0 {
            // Nothing pending: the clock may start again anywhere, as
            // before the first pop.
            self.cur = None;
        }
        self.len += 1;
        let Some(cur) = self.cur else {
            self.before_start.push((key, event));
            return;
        };
        self.place(cur, key, event);
    }

    /// Puts an event where it belongs once the clock is at bucket `cur`.
    fn place(&mut self, cur: i64, key: Key, event: E) {
        let b = bucket_of(key.0);
        if b <= cur {
            // Most often before everything pending: a message arriving a
            // moment from now, before the next timer. It then goes to the
            // front of the sorted run (a later push has a larger sequence
            // number, so at an equal time it goes after, into the heap).
            match self.current.get(self.head) {
                Some(((t, _), _)) if key.0 >= *t => self.late.push(Reverse(Far { key, event })),
                // The slot just read takes it; with none read yet the
                // heap does, which pops it first all the same.
                _ if self.head > 0 => {
                    self.head -= 1;
                    self.current[self.head] = (key, event);
                }
                _ => self.late.push(Reverse(Far { key, event })),
            }
        } else if b - cur < RING as i64 {
            self.ring_push(ring_slot(b), key, event);
        } else {
            self.far.push(Reverse(Far { key, event }));
        }
    }

    /// Removes and returns the earliest event (ties: the first pushed).
    pub fn pop(&mut self) -> Option<(Time, E)> {
        loop {
            let late_first = match (self.current.get(self.head), self.late.peek()) {
                (Some((key, _)), Some(Reverse(late))) => late.key < *key,
                (None, Some(_)) => true,
                _ => false,
            };
            if late_first && let Some(Reverse(Far { key, event })) = self.late.pop() {
                self.len -= 1;
                return Some((Time(key.0), event));
            }
            if let Some(&((t, _), e)) = self.current.get(self.head) {
                self.head += 1;
                self.len -= 1;
                return Some((Time(t), e));
            }
            if self.len == 0 {
                return None;
            }
            self.advance();
        }
    }

    /// Adds an event to ring bucket `slot`, keeping the bucket in key order
    /// (see [`EventQueue::strays`]).
    #[inline]
    fn ring_push(&mut self, slot: usize, key: Key, event: E) {
        self.in_ring += 1;
        let bucket = &mut self.ring[slot];
        match bucket.last() {
            Some((last, _)) if key < *last => {
                let strays = &mut self.strays[slot];
                if strays.capacity() == 0 {
                    *strays = std::mem::take(&mut self.spare_strays);
                }
                strays.push((key, event));
            }
            _ => {
                if bucket.capacity() == 0 {
                    *bucket = std::mem::take(&mut self.spare);
                }
                bucket.push((key, event));
            }
        }
    }

    /// Fixes the clock just before the earliest event pushed so far and
    /// places every event pushed before the first pop.
    fn begin(&mut self) {
        let first = self.before_start.iter().map(|(k, _)| bucket_of(k.0)).min().unwrap_or(0);
        let cur = first.saturating_sub(1);
        self.cur = Some(cur);
        for (key, event) in std::mem::take(&mut self.before_start) {
            self.place(cur, key, event);
        }
    }

    /// Moves the clock to the next bucket holding events and sorts it.
    fn advance(&mut self) {
        if self.cur.is_none() {
            self.begin();
        }
        let mut cur = self.cur.unwrap_or(0);
        if self.in_ring == 0 {
            // Nothing in the near future: jump to the first far event.
            if let Some(Reverse(head)) = self.far.peek() {
                cur = cur.max(bucket_of(head.key.0) - 1);
            }
        }
        loop {
            cur += 1;

            // Far events now within the horizon join the ring.
            while let Some(Reverse(head)) = self.far.peek() {
                let b = bucket_of(head.key.0);
                if b - cur >= RING as i64 {
                    break;
                }
                if let Some(Reverse(Far { key, event })) = self.far.pop() {
                    self.ring_push(ring_slot(b.max(cur)), key, event);
                }
            }

            let slot = ring_slot(cur);
            if !self.ring[slot].is_empty() {
                // The drained run's buffer becomes the spare, for the next
                // bucket that receives its first event; the bucket taken
                // now is left without one, so that only buckets holding
                // events hold memory.
                let mut drained = std::mem::take(&mut self.current);
                drained.clear();
                self.spare = drained;
                self.current = std::mem::take(&mut self.ring[slot]);
                self.head = 0;
                self.in_ring -= self.current.len();

                // The strays join the heap beside the run, which pops the
                // earlier of the two fronts: merged as they are popped,
                // with no copy of the run. The heap is empty here.
                debug_assert!(self.late.is_empty());
                let mut strays = std::mem::take(&mut self.strays[slot]);
                self.in_ring -= strays.len();
                self.late.extend(strays.drain(..).map(|(key, event)| Reverse(Far { key, event })));
                if strays.capacity() > self.spare_strays.capacity() {
                    self.spare_strays = strays;
                }
                self.cur = Some(cur);
                return;
            }
        }
    }

    /// The time of the earliest event, if any. Scans the ring when the
    /// current bucket is spent, so it is for occasional use, not per event.
    pub fn peek_time(&self) -> Option<Time> {
        let current_min = self.current.get(self.head).map(|(k, _)| k.0);
        let late_min = self.late.peek().map(|Reverse(f)| f.key.0);
        if let Some(t) = current_min.into_iter().chain(late_min).min() {
            return Some(Time(t));
        }
        let ring_min = self.ring.iter().chain(&self.strays).flatten().map(|(k, _)| k.0).min();
        let far_min = self.far.peek().map(|Reverse(f)| f.key.0);
        let early_min = self.before_start.iter().map(|(k, _)| k.0).min();
        [ring_min, far_min, early_min].into_iter().flatten().min().map(Time)
    }

    /// The `n`-th next event of the bucket being consumed as it was sorted
    /// (events pushed into it since, but for those that went to its front,
    /// are not counted) and, past its end, of the next bucket's ordered run
    /// (its strays and later buckets are not looked at); `None` when those
    /// hold fewer. Cheap: for a driver that warms the memory an event will
    /// touch a few events before it runs. A hint only: the event returned
    /// need not be the `n`-th to pop.
    ///
    /// Why the next bucket too: at 100,000 clients a bucket holds only some
    /// sixty timers, so looking within the bucket alone would warm nothing
    /// for the first few events of every bucket, about a tenth of them.
    #[inline]
    pub fn peek_ahead(&self, n: usize) -> Option<(Time, &E)> {
        let i = self.head + n;
        let e = match self.current.get(i) {
            Some(e) => e,
            None => {
                let next = ring_slot(self.cur? + 1);
                self.ring[next].get(i - self.current.len())?
            }
        };
        Some((Time(e.0.0), &e.1))
    }

    /// Number of pending events.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no event is pending.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Events pushed since the queue was made.
    pub fn pushed_total(&self) -> u64 {
        self.next_seq
    }
}

impl<E: Copy> Default for EventQueue<E> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn pops_in_time_order() {
        let mut q = EventQueue::new();
        q.push(Time(30), 'c');
        q.push(Time(10), 'a');
        q.push(Time(20), 'b');
        assert_eq!(q.len(), 3);
        assert_eq!(q.peek_time(), Some(Time(10)));
        assert_eq!(q.pop(), Some((Time(10), 'a')));
        assert_eq!(q.pop(), Some((Time(20), 'b')));
        assert_eq!(q.pop(), Some((Time(30), 'c')));
        assert_eq!(q.pop(), None);
        assert!(q.is_empty());
        assert_eq!(q.peek_time(), None);
    }

    #[test]
    fn peek_ahead_reads_on_into_the_next_bucket() {
        let mut q = EventQueue::new();
        for (t, e) in [(0, 'a'), (1, 'b'), (2, 'c'), (BUCKET_NS, 'd'), (BUCKET_NS + 1, 'e')] {
            q.push(Time(t), e);
        }
        // A bucket further on is not looked at.
        q.push(Time(3 * BUCKET_NS), 'f');
        assert_eq!(q.pop(), Some((Time(0), 'a')));

        let ahead: Vec<Option<char>> = (0..5).map(|n| q.peek_ahead(n).map(|(_, e)| *e)).collect();
        assert_eq!(ahead, [Some('b'), Some('c'), Some('d'), Some('e'), None]);
        assert_eq!(q.peek_ahead(2).map(|(t, _)| t), Some(Time(BUCKET_NS)));

        // Once the clock is in the next bucket, the offsets start from it.
        for _ in 0..3 {
            q.pop();
        }
        assert_eq!(q.peek_ahead(0).map(|(_, e)| *e), Some('e'));
        assert_eq!(q.peek_ahead(1), None);
    }

    #[test]
    fn equal_times_pop_first_in_first_out() {
        let mut q = EventQueue::new();
        for i in 0..100 {
            q.push(Time(5), i);
        }
        q.push(Time(1), -1);
        assert_eq!(q.pop(), Some((Time(1), -1)));
        for i in 0..100 {
            assert_eq!(q.pop(), Some((Time(5), i)));
        }
    }

    #[test]
    fn times_before_the_epoch_order_correctly() {
        let mut q = EventQueue::new();
        q.push(Time(1), 'c');
        q.push(Time(i64::MIN), 'a');
        q.push(Time(-1), 'b');
        q.push(Time::MAX, 'd');
        let order: Vec<char> = std::iter::from_fn(|| q.pop().map(|(_, e)| e)).collect();
        assert_eq!(order, vec!['a', 'b', 'c', 'd']);
    }

    #[test]
    fn interleaved_push_after_pop_keeps_fifo_among_equals() {
        let mut q = EventQueue::new();
        q.push(Time(10), "first");
        q.push(Time(20), "later");
        assert_eq!(q.pop(), Some((Time(10), "first")));
        q.push(Time(20), "pushed-after-pop");
        assert_eq!(q.pop(), Some((Time(20), "later")));
        assert_eq!(q.pop(), Some((Time(20), "pushed-after-pop")));
        assert_eq!(q.pushed_total(), 3);
    }

    /// One step of a random workload: push an event, or pop the earliest.
    #[derive(Clone, Debug)]
    enum Op {
        Push(i64),
        Pop,
    }

    fn op() -> impl Strategy<Value = Op> {
        // A narrow time range makes equal times, and so FIFO ties, frequent.
        prop_oneof![3 => (-4i64..12).prop_map(Op::Push), 1 => Just(Op::Pop)]
    }

    /// Times spread from nanoseconds to days, so that events land in the
    /// sorted run, the ring and beyond the ring's horizon.
    fn wide_time() -> impl Strategy<Value = i64> {
        let scale = prop_oneof![Just(1i64), Just(1 << 29), Just(1 << 36), Just(1 << 47)];
        (-6i64..40, scale).prop_map(|(t, s)| t * s)
    }

    fn wide_op() -> impl Strategy<Value = Op> {
        prop_oneof![3 => wide_time().prop_map(Op::Push), 1 => Just(Op::Pop)]
    }

    proptest! {
        /// The same as a stable sort when times span the ring and beyond.
        #[test]
        fn wide_times_pop_as_a_stable_sort(times in prop::collection::vec(wide_time(), 0..400)) {
            let mut q = EventQueue::new();
            for (i, &t) in times.iter().enumerate() {
                q.push(Time(t), i);
            }
            let mut expected: Vec<(Time, usize)> =
                times.iter().enumerate().map(|(i, &t)| (Time(t), i)).collect();
            expected.sort_by_key(|&(t, _)| t);
            let popped: Vec<(Time, usize)> = std::iter::from_fn(|| q.pop()).collect();
            prop_assert_eq!(popped, expected);
        }

        /// A simulation's pattern: pop one, push a few at or after it, with
        /// delays from nanoseconds to days; order matches a naive model.
        #[test]
        fn forward_pushes_match_a_naive_model(
            ops in prop::collection::vec(wide_op(), 0..300)
        ) {
            let mut q = EventQueue::new();
            let mut model: Vec<(i64, u64)> = Vec::new();
            let mut seq = 0u64;
            let mut now = 0i64;
            for op in ops {
                match op {
                    Op::Push(d) => {
                        let t = now + d.abs();
                        q.push(Time(t), seq);
                        model.push((t, seq));
                        seq += 1;
                    }
                    Op::Pop => {
                        let want = model
                            .iter()
                            .enumerate()
                            .min_by_key(|&(_, &key)| key)
                            .map(|(i, _)| i)
                            .map(|i| model.remove(i))
                            .map(|(t, s)| (Time(t), s));
                        let got = q.pop();
                        if let Some((t, _)) = got {
                            now = t.0;
                        }
                        prop_assert_eq!(got, want);
                    }
                }
                prop_assert_eq!(q.len(), model.len());
            }
        }

        /// Pushing everything then popping everything gives a stable sort by
        /// time of the pushed items.
        #[test]
        fn pop_order_is_a_stable_sort_by_time(
            times in prop::collection::vec(-1_000i64..1_000, 0..400)
        ) {
            let mut q = EventQueue::new();
            for (i, &t) in times.iter().enumerate() {
                q.push(Time(t), i);
            }
            let mut expected: Vec<(Time, usize)> =
                times.iter().enumerate().map(|(i, &t)| (Time(t), i)).collect();
            expected.sort_by_key(|&(t, _)| t);
            let popped: Vec<(Time, usize)> = std::iter::from_fn(|| q.pop()).collect();
            prop_assert_eq!(popped, expected);
        }

        /// Under interleaved pushes and pops the queue agrees with a naive
        /// model: the earliest (time, push order) pair leaves first.
        #[test]
        fn matches_a_naive_model_under_interleaving(
            ops in prop::collection::vec(op(), 0..300)
        ) {
            let mut q = EventQueue::new();
            let mut model: Vec<(i64, u64)> = Vec::new();
            let mut seq = 0u64;
            for op in ops {
                match op {
                    Op::Push(t) => {
                        q.push(Time(t), seq);
                        model.push((t, seq));
                        seq += 1;
                    }
                    Op::Pop => {
                        let want = model
                            .iter()
                            .enumerate()
                            .min_by_key(|&(_, &key)| key)
                            .map(|(i, _)| i)
                            .map(|i| model.remove(i))
                            .map(|(t, s)| (Time(t), s));
                        prop_assert_eq!(q.pop(), want);
                    }
                }
                prop_assert_eq!(q.len(), model.len());
                let min_time = model.iter().map(|&(t, _)| Time(t)).min();
                prop_assert_eq!(q.peek_time(), min_time);
            }
        }
    }
}
