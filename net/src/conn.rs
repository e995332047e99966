//! Connections: TLS sessions between nodes, the accept loop of a server,
//! the reconnecting dial loop of a child, and operator sessions.
//!
//! A session has two halves in one task: a reader that turns frames into
//! [`Event`]s for the driver, and a writer that drains the peer's bounded
//! send queue and sends a keepalive after `keepalive` of silence. When
//! either half ends (the peer closed, went silent, sent garbage, or the
//! driver dropped the queue), the other is dropped with it and the
//! connection closes; other connections are unaffected.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use rand::{RngExt as _, SeedableRng as _};
use rand_pcg::Pcg32;
use tiersync_engine::serve::AdmitFn;
use tiersync_engine::{Message, MessageKind, NodeId, Platform, SiteName, codec};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore, mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tracing::{debug, info, warn};

use crate::config::Transport;
use crate::frame::{self, FrameError, Inbound, KEEPALIVE, Limits};
use crate::ids::{PeerIdentity, Role};
use crate::metrics::{Direction, Metrics};
use crate::operator::{OpRequest, OpResponse};
use crate::pki;

/// Most connections a server holds at once; past it new ones wait in the
/// kernel's backlog. Each costs at most `send_queue_frames` queued frames
/// of at most `send_queue_bytes` together, and one frame being read.
pub const MAX_CONNECTIONS: usize = 16_384;

/// A frame queued for a peer.
#[derive(Clone, Debug)]
pub struct Outgoing {
    /// The encoded frame, shared by every peer the same message goes to.
    pub bytes: Arc<[u8]>,
    /// Its message kind, for counting.
    pub kind: MessageKind,
}

/// Bytes read from and written to one TCP socket: everything the TLS layer
/// exchanged (handshake, records, alerts), TCP/IP headers excluded since
/// the kernel adds them.
#[derive(Debug, Default)]
pub struct SocketBytes {
    /// Bytes read from the socket.
    pub read: AtomicU64,
    /// Bytes written to the socket.
    pub written: AtomicU64,
}

/// A byte stream that counts what crosses it into a [`SocketBytes`].
#[derive(Debug)]
pub struct Counted<S> {
    inner: S,
    bytes: Arc<SocketBytes>,
}

