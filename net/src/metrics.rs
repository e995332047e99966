//! Counters of one daemon and the Prometheus text endpoint that shows them.
//!
//! `--metrics 127.0.0.1:9464` serves, at any path:
//! - `tiersync_bytes_total{peer, direction, kind}` and
//!   `tiersync_messages_total{…}`: application frames written to and read
//!   from each peer's socket (keepalives have kind `keepalive`);
//! - `tiersync_connected_children`: child servers and clients connected;
//! - `tiersync_sync_duration_seconds_sum` / `_count`: this local server's
//!   synchronisations with its parent, from request to stored answer;
//! - `tiersync_last_sync_timestamp_seconds{child}`: when each child last
//!   synchronised with this server;
//! - `tiersync_policies_applied_total`: revisions a client applied;
//! - `tiersync_policy_revision{node}`: the revision this node holds, and the
//!   revision each child last said it holds.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tiersync_engine::Time;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// Direction of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Direction {
    /// Written to the socket.
    Out,
    /// Read from the socket.
    In,
}

#[derive(Debug, Default)]
struct Inner {
    frames: BTreeMap<(String, Direction, &'static str), (u64, u64)>,
    connected_children: u64,
    sync_seconds_sum: f64,
    sync_count: u64,
    last_sync: BTreeMap<String, Time>,
    revision: BTreeMap<String, u64>,
    applied: u64,
}

/// One daemon's counters, shared by its tasks.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    /// New, empty counters.
    pub fn new() -> Arc<Metrics> {
        Arc::new(Metrics::default())
    }

    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        // A poisoned lock only means another task panicked mid-update of a
        // counter; the counters are still usable.
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut g)
    }

    /// Counts one frame of `bytes` to or from `peer`.
    pub fn frame(&self, peer: &str, dir: Direction, kind: &'static str, bytes: usize) {
        self.with(|m| {
            let e = m.frames.entry((peer.to_string(), dir, kind)).or_default();
            e.0 += bytes as u64;
            e.1 += 1;
        });
    }

    /// Application bytes and messages per (peer, direction, kind), for the
    /// replay's comparison. Keepalives are left out.
    pub fn frames(&self) -> Vec<(String, Direction, &'static str, u64, u64)> {
        self.with(|m| {
            m.frames
                .iter()
                .filter(|((_, _, k), _)| *k != "keepalive")
                .map(|((p, d, k), (b, n))| (p.clone(), *d, *k, *b, *n))
                .collect()
        })
    }

    /// Sets the number of connected children.
    pub fn set_connected_children(&self, n: usize) {
        self.with(|m| m.connected_children = n as u64);
    }

    /// Records one completed synchronisation.
    pub fn sync_done(&self, took: Duration) {
        self.with(|m| {
            m.sync_seconds_sum += took.as_secs_f64();
            m.sync_count += 1;
        });
    }

    /// Records that `child` synchronised at `at`.
    pub fn child_synced(&self, child: &str, at: Time) {
        self.with(|m| {
            m.last_sync.insert(child.to_string(), at);
        });
    }

    /// Counts one policy revision applied by this client.
    pub fn applied(&self) {
        self.with(|m| m.applied += 1);
    }

    /// Policy revisions applied by this client since the process started.
    pub fn applied_total(&self) -> u64 {
        self.with(|m| m.applied)
    }

    /// Records the revision `node` holds.
    pub fn revision(&self, node: &str, revision: u64) {
        self.with(|m| {
            m.revision.insert(node.to_string(), revision);
        });
    }

    /// The Prometheus text exposition of every counter.
    pub fn render(&self) -> String {
        self.with(|m| {
            let mut s = String::new();
            let labels = |peer: &str, dir: &Direction, kind: &str| {
                let d = if *dir == Direction::Out { "out" } else { "in" };
                format!("{{peer=\"{peer}\",direction=\"{d}\",kind=\"{kind}\"}}")
            };
            let _ = writeln!(s, "# TYPE tiersync_bytes_total counter");
            for ((peer, dir, kind), (bytes, _)) in &m.frames {
                let _ = writeln!(s, "tiersync_bytes_total{} {bytes}", labels(peer, dir, kind));
            }
            let _ = writeln!(s, "# TYPE tiersync_messages_total counter");
            for ((peer, dir, kind), (_, n)) in &m.frames {
                let _ = writeln!(s, "tiersync_messages_total{} {n}", labels(peer, dir, kind));
            }
            let _ = writeln!(s, "# TYPE tiersync_connected_children gauge");
            let _ = writeln!(s, "tiersync_connected_children {}", m.connected_children);
            let _ = writeln!(s, "# TYPE tiersync_sync_duration_seconds summary");
            let _ = writeln!(s, "tiersync_sync_duration_seconds_sum {}", m.sync_seconds_sum);
            let _ = writeln!(s, "tiersync_sync_duration_seconds_count {}", m.sync_count);
            let _ = writeln!(s, "# TYPE tiersync_last_sync_timestamp_seconds gauge");
            for (child, at) in &m.last_sync {
                let secs = at.as_nanos() as f64 / 1e9;
                let _ = writeln!(
                    s,
                    "tiersync_last_sync_timestamp_seconds{{child=\"{child}\"}} {secs:.3}"
                );
            }
            let _ = writeln!(s, "# TYPE tiersync_policies_applied_total counter");
            let _ = writeln!(s, "tiersync_policies_applied_total {}", m.applied);
            let _ = writeln!(s, "# TYPE tiersync_policy_revision gauge");
            for (node, rev) in &m.revision {
                let _ = writeln!(s, "tiersync_policy_revision{{node=\"{node}\"}} {rev}");
            }
            s
        })
    }
}

/// Serves the counters as Prometheus text on `listener` until the task is
/// dropped. Each request gets the full page whatever its path; a client
/// that does not send its request head within five seconds is dropped.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>) {
    loop {
        let Ok((mut sock, _)) = listener.accept().await else { continue };
        let metrics = Arc::clone(&metrics);
        tokio::spawn(async move {
            let mut head = [0u8; 4096];
            let read = tokio::time::timeout(Duration::from_secs(5), sock.read(&mut head)).await;
            if !matches!(read, Ok(Ok(n)) if n > 0) {
                return;
            }
            let body = metrics.render();
            let reply = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\n\
                 content-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = tokio::time::timeout(Duration::from_secs(5), sock.write_all(reply.as_bytes()))
                .await;
        });
    }
}

/// Binds the metrics endpoint and serves it in the background.
pub async fn spawn(addr: SocketAddr, metrics: Arc<Metrics>) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(serve(listener, metrics));
    Ok(bound)
}
