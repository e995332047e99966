//! Who a peer is: a node id bound to one name only, and a client served
//! only as the site its certificate names. Every test binds 127.0.0.1
//! port 0 and is bounded in time.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use tiersync_engine::message::ErrorCode;
use tiersync_engine::stats::SecurityReport;
use tiersync_engine::{Blob, Message, Name, Revision, Time, codec};
use tiersync_net::clock::Clock;
use tiersync_net::config;
use tiersync_net::frame::{self, KEEPALIVE, Limits};
use tiersync_net::ids::{Role, node_id};
use tiersync_net::metrics::Metrics;
use tiersync_net::operator::{OpRequest, OpResponse, OpScope};
use tiersync_net::setup::{self, SetupError};
use tiersync_net::store::Store;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// Each test in at most this long.
const TEST_BOUND: Duration = Duration::from_secs(90);

/// Two valid names whose 32-bit FNV-1a hashes, their node ids, are equal
/// (found by hashing `pcN.tokyo` for N from 0 until two met); no test hook
/// is needed to make them collide.
const FIRST: &str = "pc122789.tokyo";
const SECOND: &str = "pc339192.tokyo";

fn lines_with(log: &std::path::Path, words: &[&str]) -> usize {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines().filter(|l| words.iter().all(|w| l.contains(w))).count()
}

async fn client_status(master: &Node, name: &str) -> OpResponse {
    let scope = OpScope::Client(name.into());
    master.op(OpRequest::Status { current: true, scope }).await
}

/// A local server that admitted `pc122789.tokyo` refuses `pc339192.tokyo`,
/// whose name maps to the same node id, with one log line naming both, and
/// changes nothing: the first client's record stays its own (its platform,
/// not the second's), the second gets no policy, and the binding is the
/// first name's in the store. The binding is durable: restarted, with the
/// first client gone, the server still refuses the second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_name_for_a_node_id_is_refused_and_changes_nothing() {
    assert_eq!(node_id(FIRST), node_id(SECOND), "the two names must collide");
    let test = async {
        let net = Net::new();
        let master = net.start_master(&["tokyo"]).await;
        let path = net.local_config("tokyo", any_port(), master.addr());
        let log = net.dir().join("tokyo.log");
        let (mut tokyo, addr) = Proc::spawn("local", &path, &log);
        let addr = addr.expect("a local server listens");
        let path = net.local_config("tokyo", addr, master.addr());
        set(&master, policy("antivirus", &["windows", "linux"], &[])).await;

        let first = net.start_client(FIRST, "tokyo", "windows", addr).await;
        eventually("the first client reports revision 1", || async {
            let OpResponse::Status(v) = client_status(&master, FIRST).await else { return false };
            v.client.is_some_and(|c| c.applied == [("antivirus".to_string(), 1)])
        })
        .await;

        let second = net.start_client(SECOND, "tokyo", "linux", addr).await;
        let refusal = ["node-id collision", FIRST, SECOND];
        eventually("the server logs the refusal, naming both", || async {
            lines_with(&log, &refusal) > 0
        })
        .await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(second.revision("antivirus").await, None, "the second client was served");
        let OpResponse::Status(v) = client_status(&master, FIRST).await else { panic!("status") };
        let record = v.client.expect("the first client's record");
        assert_eq!(record.platform, "windows", "the second client's report replaced the first's");

        // Stopped cleanly, the server's store binds the id to the first
        // name and holds the first client's record only.
        first.stop().await;
        let status = tokyo.terminate(Duration::from_secs(20)).expect("tokyo exits");
        assert!(status.success(), "{status:?}");
        let store = Store::open(&net.dir().join("data/tokyo"), Role::Local, "tokyo").unwrap();
        let bound = store.node_names().unwrap();
        assert_eq!(bound.get(&node_id(FIRST)).map(String::as_str), Some(FIRST));
        let (state, names) = store.local_load().unwrap();
        assert_eq!(state.clients.len(), 1);
        assert_eq!(state.clients[0].1.report.platform.as_str(), "windows");
        assert_eq!(names.get(&node_id(FIRST)).map(String::as_str), Some(FIRST));
        drop(store);

        // Restarted, with only the second client about: still refused.
        let before = lines_with(&log, &refusal);
        let (mut tokyo, _) = Proc::spawn("local", &path, &log);
        eventually("the restarted server refuses the second client again", || async {
            lines_with(&log, &refusal) > before
        })
        .await;
        assert_eq!(second.revision("antivirus").await, None);
        let status = tokyo.terminate(Duration::from_secs(20)).expect("tokyo exits");
        assert!(status.success(), "{status:?}");
    };
    tokio::time::timeout(TEST_BOUND, test).await.expect("bounded in time");
}

