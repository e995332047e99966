//! Counters of one daemon and the Prometheus text endpoint that shows them.
//!
//! `--metrics 127.0.0.1:9464` serves, at any path:
//! - `tiersync_bytes_total{peer, direction, kind}` and
//!   `tiersync_messages_total{…}`: application frames written to and read
//!   from each peer's socket (keepalives have kind `keepalive`);
//! - `tiersync_socket_bytes_total{peer, direction}`: bytes that crossed the
//!   TCP sockets to and from each peer: TLS records, handshakes and alerts
//!   (TCP/IP headers are the kernel's and not counted);
//! - `tiersync_sessions_total{peer}`: sessions opened with each peer, and
//!   `tiersync_open_sessions`: sessions open now;
//! - `tiersync_connected_children`: child servers and clients connected;
//! - `tiersync_sync_duration_seconds` (a histogram: `_bucket{le}`, `_sum`,
//!   `_count`): this local server's synchronisations with its parent, from
//!   request to stored answer, in engine seconds;
//! - `tiersync_last_sync_timestamp_seconds{child}`: when each child server
//!   last synchronised with this server;
//! - `tiersync_client_last_poll_timestamp_seconds{client}` and
//!   `tiersync_client_policy_revision{client}`: when each client of this
//!   server last polled, and the revision it said it held. One series per
//!   client: a server with hundreds of clients shows hundreds of series,
//!   which Prometheus handles; for tens of thousands, drop these two with a
//!   `metric_relabel_configs` rule;
//! - `tiersync_policies_applied_total`: revisions a client applied;
//! - `tiersync_policy_revision{node}`: the revision this node holds, and the
//!   revision each child server last said it holds.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tiersync_engine::Time;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

use crate::conn::SocketBytes;