impl<S> Counted<S> {
    /// Counts `inner`'s bytes into `bytes`.
    pub fn new(inner: S, bytes: Arc<SocketBytes>) -> Counted<S> {
        Counted { inner, bytes }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &r {
            let n = buf.filled().len().saturating_sub(before) as u64;
            this.bytes.read.fetch_add(n, Ordering::Relaxed);
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &r {
            this.bytes.written.fetch_add(*n as u64, Ordering::Relaxed);
        }
        r
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = &r {
            this.bytes.written.fetch_add(*n as u64, Ordering::Relaxed);
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// What connections tell the driver.
#[derive(Debug)]
pub enum Event {
    /// A peer's session is up; frames for it go to `tx`.
    Connected {
        /// The peer.
        peer: NodeId,
        /// Its certificate name.
        name: String,
        /// This connection's number, to match its `Disconnected`.
        conn: u64,
        /// The peer's send queue.
        tx: mpsc::Sender<Outgoing>,
        /// Bytes in that queue, not yet written.
        queued: Arc<AtomicUsize>,
        /// Ends the session at once, even in the middle of a blocked write
        /// (a peer that stopped reading).
        close: Arc<Notify>,
    },
    /// A peer's session ended.
    Disconnected {
        /// The peer.
        peer: NodeId,
        /// The connection that ended.
        conn: u64,
    },
    /// A message arrived.
    Message {
        /// The peer.
        from: NodeId,
        /// The message.
        msg: Message,
    },
    /// A peer passed the certificate checks and waits to be admitted: the
    /// driver checks that no other name holds its node id (binding the
    /// name to the id in the store when it is new) and answers `Ok`, or
    /// why not. Its session starts only after an `Ok`, so a refused peer
    /// sends the node nothing.
    Admit {
        /// The node id its name maps to.
        peer: NodeId,
        /// Its certificate: name, role and site.
        identity: PeerIdentity,
        /// The verdict.
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// An operator request, answered on `reply`.
    Operator {
        /// The request.
        req: OpRequest,
        /// Where the answer goes.
        reply: oneshot::Sender<OpResponse>,
    },
}

/// Who may connect to a server, from their certificates.
#[derive(Clone, Debug, Default)]
pub struct Access {
    /// Child servers by certificate name.
    pub children: Vec<String>,
    /// Sites whose clients this server serves.
    pub client_sites: Vec<String>,
    /// Node ids assigned to names; a name not listed has the id
    /// [`crate::ids::node_id`] derives from it. `tiersync replay` lists
    /// every node so that ids are the simulator's.
    pub ids: Arc<BTreeMap<String, NodeId>>,
}

/// What an accepted certificate is allowed to do here.
#[derive(Debug, PartialEq, Eq)]
pub enum Admitted {
    /// A node speaking the engine protocol.
    Node(NodeId),
    /// An operator.
    Operator,
}

impl Access {
    /// The node id of the peer named `name`.
    pub fn id_of(&self, name: &str) -> NodeId {
        self.ids.get(name).copied().unwrap_or_else(|| crate::ids::node_id(name))
    }

    /// Admits or refuses a peer whose certificate already chains to the CA.
    pub fn admit(&self, peer: &PeerIdentity) -> Result<Admitted, String> {
        match peer.role {
            Role::Operator => Ok(Admitted::Operator),
            Role::Local if self.children.contains(&peer.name) => {
                Ok(Admitted::Node(self.id_of(&peer.name)))
            }
            Role::Local => Err(format!("local server `{}` is not a configured child", peer.name)),
            Role::Client => match &peer.site {
                Some(site) if self.client_sites.contains(site) => {
                    Ok(Admitted::Node(self.id_of(&peer.name)))
                }
                Some(site) => Err(format!(
                    "client `{}` is of site `{site}`, not served here ({})",
                    peer.name,
                    self.client_sites.join(", ")
                )),
                None => Err(format!("client `{}` has no site in its certificate", peer.name)),
            },
            Role::Master => Err("a master does not connect to other servers".into()),
        }
    }
}

/// The site each connected client's certificate names, by node id: what
/// the engine's client admission check ([`AdmitFn`]) compares the site a
/// poll or report claims with. The driver records a client's certificate
/// when it admits its connection, before any of its messages can arrive.
#[derive(Debug, Default)]
pub struct CertifiedSites {
    /// Node id to (certificate name, certificate site).
    by_id: std::sync::RwLock<BTreeMap<NodeId, (String, String)>>,
}

impl CertifiedSites {
    /// An empty table.
    pub fn new() -> Arc<CertifiedSites> {
        Arc::new(CertifiedSites::default())
    }

    /// Records the certificate of the client `id`, replacing an earlier
    /// one (a certificate reissued for another site takes effect at the
    /// client's next connection).
    pub fn record(&self, id: NodeId, name: &str, site: &str) {
        // A poisoned lock only means a panic elsewhere mid-insert; the map
        // itself is still whole.
        let mut map = self.by_id.write().unwrap_or_else(|e| e.into_inner());
        map.insert(id, (name.to_string(), site.to_string()));
    }

    /// Whether the client `id` may claim `site`: only the site in its
    /// certificate. A client never admitted here has no certificate on
    /// record and is refused.
    pub fn admits(&self, id: NodeId, site: &SiteName) -> bool {
        let map = self.by_id.read().unwrap_or_else(|e| e.into_inner());
        match map.get(&id) {
            Some((_, cert)) if cert.as_str() == site.as_str() => true,
            Some((name, cert)) => {
                warn!(client = %name, claimed = %site, certificate = %cert,
                    "client claims a site other than its certificate's: refused");
                false
            }
            None => {
                warn!(%id, claimed = %site, "no certificate on record for this client: refused");
                false
            }
        }
    }

    /// The engine's admission hook over this table: any platform, the
    /// certificate's site only.
    pub fn admit_fn(self: &Arc<Self>) -> AdmitFn {
        let table = Arc::clone(self);
        Arc::new(move |id: NodeId, site: &SiteName, _platform: &Platform| table.admits(id, site))
    }
}

/// Shared settings of every connection of one daemon.
#[derive(Clone, Debug)]
pub struct ConnCtx {
    /// The driver's event queue.
    pub events: mpsc::Sender<Event>,
    /// Timings and bounds.
    pub transport: Transport,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Numbers connections, so that a late `Disconnected` of a replaced
    /// connection is told apart from the current one's.
    pub next_conn: Arc<std::sync::atomic::AtomicU64>,
}

impl ConnCtx {
    fn limits(&self) -> Limits {
        let t = &self.transport;
        Limits {
            max_frame_bytes: t.max_frame_bytes,
            dead_after: t.dead_after,
            min_send_rate_bps: t.min_send_rate_bps,
            grace: t.handshake_timeout,
        }
    }

    fn conn_id(&self) -> u64 {
        self.next_conn.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }
}

/// Runs one engine session with `peer` until it ends. `socket` counts the
/// bytes of the TCP connection underneath, for the counters.
pub async fn run_session<S>(
    stream: S,
    peer: NodeId,
    name: String,
    ctx: ConnCtx,
    socket: Arc<SocketBytes>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let conn = ctx.conn_id();
    let (tx, mut rx) = mpsc::channel::<Outgoing>(ctx.transport.send_queue_frames.max(1));
    let queued = Arc::new(AtomicUsize::new(0));
    let close = Arc::new(Notify::new());
    let connected = Event::Connected {
        peer,
        name: name.clone(),
        conn,
        tx,
        queued: Arc::clone(&queued),
        close: Arc::clone(&close),
    };
    if ctx.events.send(connected).await.is_err() {
        return;
    }
    ctx.metrics.socket_open(conn, &name, socket);
    let (mut r, mut w) = tokio::io::split(stream);
    let limits = ctx.limits();

    // The reader hands every message to the driver, in order.
    let reader = async {
        loop {
            match frame::read_inbound(&mut r, &limits).await {
                Ok(Inbound::Message(msg, len)) => {
                    ctx.metrics.frame(&name, Direction::In, msg.kind().as_str(), len);
                    tracing::trace!(peer = %name, kind = msg.kind().as_str(), len, "received");
                    if ctx.events.send(Event::Message { from: peer, msg }).await.is_err() {
                        return FrameError::Closed;
                    }
                }
                Ok(Inbound::Keepalive) => ctx.metrics.frame(&name, Direction::In, "keepalive", 5),
                Err(e) => return e,
            }
        }
    };

    // The writer drains the queue, and fills silences with keepalives.
    // Each write may take the time its size needs at the slowest rate a
    // peer may read, like a frame being read.
    let writer = async {
        loop {
            match tokio::time::timeout(ctx.transport.keepalive, rx.recv()).await {
                Ok(Some(o)) => {
                    let allowed = frame::allowance(&limits, o.bytes.len());
                    let written = frame::write_all(&mut w, &o.bytes, allowed).await;
                    queued.fetch_sub(o.bytes.len(), Ordering::Relaxed);
                    if let Err(e) = written {
                        return e;
                    }
                    ctx.metrics.frame(&name, Direction::Out, o.kind.as_str(), o.bytes.len());
                }
                Ok(None) => return FrameError::Closed,
                Err(_) => {
                    let allowed = frame::allowance(&limits, KEEPALIVE.len());
                    if let Err(e) = frame::write_all(&mut w, &KEEPALIVE, allowed).await {
                        return e;
                    }
                    ctx.metrics.frame(&name, Direction::Out, "keepalive", KEEPALIVE.len());
                }
            }
        }
    };

    let reason = tokio::select! {
        e = reader => e,
        e = writer => e,
        () = close.notified() => FrameError::Closed,
    };
    match &reason {
        FrameError::Closed => debug!(peer = %name, "session closed"),
        FrameError::Decode(e) => {
            warn!(peer = %name, error = %e, "bad frame: closing this connection");
            // Tell the peer why before closing, as the wire format says.
            if let Ok(bytes) = codec::encode(&Message::Error { req: 0, code: e.code() }) {
                let allowed = frame::allowance(&limits, bytes.len());
                if frame::write_all(&mut w, &bytes, allowed).await.is_ok() {
                    ctx.metrics.frame(&name, Direction::Out, "error", bytes.len());
                }
            }
        }
        // A peer that closes or resets its end is routine (a reboot, a
        // stop); anything else is worth a warning.
        FrameError::Io(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::UnexpectedEof
            ) =>
        {
            info!(peer = %name, error = %e, "peer closed the connection")
        }
        e => warn!(peer = %name, error = %e, "session ended"),
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), w.shutdown()).await;
    ctx.metrics.socket_closed(conn);
    let _ = ctx.events.send(Event::Disconnected { peer, conn }).await;
}

/// Accepts connections until `shutdown` turns true, then waits for the
/// sessions it started to end (the driver ends them by closing their
/// queues). Dropping this future drops every session at once.
pub async fn accept_loop(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    access: Access,
    ctx: ConnCtx,
    mut shutdown: watch::Receiver<bool>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut sessions = JoinSet::new();
    loop {
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else { break };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => break,
            Some(_) = sessions.join_next(), if !sessions.is_empty() => continue,
        };
        let (tcp, addr) = match accepted {
            Ok(a) => a,
            Err(e) => {
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, access, ctx) = (acceptor.clone(), access.clone(), ctx.clone());
        sessions.spawn(async move {
            let _permit = permit;
            let socket = Arc::new(SocketBytes::default());
            let tcp = Counted::new(tcp, Arc::clone(&socket));
            let handshake =
                tokio::time::timeout(ctx.transport.handshake_timeout, acceptor.accept(tcp));
            let tls = match handshake.await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    warn!(%addr, error = %e, "TLS handshake refused");
                    return;
                }
                Err(_) => {
                    warn!(%addr, "TLS handshake timed out");
                    return;
                }
            };
            let peer =
                tls.get_ref().1.peer_certificates().and_then(|c| c.first()).and_then(pki::identity);
            let Some(peer) = peer else {
                warn!(%addr, "peer certificate has no tiersync name and role");
                return;
            };
            match access.admit(&peer) {
                Ok(Admitted::Node(id)) => {
                    let (reply, verdict) = oneshot::channel();
                    let admit = Event::Admit { peer: id, identity: peer.clone(), reply };
                    if ctx.events.send(admit).await.is_err() {
                        return;
                    }
                    match verdict.await {
                        Ok(Ok(())) => {}
                        Ok(Err(why)) => {
                            warn!(peer = %peer.name, %addr, reason = %why, "peer refused");
                            return;
                        }
                        Err(_) => return,
                    }
                    info!(peer = %peer.name, role = %peer.role, %addr, "peer connected");
                    run_session(tls, id, peer.name, ctx, socket).await;
                }
                Ok(Admitted::Operator) => {
                    info!(operator = %peer.name, %addr, "operator connected");
                    run_operator(tls, ctx).await;
                }
                Err(why) => warn!(peer = %peer.name, %addr, reason = %why, "peer refused"),
            }
        });
    }
    drop(listener);
    while sessions.join_next().await.is_some() {}
}

/// Answers an operator's requests, one at a time, until it closes.
async fn run_operator<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, ctx: ConnCtx) {
    let limits = Limits {
        max_frame_bytes: ctx.transport.max_frame_bytes,
        dead_after: Duration::from_secs(300),
        min_send_rate_bps: ctx.transport.min_send_rate_bps,
        grace: ctx.transport.handshake_timeout,
    };
    loop {
        let frame = match frame::read_frame(&mut stream, &limits).await {
            Ok(f) => f,
            Err(FrameError::Closed) => return,
            Err(e) => {
                warn!(error = %e, "operator session ended");
                return;
            }
        };
        let resp = match frame::decode_op::<OpRequest>(&frame) {
            Ok(req) => {
                let (reply, rx) = oneshot::channel();
                if ctx.events.send(Event::Operator { req, reply }).await.is_err() {
                    return;
                }
                rx.await.unwrap_or_else(|_| OpResponse::Error("the daemon is stopping".into()))
            }
            Err(e) => OpResponse::Error(format!("bad request: {e}")),
        };
        let Ok(bytes) = frame::encode_op(&resp) else { return };
        let allowed = frame::allowance(&limits, bytes.len());
        if frame::write_all(&mut stream, &bytes, allowed).await.is_err() {
            return;
        }
    }
}

/// Where a child connects.
#[derive(Clone, Debug)]
pub struct ParentLink {
    /// `host:port`.
    pub addr: String,
    /// The name its certificate must carry.
    pub name: String,
    /// Its node id.
    pub id: NodeId,
}

/// Exponential backoff with jitter: each failure doubles the ceiling, and
/// the delay is drawn uniformly in its upper half, so that children cut off
/// together do not come back together.
#[derive(Debug)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    failures: u32,
    rng: Pcg32,
}