/// A configuration naming two names of one node id does not start, and
/// says which two: here a master's two children.
#[test]
fn a_configuration_with_two_names_for_one_node_id_does_not_start() {
    let net = Net::new();
    let path = net.master_config(&[FIRST, SECOND]);
    let cfg = config::load(&path).unwrap();
    let err = setup::master(&cfg, Clock::wall(), Metrics::new()).unwrap_err();
    assert!(matches!(err, SetupError::Mismatch(_)), "{err}");
    let text = err.to_string();
    assert!(text.contains("node-id collision") && text.contains(FIRST), "{text}");
    assert!(text.contains(SECOND), "{text}");
}

/// A TLS session with a server as the client `name`, speaking frames.
struct Raw {
    stream: TlsStream<TcpStream>,
    limits: Limits,
}

impl Raw {
    async fn connect(net: &Net, name: &str, server: SocketAddr, server_name: &str) -> Raw {
        let tls = tiersync_net::pki::client_config(&net.files(name)).unwrap();
        let tcp = TcpStream::connect(server).await.unwrap();
        let sni = rustls_pki_types::ServerName::try_from(server_name.to_string()).unwrap();
        let stream = tokio_rustls::TlsConnector::from(tls).connect(sni, tcp).await.unwrap();
        let limits = Limits {
            max_frame_bytes: 1 << 20,
            dead_after: WAIT,
            min_send_rate_bps: 1,
            grace: WAIT,
        };
        Raw { stream, limits }
    }

    /// Sends `msg` and returns the first message that comes back.
    async fn ask(&mut self, msg: Message) -> Message {
        let bytes = codec::encode(&msg).unwrap();
        self.stream.write_all(&bytes).await.unwrap();
        self.stream.flush().await.unwrap();
        loop {
            let f = frame::read_frame(&mut self.stream, &self.limits).await.unwrap();
            if f != KEEPALIVE {
                return codec::decode(&f, 1 << 20).unwrap().0;
            }
        }
    }
}

fn report(site: &str) -> Message {
    Message::Report {
        report: Arc::new(SecurityReport {
            platform: Name::new("windows"),
            site: Name::new(site),
            applied: vec![],
            engine_version: 1,
            signature_version: 0,
            firewall_on: true,
            threats_found: 0,
            last_scan: Time(0),
            rejected_policies: 0,
            inventory: Blob::from_bytes(b"os=test".to_vec()),
        }),
    }
}

fn poll(site: &str) -> Message {
    Message::Poll { have: Revision(0), site: Name::new(site), platform: Name::new("windows") }
}

fn refused_as(msg: &Message, want: ErrorCode) -> bool {
    matches!(msg, Message::Error { code, .. } if *code == want)
}

/// The site a client's record shows at the master, or why there is none.
async fn site_of(master: &Node, name: &str) -> Result<String, String> {
    match client_status(master, name).await {
        OpResponse::Status(v) => v.client.map(|c| c.site).ok_or_else(|| "no record".into()),
        OpResponse::Error(e) => Err(e),
        other => panic!("status: {other:?}"),
    }
}

