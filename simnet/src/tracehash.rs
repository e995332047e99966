//! The run's trace hash, computed beside the simulation.
//!
//! Every delivered message adds a 25-byte record (time, from, to, kind,
//! length) to a SHA-256 hash, so two runs agree on the hash only if they
//! delivered the same messages at the same times. At tens of millions of
//! messages the hashing costs seconds, so the records are gathered into
//! large buffers and hashed on a second thread. The bytes reach the hash in
//! exactly the order they were written (one FIFO channel), so the digest is
//! the one a single thread would compute; only wall time changes.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use sha2::{Digest as _, Sha256};

/// Bytes gathered before a buffer is handed to the hashing thread.
const BUFFER_BYTES: usize = 1 << 16;

/// Buffers in flight between the simulation and the hashing thread: enough
/// to ride out a pause of either side, few enough to bound memory (1 MiB).
const IN_FLIGHT: usize = 8;

/// A SHA-256 of a byte stream, hashed on its own thread.
pub struct TraceHasher {
    buf: Vec<u8>,
    /// `None` when no thread could be started: hash inline instead.
    worker: Option<Worker>,
    inline: Sha256,
}

struct Worker {
    full: SyncSender<Vec<u8>>,
    empty: Receiver<Vec<u8>>,
    handle: JoinHandle<Sha256>,
}

impl Default for TraceHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl TraceHasher {
    /// Starts the hashing thread.
    pub fn new() -> TraceHasher {
        let (full_tx, full_rx) = sync_channel::<Vec<u8>>(IN_FLIGHT);
        let (empty_tx, empty_rx) = sync_channel::<Vec<u8>>(IN_FLIGHT + 1);
        let spawned = std::thread::Builder::new().name("trace-hash".into()).spawn(move || {
            let mut hash = Sha256::new();
            for mut buf in full_rx {
                hash.update(&buf);
                buf.clear();
                // The simulation may have stopped taking buffers back.
                let _ = empty_tx.try_send(buf);
            }
            hash
        });
        let worker = spawned.ok().map(|handle| Worker { full: full_tx, empty: empty_rx, handle });
        TraceHasher { buf: Vec::with_capacity(BUFFER_BYTES), worker, inline: Sha256::new() }
    }

    /// Appends `bytes` to the stream.
    /// A hasher that hashes on the caller's thread, for a caller that is
    /// itself a second thread.
    pub fn without_thread() -> TraceHasher {
        TraceHasher { buf: Vec::with_capacity(BUFFER_BYTES), worker: None, inline: Sha256::new() }
    }

    #[inline]
    pub fn update(&mut self, bytes: &[u8]) {
        if self.buf.len() + bytes.len() > BUFFER_BYTES {
            self.flush();
        }
        self.buf.extend_from_slice(bytes);
    }

    fn flush(&mut self) {
        let Some(w) = &self.worker else {
            self.inline.update(&self.buf);
            self.buf.clear();
            return;
        };
        let next = w.empty.try_recv().unwrap_or_else(|_| Vec::with_capacity(BUFFER_BYTES));
        let full = std::mem::replace(&mut self.buf, next);
        if let Err(e) = w.full.send(full) {
            // The thread is gone (it cannot panic on its own); hash here.
            self.inline.update(e.0);
            self.worker = None;
        }
    }

    /// The digest of everything written. Stops the thread; the hasher
    /// starts over empty, hashing inline.
    pub fn finalize(&mut self) -> [u8; 32] {
        self.flush();
        let hash = match self.worker.take() {
            Some(Worker { full, handle, .. }) => {
                drop(full);
                handle.join().expect("the trace hashing thread does not panic")
            }
            None => std::mem::take(&mut self.inline),
        };
        hash.finalize().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The threaded hash equals a plain SHA-256 of the same stream,
    /// across many buffer boundaries and odd record sizes.
    #[test]
    fn equals_single_threaded_sha256() {
        let mut threaded = TraceHasher::new();
        let mut plain = Sha256::new();
        for i in 0u32..200_000 {
            let record = [i.to_le_bytes().as_slice(), &[(i % 7) as u8; 21]].concat();
            let record = &record[..(i as usize % 25) + 1];
            threaded.update(record);
            plain.update(record);
        }
        let want: [u8; 32] = plain.finalize().into();
        assert_eq!(threaded.finalize(), want);
    }
}
