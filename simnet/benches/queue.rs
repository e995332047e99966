//! The event queue at 10^3 to 10^7 pending events, against std's
//! `BinaryHeap` holding the same (time, sequence) keys.
//!
//! Run: `cargo bench -p tiersync-simnet --bench queue`. The workload is
//! the "hold" model of a simulation's steady state: the queue holds `n`
//! events, and each step pops the earliest and pushes a successor up to
//! an hour later, as a client's next poll is. Each measured iteration is
//! one pop and one push; the queue is filled outside the measurement.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;
use tiersync_engine::Time;
use tiersync_simnet::queue::EventQueue;

/// The spread of the initial event times: one simulated day, ns.
const DAY_NS: u64 = 86_400 * 1_000_000_000;

/// The longest delay of a successor event: one simulated hour, ns.
const HOUR_NS: u64 = 3_600 * 1_000_000_000;

/// A payload the size of the simulator's own events (about 32 bytes).
type Payload = [u64; 4];

fn hold(c: &mut Criterion) {
    let mut g = c.benchmark_group("queue hold (pop + push)");
    g.throughput(Throughput::Elements(1));
    for n in [1_000usize, 10_000, 100_000, 1_000_000, 10_000_000] {
        let mut rng = Pcg64Mcg::seed_from_u64(1);
        let mut ours = EventQueue::new();
        let mut heap = BinaryHeap::with_capacity(n);
        for i in 0..n as u64 {
            let t = (rng.next_u64() % DAY_NS) as i64;
            ours.push(Time(t), [i; 4]);
            heap.push(Reverse((t, i, [i; 4])));
        }
        let mut seq = n as u64;

        g.bench_function(BenchmarkId::new("EventQueue", n), |b| {
            b.iter(|| {
                let (now, e): (Time, Payload) = ours.pop().expect("a hold never empties");
                let delay = (rng.next_u64() % HOUR_NS) as i64;
                ours.push(Time(now.0 + delay), black_box(e));
            })
        });
        g.bench_function(BenchmarkId::new("std BinaryHeap", n), |b| {
            b.iter(|| {
                let Reverse((now, _, e)) = heap.pop().expect("a hold never empties");
                let delay = (rng.next_u64() % HOUR_NS) as i64;
                seq += 1;
                heap.push(Reverse((now + delay, seq, black_box(e))));
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    targets = hold
}
criterion_main!(benches);
