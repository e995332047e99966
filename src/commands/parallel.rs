//! Independent simulation runs spread over threads.
//!
//! Each run is deterministic and shares nothing mutable with the others,
//! so running them side by side gives the same results as one after the
//! other; only the wall time changes.

use std::sync::atomic::{AtomicUsize, Ordering};

/// The number of threads to use when the user does not say: the cores
/// the operating system gives this process.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// Calls `f(i)` for every `i` in `0..n` on up to `jobs` threads and
/// returns the results in index order, whatever order they finished in.
pub fn map<T: Send>(n: usize, jobs: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let jobs = jobs.clamp(1, n.max(1));
    if jobs == 1 {
        return (0..n).map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let mut done: Vec<(usize, T)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..jobs)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            break mine;
                        }
                        mine.push((i, f(i)));
                    }
                })
            })
            .collect();
        // A worker that panicked has hit a bug; pass the panic on.
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, t)| t).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_back_in_index_order() {
        let out = map(50, 4, |i| i * i);
        assert_eq!(out, (0..50).map(|i| i * i).collect::<Vec<_>>());
        assert_eq!(map(0, 4, |i| i), Vec::<usize>::new());
        assert_eq!(map(3, 1, |i| i + 1), vec![1, 2, 3]);
    }
}