impl Backoff {
    /// A backoff between `min` and `max`, jittered by a generator seeded
    /// with `seed`.
    pub fn new(min: Duration, max: Duration, seed: u64) -> Backoff {
        Backoff { min, max: max.max(min), failures: 0, rng: Pcg32::seed_from_u64(seed) }
    }

    /// The delay before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.min.saturating_mul(1 << self.failures.min(20)).min(self.max);
        self.failures = self.failures.saturating_add(1);
        let half = ceiling / 2;
        let ns = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX).max(1);
        half + Duration::from_nanos(self.rng.random_range(0..ns))
    }

    /// Forgets past failures (a connection that lasted).
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

/// A session that lasted this long resets the backoff; a peer that
/// accepts and drops us at once does not.
const STABLE_SESSION: Duration = Duration::from_secs(10);

/// Connects to the parent, runs the session, and reconnects after it ends,
/// until `shutdown` turns true.
pub async fn dial_loop(
    parent: ParentLink,
    tls: Arc<rustls::ClientConfig>,
    ctx: ConnCtx,
    mut shutdown: watch::Receiver<bool>,
    seed: u64,
) {
    let connector = TlsConnector::from(tls);
    let mut backoff = Backoff::new(ctx.transport.backoff_min, ctx.transport.backoff_max, seed);
    let Ok(server_name) = rustls_pki_types::ServerName::try_from(parent.name.clone()) else {
        warn!(parent = %parent.name, "parent name is not a valid TLS name");
        return;
    };
    while !*shutdown.borrow() {
        let socket = Arc::new(SocketBytes::default());
        let attempt = async {
            let tcp = TcpStream::connect(&parent.addr).await?;
            let _ = tcp.set_nodelay(true);
            let tcp = Counted::new(tcp, Arc::clone(&socket));
            connector.connect(server_name.clone(), tcp).await
        };
        match tokio::time::timeout(ctx.transport.handshake_timeout, attempt).await {
            Ok(Ok(tls)) => {
                let role = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .and_then(pki::identity)
                    .map(|p| p.role);
                if matches!(role, Some(Role::Master | Role::Local)) {
                    info!(parent = %parent.name, addr = %parent.addr, "connected to parent");
                    let started = tokio::time::Instant::now();
                    let name = parent.name.clone();
                    run_session(tls, parent.id, name, ctx.clone(), Arc::clone(&socket)).await;
                    if started.elapsed() >= STABLE_SESSION {
                        backoff.reset();
                    }
                    info!(parent = %parent.name, "disconnected from parent");
                } else {
                    warn!(parent = %parent.name, ?role, "parent's certificate is not a server's");
                }
            }
            Ok(Err(e)) => warn!(parent = %parent.name, addr = %parent.addr, error = %e,
                "cannot connect to parent"),
            Err(_) => warn!(parent = %parent.name, addr = %parent.addr, "connecting timed out"),
        }
        let delay = backoff.next_delay();
        debug!(?delay, "reconnecting after a delay");
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.changed() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(8), 1);
        let d: Vec<Duration> = (0..6).map(|_| b.next_delay()).collect();
        assert!(d[0] >= Duration::from_millis(500) && d[0] <= Duration::from_secs(1));
        assert!(d[3] >= Duration::from_secs(4) && d[3] <= Duration::from_secs(8));
        assert!(d[5] <= Duration::from_secs(8));
        b.reset();
        assert!(b.next_delay() <= Duration::from_secs(1));
    }

    #[test]
    fn ids_assigned_by_name_override_the_derived_ones() {
        let ids = BTreeMap::from([("c7.tokyo".to_string(), NodeId(9))]);
        let access =
            Access { client_sites: vec!["tokyo".into()], ids: Arc::new(ids), ..Access::default() };
        let mut peer = PeerIdentity {
            name: "c7.tokyo".into(),
            role: Role::Client,
            site: Some("tokyo".into()),
        };
        assert_eq!(access.admit(&peer), Ok(Admitted::Node(NodeId(9))));
        peer.name = "c8.tokyo".into();
        let derived = crate::ids::node_id("c8.tokyo");
        assert_eq!(access.admit(&peer), Ok(Admitted::Node(derived)));
    }

    #[test]
    fn local_server_admits_only_its_own_site() {
        let access = Access { client_sites: vec!["tokyo".into()], ..Access::default() };
        let mut peer = PeerIdentity {
            name: "pc1.tokyo".into(),
            role: Role::Client,
            site: Some("tokyo".into()),
        };
        assert!(matches!(access.admit(&peer), Ok(Admitted::Node(_))));
        peer.site = Some("london".into());
        assert!(access.admit(&peer).is_err());
        peer.role = Role::Local;
        assert!(access.admit(&peer).is_err());
    }
}