/// The master serves clients of several sites directly, each only as the
/// site its certificate names: a Tokyo client's poll or report claiming
/// London gets a typed error (`UnknownPeer`, the engine's answer to a
/// driver's admission check) and stores nothing, while the same client
/// claiming Tokyo is served and recorded as Tokyo's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_master_serves_a_client_only_as_its_certificates_site() {
    let test = async {
        let net = Net::new();
        let path = net.master_config(&[]);
        prepend(&path, "sites = [\"tokyo\", \"london\"]\n");
        let master = net.start_master_from(&path).await;
        set(&master, policy("antivirus", &["windows"], &[])).await;
        net.issue(Role::Client, "pc7.tokyo", Some("tokyo"));
        let mut pc = Raw::connect(&net, "pc7.tokyo", master.addr(), "master").await;

        let r = pc.ask(report("london")).await;
        assert!(refused_as(&r, ErrorCode::UnknownPeer), "a report as London: {r:?}");
        let r = pc.ask(poll("london")).await;
        assert!(refused_as(&r, ErrorCode::UnknownPeer), "a poll as London: {r:?}");
        let none = site_of(&master, "pc7.tokyo").await.unwrap_err();
        assert!(none.contains("no local server holds a report"), "{none}");

        assert!(matches!(pc.ask(report("tokyo")).await, Message::ReportAck));
        assert!(matches!(pc.ask(poll("tokyo")).await, Message::PolicyUpdate { .. }));
        assert_eq!(site_of(&master, "pc7.tokyo").await, Ok("tokyo".into()));
    };
    tokio::time::timeout(TEST_BOUND, test).await.expect("bounded in time");
}

/// A local server that also serves a site below it without a server of
/// its own (`sites = ["annex"]`) serves each client only as the site its
/// certificate names: a Tokyo client claiming the annex, and an annex
/// client claiming Tokyo, get a typed error (`UnknownPeer`) and store
/// nothing; a client claiming a site the server does not serve at all gets
/// `WrongSite`; each claiming its own site is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_server_serves_a_client_only_as_its_certificates_site() {
    let test = async {
        let net = Net::new();
        let path = net.master_config(&["tokyo"]);
        prepend(&path, "sites = [\"annex\"]\n");
        let master = net.start_master_from(&path).await;
        let path = net.local_config("tokyo", any_port(), master.addr());
        prepend(&path, "sites = [\"annex\"]\n");
        let tokyo = net.start_local_from(&path).await;
        set(&master, policy("antivirus", &["windows"], &[])).await;
        eventually("tokyo holds revision 1", || async {
            tokyo.revision("antivirus").await == Some(1)
        })
        .await;
        net.issue(Role::Client, "pc8.tokyo", Some("tokyo"));
        net.issue(Role::Client, "pc9.tokyo", Some("tokyo"));
        net.issue(Role::Client, "pc1.annex", Some("annex"));
        let mut pc8 = Raw::connect(&net, "pc8.tokyo", tokyo.addr(), "tokyo").await;
        let mut pc9 = Raw::connect(&net, "pc9.tokyo", tokyo.addr(), "tokyo").await;
        let mut annex = Raw::connect(&net, "pc1.annex", tokyo.addr(), "tokyo").await;

        let refusals = [
            ("pc8.tokyo", "annex", ErrorCode::UnknownPeer),
            ("pc9.tokyo", "annex", ErrorCode::UnknownPeer),
            ("pc1.annex", "tokyo", ErrorCode::UnknownPeer),
            ("pc9.tokyo", "paris", ErrorCode::WrongSite),
        ];
        for (name, claim, want) in refusals {
            let raw = match name {
                "pc8.tokyo" => &mut pc8,
                "pc9.tokyo" => &mut pc9,
                _ => &mut annex,
            };
            let r = raw.ask(report(claim)).await;
            assert!(refused_as(&r, want), "{name}: a report claiming {claim}: {r:?}");
            let r = raw.ask(poll(claim)).await;
            assert!(refused_as(&r, want), "{name}: a poll claiming {claim}: {r:?}");
        }
        // Nothing was stored for a refused claim.
        let none = site_of(&master, "pc9.tokyo").await.unwrap_err();
        assert!(none.contains("no local server holds a report"), "{none}");
        let none = site_of(&master, "pc1.annex").await.unwrap_err();
        assert!(none.contains("no local server holds a report"), "{none}");

        // Each client claiming its own site is served, and recorded so.
        for (raw, claim, name) in
            [(&mut pc8, "tokyo", "pc8.tokyo"), (&mut annex, "annex", "pc1.annex")]
        {
            assert!(matches!(raw.ask(report(claim)).await, Message::ReportAck), "{name}");
            let r = raw.ask(poll(claim)).await;
            assert!(matches!(&r, Message::PolicyUpdate { policies, .. } if policies.len() == 1));
            assert_eq!(site_of(&master, name).await, Ok(claim.to_string()));
        }
    };
    tokio::time::timeout(TEST_BOUND, test).await.expect("bounded in time");
}