/// Upper bounds of the synchronisation-duration histogram, in seconds:
/// from a fast LAN (a tenth of a second) to a sync retried over an hour.
pub const SYNC_BUCKETS: [f64; 12] =
    [0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0, 1800.0, 3600.0];

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
    /// Socket bytes (written, read) of closed sessions, per peer.
    sockets_closed: BTreeMap<String, (u64, u64)>,
    /// Sessions still open: connection number, peer, counters.
    sockets_open: BTreeMap<u64, (String, Arc<SocketBytes>)>,
    sessions: BTreeMap<String, u64>,
    connected_children: u64,
    sync_seconds_sum: f64,
    sync_count: u64,
    /// Syncs per histogram bucket (not cumulative), the last one `+Inf`.
    sync_buckets: [u64; SYNC_BUCKETS.len() + 1],
    last_sync: BTreeMap<String, Time>,
    client_polls: BTreeMap<String, (Time, u64)>,
    revision: BTreeMap<String, u64>,
    applied: u64,
    applied_revisions: BTreeMap<(String, u64), u64>,
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

    /// Application frames, keepalives included.
    pub fn all_frames(&self) -> Vec<(String, Direction, &'static str, u64, u64)> {
        self.with(|m| {
            m.frames.iter().map(|((p, d, k), (b, n))| (p.clone(), *d, *k, *b, *n)).collect()
        })
    }

    /// A session with `peer` opened on connection `conn`, whose socket
    /// bytes `bytes` counts.
    pub fn socket_open(&self, conn: u64, peer: &str, bytes: Arc<SocketBytes>) {
        self.with(|m| {
            *m.sessions.entry(peer.to_string()).or_default() += 1;
            m.sockets_open.insert(conn, (peer.to_string(), bytes));
        });
    }

    /// The session on connection `conn` ended; its bytes join the totals.
    pub fn socket_closed(&self, conn: u64) {
        self.with(|m| {
            if let Some((peer, b)) = m.sockets_open.remove(&conn) {
                let e = m.sockets_closed.entry(peer).or_default();
                e.0 += b.written.load(Ordering::Relaxed);
                e.1 += b.read.load(Ordering::Relaxed);
            }
        });
    }

    /// Socket bytes per peer: (peer, written, read), open sessions
    /// included. The TLS handshake of a session counts towards its peer;
    /// the bytes of a handshake that fails or of a refused peer are not
    /// counted anywhere, since there is no peer to count them for.
    pub fn sockets(&self) -> Vec<(String, u64, u64)> {
        self.with(|m| {
            let mut t = m.sockets_closed.clone();
            for (peer, b) in m.sockets_open.values() {
                let e = t.entry(peer.clone()).or_default();
                e.0 += b.written.load(Ordering::Relaxed);
                e.1 += b.read.load(Ordering::Relaxed);
            }
            t.into_iter().map(|(p, (w, r))| (p, w, r)).collect()
        })
    }

    /// Sessions open now, with any peer.
    pub fn open_sessions(&self) -> usize {
        self.with(|m| m.sockets_open.len())
    }

    /// Sessions opened with `peer` since the process started.
    pub fn sessions(&self, peer: &str) -> u64 {
        self.with(|m| m.sessions.get(peer).copied().unwrap_or(0))
    }

    /// Sets the number of connected children.
    pub fn set_connected_children(&self, n: usize) {
        self.with(|m| m.connected_children = n as u64);
    }

    /// The number of connected children.
    pub fn connected_children(&self) -> u64 {
        self.with(|m| m.connected_children)
    }

    /// Records one completed synchronisation.
    pub fn sync_done(&self, took: Duration) {
        let secs = took.as_secs_f64();
        self.with(|m| {
            m.sync_seconds_sum += secs;
            m.sync_count += 1;
            let bucket = SYNC_BUCKETS.iter().position(|b| secs <= *b).unwrap_or(SYNC_BUCKETS.len());
            m.sync_buckets[bucket] += 1;
        });
    }

    /// Records that the client `client` polled at `at`, saying it holds
    /// `revision`.
    pub fn client_polled(&self, client: &str, at: Time, revision: u64) {
        self.with(|m| {
            m.client_polls.insert(client.to_string(), (at, revision));
        });
    }

    /// Records that `child` synchronised at `at`.
    pub fn child_synced(&self, child: &str, at: Time) {
        self.with(|m| {
            m.last_sync.insert(child.to_string(), at);
        });
    }

    /// Counts one policy revision applied by this client.
    pub fn applied(&self, policy: &str, revision: u64) {
        self.with(|m| {
            m.applied += 1;
            *m.applied_revisions.entry((policy.to_string(), revision)).or_default() += 1;
        });
    }

    /// How many times each (policy, revision) was applied since the
    /// process started: exactly once each, unless something is re-applied.
    pub fn applied_revisions(&self) -> BTreeMap<(String, u64), u64> {
        self.with(|m| m.applied_revisions.clone())
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
            let mut sockets = m.sockets_closed.clone();
            for (peer, b) in m.sockets_open.values() {
                let e = sockets.entry(peer.clone()).or_default();
                e.0 += b.written.load(Ordering::Relaxed);
                e.1 += b.read.load(Ordering::Relaxed);
            }
            let _ = writeln!(s, "# TYPE tiersync_socket_bytes_total counter");
            for (peer, (w, r)) in &sockets {
                for (d, n) in [("out", w), ("in", r)] {
                    let l = format!("{{peer=\"{peer}\",direction=\"{d}\"}}");
                    let _ = writeln!(s, "tiersync_socket_bytes_total{l} {n}");
                }
            }
            let _ = writeln!(s, "# TYPE tiersync_sessions_total counter");
            for (peer, n) in &m.sessions {
                let _ = writeln!(s, "tiersync_sessions_total{{peer=\"{peer}\"}} {n}");
            }
            let _ = writeln!(s, "# TYPE tiersync_open_sessions gauge");
            let _ = writeln!(s, "tiersync_open_sessions {}", m.sockets_open.len());
            let _ = writeln!(s, "# TYPE tiersync_connected_children gauge");
            let _ = writeln!(s, "tiersync_connected_children {}", m.connected_children);
            let _ = writeln!(s, "# TYPE tiersync_sync_duration_seconds histogram");
            let mut cumulative = 0;
            for (i, n) in m.sync_buckets.iter().enumerate() {
                cumulative += n;
                let le = SYNC_BUCKETS.get(i).map_or("+Inf".to_string(), |b| b.to_string());
                let _ = writeln!(
                    s,
                    "tiersync_sync_duration_seconds_bucket{{le=\"{le}\"}} {cumulative}"
                );
            }
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
            let _ = writeln!(s, "# TYPE tiersync_client_last_poll_timestamp_seconds gauge");
            for (client, (at, _)) in &m.client_polls {
                let secs = at.as_nanos() as f64 / 1e9;
                let _ = writeln!(
                    s,
                    "tiersync_client_last_poll_timestamp_seconds{{client=\"{client}\"}} {secs:.3}"
                );
            }
            let _ = writeln!(s, "# TYPE tiersync_client_policy_revision gauge");
            for (client, (_, rev)) in &m.client_polls {
                let _ = writeln!(s, "tiersync_client_policy_revision{{client=\"{client}\"}} {rev}");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_durations_form_a_cumulative_histogram() {
        let m = Metrics::new();
        m.sync_done(Duration::from_millis(50));
        m.sync_done(Duration::from_secs(3));
        m.sync_done(Duration::from_secs(7200));
        let text = m.render();
        assert!(text.contains("# TYPE tiersync_sync_duration_seconds histogram"));
        assert!(text.contains("tiersync_sync_duration_seconds_bucket{le=\"0.1\"} 1\n"));
        assert!(text.contains("tiersync_sync_duration_seconds_bucket{le=\"5\"} 2\n"));
        assert!(text.contains("tiersync_sync_duration_seconds_bucket{le=\"3600\"} 2\n"));
        assert!(text.contains("tiersync_sync_duration_seconds_bucket{le=\"+Inf\"} 3\n"));
        assert!(text.contains("tiersync_sync_duration_seconds_count 3\n"));
    }

    #[test]
    fn client_polls_and_socket_bytes_are_shown_per_peer() {
        let m = Metrics::new();
        m.client_polled("pc1.tokyo", Time(2_000_000_000), 7);
        let b = Arc::new(SocketBytes::default());
        b.written.fetch_add(100, Ordering::Relaxed);
        m.socket_open(1, "pc1.tokyo", Arc::clone(&b));
        b.read.fetch_add(40, Ordering::Relaxed);
        assert_eq!(m.sockets(), [("pc1.tokyo".to_string(), 100, 40)]);
        m.socket_closed(1);
        m.socket_open(2, "pc1.tokyo", Arc::new(SocketBytes::default()));
        assert_eq!(m.sockets(), [("pc1.tokyo".to_string(), 100, 40)]);
        assert_eq!(m.sessions("pc1.tokyo"), 2);
        let text = m.render();
        assert!(text.contains("tiersync_client_policy_revision{client=\"pc1.tokyo\"} 7\n"));
        assert!(
            text.contains(
                "tiersync_client_last_poll_timestamp_seconds{client=\"pc1.tokyo\"} 2.000"
            )
        );
        assert!(
            text.contains("tiersync_socket_bytes_total{peer=\"pc1.tokyo\",direction=\"out\"} 100")
        );
    }
}
