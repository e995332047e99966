//! Release-mode throughput of [`EventQueue`], beside `std`'s `BinaryHeap`
//! holding the same (time, sequence, payload) entries as a baseline.
//!
//! Run: `cargo run --release -p tiersync-simnet --example queue_throughput [N]`
//! (N defaults to 10^6 and then 10^7 pending events). It reads the wall
//! clock, so its numbers are for people and never part of a simulation result.

// Measuring wall time is this benchmark's purpose.
#![allow(clippy::disallowed_methods)]

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;
use tiersync_engine::Time;
use tiersync_simnet::queue::EventQueue;

/// One simulated day in nanoseconds: the spread of the initial event times.
const DAY_NS: u64 = 86_400 * 1_000_000_000;

/// One simulated hour in nanoseconds: the longest delay of a successor event
/// in the hold workload.
const HOUR_NS: u64 = 3_600 * 1_000_000_000;

/// The operations both contenders offer.
trait Queue {
    fn push(&mut self, at_ns: i64, payload: u64);
    fn pop(&mut self) -> Option<(i64, u64)>;
}

impl Queue for EventQueue<u64> {
    fn push(&mut self, at_ns: i64, payload: u64) {
        EventQueue::push(self, Time(at_ns), payload);
    }
    fn pop(&mut self) -> Option<(i64, u64)> {
        EventQueue::pop(self).map(|(t, e)| (t.as_nanos(), e))
    }
}

/// The baseline: a binary max-heap of reversed (time, sequence, payload).
struct StdHeap {
    heap: BinaryHeap<Reverse<(i64, u64, u64)>>,
    next_seq: u64,
}

impl Queue for StdHeap {
    fn push(&mut self, at_ns: i64, payload: u64) {
        self.heap.push(Reverse((at_ns, self.next_seq, payload)));
        self.next_seq += 1;
    }
    fn pop(&mut self) -> Option<(i64, u64)> {
        self.heap.pop().map(|Reverse((t, _, e))| (t, e))
    }
}

fn main() {
    let counts: Vec<usize> = match std::env::args().nth(1) {
        Some(arg) => vec![arg.parse().expect("N must be a count of events")],
        None => vec![1_000_000, 10_000_000],
    };
    for n in counts {
        let mut ours = EventQueue::with_capacity(n + 1);
        run("EventQueue", &mut ours, n);
        drop(ours);
        let mut baseline = StdHeap { heap: BinaryHeap::with_capacity(n + 1), next_seq: 0 };
        run("std BinaryHeap", &mut baseline, n);
    }
}

/// Two workloads on one queue: push `n` events spread over a day then pop
/// them all; then a "hold" of `n` pending events in which each pop pushes a
/// successor up to an hour later, the steady state of a simulation.
fn run(name: &str, queue: &mut impl Queue, n: usize) {
    let mut rng = Pcg64Mcg::seed_from_u64(1);
    let times: Vec<i64> = (0..n).map(|_| (rng.next_u64() % DAY_NS) as i64).collect();
    let delays: Vec<i64> = (0..n).map(|_| (rng.next_u64() % HOUR_NS) as i64).collect();

    // Fill, then drain.
    let started = Instant::now();
    for (i, &t) in times.iter().enumerate() {
        queue.push(t, i as u64);
    }
    let push_time = started.elapsed();
    let mut checksum = 0u64;
    while let Some((t, e)) = queue.pop() {
        checksum = checksum.wrapping_mul(31).wrapping_add(e ^ t as u64);
    }
    let pop_time = started.elapsed() - push_time;

    // Hold: refill, then pop one and push one, n times.
    for (i, &t) in times.iter().enumerate() {
        queue.push(t, i as u64);
    }
    let started = Instant::now();
    for &delay in &delays {
        let (now, e) = queue.pop().expect("a hold never empties the queue");
        queue.push(now + delay, e);
    }
    let hold_time = started.elapsed();
    while queue.pop().is_some() {}

    let per = |d: Duration| d.as_nanos() as f64 / n as f64;
    println!(
        "{name:>14} n={n:>9}: push {:6.1} ns, pop {:6.1} ns, push+pop {:5.2} M/s; \
         hold {:6.1} ns per pop+push [order checksum {checksum:016x}]",
        per(push_time),
        per(pop_time),
        n as f64 / (push_time + pop_time).as_secs_f64() / 1e6,
        per(hold_time),
    );
}
