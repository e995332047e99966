//! Whole deployments on loopback TLS: a master, local servers and clients
//! as daemons in this process, each test bounded by `common::WAIT` per
//! wait and by a runtime-wide timeout.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::*;
use tiersync_engine::message::ErrorCode;
use tiersync_engine::{Message, codec};
use tiersync_net::frame::{self, KEEPALIVE, Limits};
use tiersync_net::ids::Role;
use tiersync_net::operator::{self, OpRequest, OpResponse, OpScope};
use tiersync_net::{metrics, pki};
use tokio::sync::Notify;

/// Every test in at most this long.
const TEST_BOUND: Duration = Duration::from_secs(90);

async fn bounded<F: std::future::Future<Output = ()>>(f: F) {
    tokio::time::timeout(TEST_BOUND, f).await.expect("test exceeded its time bound");
}

/// A policy set at the master reaches the clients of two local servers,
/// each with the variant derived for its site.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_set_at_master_reaches_clients_of_two_local_servers() {
    bounded(async {
        let net = Net::new();
        let master = net.start_master(&["tokyo", "london"]).await;
        let tokyo = net.start_local("tokyo", any_port(), master.addr()).await;
        let london = net.start_local("london", any_port(), master.addr()).await;
        let clients = [
            net.start_client("pc1.tokyo", "tokyo", "windows", tokyo.addr()).await,
            net.start_client("pc2.tokyo", "tokyo", "linux", tokyo.addr()).await,
            net.start_client("pc1.london", "london", "windows", london.addr()).await,
            net.start_client("pc2.london", "london", "macos", london.addr()).await,
        ];

        let mut av = policy("antivirus", &["windows", "linux", "macos"], &[("scan", "daily")]);
        av.site_params = Some([("tokyo".into(), Default::default())].into());
        let OpResponse::PolicySet(o) = set(&master, av).await else { panic!("refused") };
        assert_eq!(o.revision, Some(1));

        for (i, c) in clients.iter().enumerate() {
            eventually("every client enforces revision 1", || async {
                c.revision("antivirus").await == Some(1)
            })
            .await;
            // Tokyo has an overlay, so its clients get Tokyo's variant.
            let overlays = c.policies().await["antivirus"].site_overlays.clone();
            assert_eq!(overlays.is_empty(), i >= 2, "client {i}: {overlays:?}");
        }
    })
    .await;
}

/// A policy created at one local server travels up to the master, gets a
/// revision there, and reaches the clients of another local server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_created_at_one_local_reaches_clients_of_another() {
    bounded(async {
        let net = Net::new();
        let master = net.start_master(&["tokyo", "london"]).await;
        let tokyo = net.start_local("tokyo", any_port(), master.addr()).await;
        let london = net.start_local("london", any_port(), master.addr()).await;
        let pc = net.start_client("pc1.london", "london", "windows", london.addr()).await;

        let fw = policy("firewall", &["windows"], &[("default_inbound", "deny")]);
        let OpResponse::PolicySet(o) = set(&tokyo, fw).await else { panic!("refused") };
        assert_eq!(o.revision, None, "a local server proposes; the master assigns");

        eventually("the london client enforces the firewall", || async {
            pc.revision("firewall").await.is_some()
        })
        .await;
        let OpResponse::Policy(detail) =
            master.op(OpRequest::ShowPolicy { id: "firewall".into(), revision: None }).await
        else {
            panic!("show")
        };
        assert_eq!(detail.history[0].2, "tokyo", "the master records where it was made");
    })
    .await;
}

fn sites(resp: &OpResponse) -> (Vec<String>, Vec<String>) {
    let OpResponse::Status(v) = resp else { panic!("status: {resp:?}") };
    (v.sites.iter().map(|s| s.site.clone()).collect(), v.missing.clone())
}

/// Historical status comes from the master's store and still shows a site
/// whose server is down; current status asks the servers now and marks
/// the one that did not answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn current_and_historical_status_with_one_local_down() {
    bounded(async {
        let net = Net::new();
        let master = net.start_master(&["tokyo", "london"]).await;
        let tokyo = net.start_local("tokyo", any_port(), master.addr()).await;
        let london = net.start_local("london", any_port(), master.addr()).await;
        let _a = net.start_client("pc1.tokyo", "tokyo", "windows", tokyo.addr()).await;
        let _b = net.start_client("pc1.london", "london", "windows", london.addr()).await;

        // Both sites upload once their client has reported.
        let status = |current| OpRequest::Status { current, scope: OpScope::All };
        eventually("both clients reported", || async {
            let OpResponse::Status(v) = master.op(status(true)).await else { return false };
            v.sites.iter().filter(|s| s.clients == 1).count() == 2
        })
        .await;
        for l in [&tokyo, &london] {
            assert!(matches!(l.op(OpRequest::SyncNow).await, OpResponse::Done(_)));
        }
        eventually("both uploads stored", || async {
            sites(&master.op(status(false)).await).0 == ["london", "tokyo"]
        })
        .await;

        london.stop().await;
        let (stored, _) = sites(&master.op(status(false)).await);
        assert_eq!(stored, ["london", "tokyo"], "historical status reads the store");
        let (answered, missing) = sites(&master.op(status(true)).await);
        assert_eq!(answered, ["tokyo"]);
        assert_eq!(missing, ["london"], "the site that did not answer is marked");

        // A drill-down to a client goes to the server that holds it.
        let one = OpRequest::Status { current: true, scope: OpScope::Client("pc1.tokyo".into()) };
        let OpResponse::Status(v) = master.op(one).await else { panic!("client status") };
        assert_eq!(v.client.map(|c| c.site), Some("tokyo".into()));

        // One that no answering server holds is an error naming the site
        // that did not answer, not a table of that site.
        let scope = OpScope::Client("pc1.london".into());
        let OpResponse::Error(e) = master.op(OpRequest::Status { current: true, scope }).await
        else {
            panic!("no error")
        };
        assert!(e.contains("`pc1.london`") && e.contains("london did not answer"), "{e}");
        let nosite = OpRequest::Status { current: false, scope: OpScope::Site("paris".into()) };
        let OpResponse::Error(e) = master.op(nosite).await else { panic!("no error") };
        assert_eq!(e, "no site `paris` below this master");
    })
    .await;
}

/// A local server killed with SIGKILL closes its connection, and the
/// master follows connections: `status --current` then answers well
/// before the master's 20 s deadline, with tokyo's figures and london
/// marked as not answering (a row `NO ANSWER` in the table). Before any
/// child connected, and again once london's server is back, it answers at
/// once too; back, london answers again. Without the master following
/// connections, the query with london killed took the whole deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn current_status_with_a_killed_local_answers_before_the_deadline() {
    bounded(async {
        let net = Net::new();
        let path = net.master_config(&["tokyo", "london"]);
        let text = std::fs::read_to_string(&path).unwrap();
        let text = text.replace("status_deadline = \"2s\"", "status_deadline = \"20s\"");
        assert!(text.contains("\"20s\""), "the master's deadline is set to 20 s");
        std::fs::write(&path, text).unwrap();
        let master = net.start_master_from(&path).await;
        let deadline = Duration::from_secs(20);
        let current = || OpRequest::Status { current: true, scope: OpScope::All };
        let timed = || async {
            let asked = tokio::time::Instant::now();
            let resp = master.op(current()).await;
            (resp, asked.elapsed())
        };

        // No child connected yet: both marked at once, not at the deadline.
        let (resp, took) = timed().await;
        assert_eq!(sites(&resp), (vec![], vec!["london".into(), "tokyo".into()]));
        assert!(took < deadline / 4, "answered after {took:?} with no child connected");

        let tokyo = net.start_local("tokyo", any_port(), master.addr()).await;
        let _pc = net.start_client("pc1.tokyo", "tokyo", "windows", tokyo.addr()).await;
        let london_cfg = net.local_config("london", any_port(), master.addr());
        let log = net.dir().join("london.log");
        let (mut london, _) = Proc::spawn("local", &london_cfg, &log);
        let both = || async {
            sites(&master.op(current()).await) == (vec!["london".into(), "tokyo".into()], vec![])
        };
        eventually("both sites answer", both).await;

        london.kill_9();
        let (resp, took) = timed().await;
        assert_eq!(sites(&resp), (vec!["tokyo".into()], vec!["london".into()]));
        assert!(took < deadline / 4, "answered after {took:?} of a {deadline:?} deadline");
        let table = operator::render(&resp);
        assert!(table.lines().any(|l| l.starts_with("london") && l.contains("NO ANSWER")));
        assert!(table.contains("1 site(s) did not answer"), "{table}");

        // Still down: the next query does not wait either.
        let (resp, took) = timed().await;
        assert_eq!(sites(&resp).1, ["london"]);
        assert!(took < deadline / 4, "answered after {took:?} with london still down");

        // Back: once its connection is authenticated, it is asked again.
        let (_london, _) = Proc::spawn("local", &london_cfg, &log);
        eventually("london answers again", both).await;
    })
    .await;
}

/// A client whose certificate comes from another CA is refused at the TLS
/// handshake, and a client of another site is refused by a local server;
/// neither receives a policy while a legitimate client does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificate_from_another_ca_or_site_is_refused() {
    bounded(async {
        let net = Net::new();
        let master = net.start_master(&["tokyo", "london"]).await;
        let tokyo = net.start_local("tokyo", any_port(), master.addr()).await;
        let good = net.start_client("pc1.tokyo", "tokyo", "windows", tokyo.addr()).await;

        // A certificate for a Tokyo client, from a CA of its own. It trusts
        // the real CA, so only the server's check can refuse it.
        let rogue_ca = net.dir().join("rogue");
        tiersync_net::pki::init(&rogue_ca).unwrap();
        tiersync_net::pki::issue(&rogue_ca, Role::Client, "pc9.tokyo", Some("tokyo")).unwrap();
        for ext in ["pem", "key"] {
            let from = rogue_ca.join(format!("pc9.tokyo.{ext}"));
            std::fs::copy(from, net.pki().join(format!("pc9.tokyo.{ext}"))).unwrap();
        }
        let rogue = net.start_client("pc9.tokyo", "tokyo", "windows", tokyo.addr()).await;

        // A genuine certificate, but for a London client.
        let path = net.client_config("pc1.london", "london", "windows", tokyo.addr(), "tokyo");
        let stray = net.start_client_from(&path).await;

        set(&master, policy("antivirus", &["windows"], &[])).await;
        eventually("the legitimate client enforces it", || async {
            good.revision("antivirus").await == Some(1)
        })
        .await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(rogue.revision("antivirus").await, None, "another CA's client got a policy");
        assert_eq!(stray.revision("antivirus").await, None, "another site's client got one");
        assert!(tokyo.metrics.render().contains("tiersync_connected_children 1\n"));
    })
    .await;
}

/// Garbage and an oversized frame each close only their own connection,
/// promptly (well under the dead-peer timeout) and after an `Error` reply
/// saying why; a client connected to the same server keeps its very
/// connection and keeps receiving policies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_or_oversized_frame_closes_only_that_connection() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    bounded(async {
        let net = Net::new();
        let master = net.start_master(&["tokyo"]).await;
        // A long dead-peer timeout, so that a close within it is the bad
        // frame's doing and not silence's.
        let dead_after = Duration::from_secs(30);
        let path = net.local_config_with(
            "tokyo",
            any_port(),
            master.addr(),
            &[("dead_after", "\"30s\""), ("keepalive", "\"10s\"")],
        );
        let tokyo = net.start_local_from(&path).await;
        let pc = net.start_client("pc1.tokyo", "tokyo", "windows", tokyo.addr()).await;
        set(&master, policy("antivirus", &["windows"], &[])).await;
        eventually("revision 1 applied", || async { pc.revision("antivirus").await == Some(1) })
            .await;
        assert_eq!(tokyo.metrics.sessions("pc1.tokyo"), 1);

        // Two connections with a genuine Tokyo client certificate.
        net.issue(Role::Client, "pc2.tokyo", Some("tokyo"));
        let files = tiersync_net::config::TlsFiles {
            ca: net.pki().join("ca.pem"),
            cert: net.pki().join("pc2.tokyo.pem"),
            key: net.pki().join("pc2.tokyo.key"),
        };
        let tls =
            tokio_rustls::TlsConnector::from(tiersync_net::pki::client_config(&files).unwrap());
        // Garbage after a valid header, then a length far over the bound.
        let cases = [
            (&[0u8, 0, 0, 5, 1, 0xff, 0xff, 0xff, 0xff][..], ErrorCode::BadFrame),
            (&[0xff, 0xff, 0xff, 0xff, 1][..], ErrorCode::BadFrame),
        ];
        for (bad, want) in cases {
            let tcp = tokio::net::TcpStream::connect(tokyo.addr()).await.unwrap();
            let name = rustls_pki_types::ServerName::try_from("tokyo").unwrap();
            let mut s = tls.connect(name, tcp).await.unwrap();
            s.write_all(bad).await.unwrap();
            s.flush().await.unwrap();
            let sent = tokio::time::Instant::now();
            let mut rest = Vec::new();
            let read = tokio::time::timeout(dead_after, s.read_to_end(&mut rest)).await;
            assert!(read.is_ok(), "the server did not close the connection");
            let took = sent.elapsed();
            assert!(took < dead_after / 6, "closed after {took:?}, not promptly");

            // What came before the close: an error reply.
            let (reply, _) = tiersync_engine::codec::decode(&rest, 1 << 20)
                .unwrap_or_else(|e| panic!("no decodable reply before the close: {e}"));
            assert!(
                matches!(reply, tiersync_engine::Message::Error { code, .. } if code == want),
                "expected an Error {want:?} reply, got {reply:?}"
            );
        }

        // The other client's connection is the same one and still works.
        let OpResponse::PolicySet(_) = set(&master, policy("antivirus", &["windows"], &[])).await
        else {
            panic!("refused")
        };
        eventually("revision 2 applied", || async { pc.revision("antivirus").await == Some(2) })
            .await;
        assert_eq!(tokyo.metrics.sessions("pc1.tokyo"), 1, "the other client reconnected");
        assert_eq!(pc.metrics.sessions("tokyo"), 1, "the other client reconnected");
    })
    .await;
}

/// `tiersync policy set --platform P` makes the file's parameters that
/// platform's overlay and keeps the other platforms' overlays;
/// `tiersync policy show --revision N` shows the revision asked for, from
/// the master's history, and refuses one that does not exist. The
/// requests are built from parsed command lines and sent as the CLI sends
/// them, over an operator's TLS connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_set_platform_and_show_revision() {
    use clap::Parser;
    use tiersync_net::cli::{PolicyArgs, policy_request};

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        policy: PolicyArgs,
    }
    let request = |line: &str| {
        let args = Cli::try_parse_from(line.split_whitespace()).unwrap();
        policy_request(&args.policy.command).unwrap()
    };

    bounded(async {
        let net = Net::new();
        let master = net.start_master(&["tokyo"]).await;
        let tokyo = net.start_local("tokyo", any_port(), master.addr()).await;
        let linux = net.start_client("pc1.tokyo", "tokyo", "linux", tokyo.addr()).await;
        let op = net.operator(master.addr(), "master");
        let file = |name: &str, text: &str| {
            let path = net.dir().join(name);
            std::fs::write(&path, text).unwrap();
            path.display().to_string()
        };
        let base = file(
            "av.toml",
            "platforms = [\"windows\", \"linux\", \"macos\"]\n[params]\nscan = \"daily\"\n",
        );
        let for_linux = file("linux.toml", "[params]\nheuristics = false\n");
        let for_macos = file("macos.toml", "[params]\nsandbox = true\n");
        let send = |line: String| {
            let op = op.clone();
            let req = request(&line);
            async move { operator::request(&op, &req).await.unwrap() }
        };

        for (line, rev) in [
            (format!("x set antivirus --file {base}"), 1),
            (format!("x set antivirus --file {for_linux} --platform linux"), 2),
            (format!("x set antivirus --file {for_macos} --platform macos"), 3),
        ] {
            let OpResponse::PolicySet(o) = send(line.clone()).await else { panic!("{line}") };
            assert_eq!(o.revision, Some(rev), "{line}");
        }

        // The latest revision has both overlays and the global parameters.
        let OpResponse::Policy(latest) = send("x show antivirus".into()).await else {
            panic!("show")
        };
        assert_eq!(latest.summary.revision, 3);
        assert_eq!(latest.params, r#"{"scan":"daily"}"#);
        assert_eq!(
            latest.platform_params,
            r#"{"linux":{"heuristics":false},"macos":{"sandbox":true}}"#
        );

        // Revision 1, from the master's history, had neither.
        let OpResponse::Policy(first) = send("x show antivirus --revision 1".into()).await else {
            panic!("show --revision 1")
        };
        assert_eq!(first.summary.revision, 1);
        assert_eq!(first.platform_params, "{}");
        assert_eq!(first.history.len(), 3, "the history lists every revision");
        let OpResponse::Policy(second) = send("x show antivirus --revision 2".into()).await else {
            panic!("show --revision 2")
        };
        assert_eq!(second.platform_params, r#"{"linux":{"heuristics":false}}"#);
        // A refusal says why: `--platform` for a policy that does not exist.
        let refused = send(format!("x set firewall --file {for_linux} --platform linux")).await;
        assert!(
            matches!(&refused, OpResponse::Error(e)
                if e.contains("no policy `firewall`") && e.contains("`--platform` only adds")),
            "{refused:?}"
        );
        let missing = send("x show antivirus --revision 9".into()).await;
        assert!(
            matches!(&missing, OpResponse::Error(e) if e.contains("no revision 9")),
            "{missing:?}"
        );

        // The Linux client enforces the last revision.
        eventually("the linux client enforces revision 3", || async {
            linux.revision("antivirus").await == Some(3)
        })
        .await;
    })
    .await;
}

/// A relay between the local server `tokyo` and the master at `upstream`
/// (it holds both certificates) that holds back the first `Policies` reply
/// carrying revision `upto` or later: it tells `held` when it has it, and
/// forwards it (and what follows) once `release` is notified.
async fn holding_relay(
    net: &Net,
    upstream: SocketAddr,
    upto: u64,
    held: Arc<Notify>,
    release: Arc<Notify>,
) -> SocketAddr {
    use tokio::io::AsyncWriteExt as _;
    let acceptor =
        tokio_rustls::TlsAcceptor::from(pki::server_config(&net.files("master")).unwrap());
    let connector =
        tokio_rustls::TlsConnector::from(pki::client_config(&net.files("tokyo")).unwrap());
    let listener = tokio::net::TcpListener::bind(any_port()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = Limits {
        max_frame_bytes: 1 << 20,
        dead_after: Duration::from_secs(60),
        min_send_rate_bps: 1,
        grace: Duration::from_secs(60),
    };
    let holding = Arc::new(AtomicBool::new(true));
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, connector) = (acceptor.clone(), connector.clone());
            let (held, release, holding) = (held.clone(), release.clone(), holding.clone());
            tokio::spawn(async move {
                let Ok(down) = acceptor.accept(tcp).await else { return };
                let Ok(up) = tokio::net::TcpStream::connect(upstream).await else { return };
                let name = rustls_pki_types::ServerName::try_from("master").unwrap();
                let Ok(up) = connector.connect(name, up).await else { return };
                let (mut dr, mut dw) = tokio::io::split(down);
                let (mut ur, mut uw) = tokio::io::split(up);
                let to_master = async {
                    while let Ok(f) = frame::read_frame(&mut dr, &limits).await {
                        if uw.write_all(&f).await.is_err() {
                            return;
                        }
                    }
                };
                let to_local = async {
                    while let Ok(f) = frame::read_frame(&mut ur, &limits).await {
                        let reaches = f != KEEPALIVE
                            && matches!(codec::decode(&f, usize::MAX),
                                Ok((Message::Policies { upto: r, .. }, _)) if r.0 >= upto);
                        if reaches && holding.swap(false, Ordering::SeqCst) {
                            held.notify_one();
                            release.notified().await;
                        }
                        if dw.write_all(&f).await.is_err() {
                            return;
                        }
                    }
                };
                tokio::select! { _ = to_master => {}, _ = to_local => {} }
            });
        }
    });
    addr
}

/// SIGTERM with an exchange in flight, a local server's fetch of a new
/// revision from the master, held on its way back by a relay, while a
/// client is connected and polling: the server stops accepting new
/// connections at once, does not exit while the fetch is unanswered (its
/// grace is 30 s), and once the answer arrives stores it, exits 0 well
/// before the grace, and leaves a store that reopens holding the new
/// revision and the client's report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_the_exchange_in_flight_flushes_and_exits_0() {
    bounded(async {
        let net = Net::new();
        let master = net.start_master(&["tokyo"]).await;
        net.issue(Role::Local, "tokyo", None);
        let (held, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let relay = holding_relay(&net, master.addr(), 2, held.clone(), release.clone()).await;
        // A long dead-peer timeout, so that the held reply's silence does
        // not close the session to the master.
        let grace = &[("shutdown_grace", "\"30s\""), ("dead_after", "\"30s\"")];
        let path = net.local_config_with("tokyo", any_port(), relay, grace);
        let log = net.dir().join("tokyo.log");
        let (mut local, addr) = Proc::spawn("local", &path, &log);
        let addr = addr.expect("a local server listens");
        let pc = net.start_client("pc1.tokyo", "tokyo", "windows", addr).await;
        set(&master, policy("antivirus", &["windows"], &[])).await;
        eventually("revision 1 applied", || async { pc.revision("antivirus").await == Some(1) })
            .await;

        // Revision 2: the answer carrying it to Tokyo waits at the relay.
        set(&master, policy("antivirus", &["windows"], &[("v", "2")])).await;
        tokio::time::timeout(WAIT, held.notified()).await.expect("tokyo fetches revision 2");
        local.send_term();
        eventually("new connections are refused", || async {
            tokio::net::TcpStream::connect(addr).await.is_err()
        })
        .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(local.exited().is_none(), "it exited with its fetch unanswered");

        let released = tokio::time::Instant::now();
        release.notify_one();
        let status = loop {
            if let Some(status) = local.exited() {
                break status;
            }
            assert!(released.elapsed() < Duration::from_secs(25), "it did not exit");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(status.success(), "exit status {status:?}");
        let took = released.elapsed();
        assert!(took < Duration::from_secs(10), "took {took:?}: it waited out its grace");
        let text = std::fs::read_to_string(&log).unwrap();
        let stopping = text
            .lines()
            .find(|l| l.contains("stopping: no new work"))
            .unwrap_or_else(|| panic!("no stop in the log: {text}"));
        let in_flight = stopping
            .split("in_flight=")
            .nth(1)
            .and_then(|r| r.split_whitespace().next().and_then(|n| n.parse::<u32>().ok()));
        assert!(in_flight.is_some_and(|n| n >= 1), "nothing in flight at the stop: {stopping}");
        assert!(text.contains("stopping: no exchange in flight"), "{text}");
        assert!(!text.contains("unanswered after the grace"), "{text}");

        // Flushed: the answer that arrived while stopping is in the store.
        let store =
            tiersync_net::store::Store::open(&net.dir().join("data/tokyo"), Role::Local, "tokyo")
                .expect("the store reopens");
        let (state, names) = store.local_load().expect("and reads");
        assert_eq!(state.upto.0, 2, "the revision fetched while stopping was not stored");
        assert_eq!(state.policies.iter().map(|h| h.revision().0).collect::<Vec<_>>(), [2]);
        assert_eq!(state.clients.len(), 1);
        assert_eq!(names.values().next().map(String::as_str), Some("pc1.tokyo"));
    })
    .await;
}

/// One scrape of a Prometheus text endpoint over HTTP: every sample by its
/// series (name and labels as written), after checking the reply's status
/// and type and that each sample's metric is declared by a `# TYPE` line.
async fn scrape(addr: SocketAddr) -> BTreeMap<String, f64> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n").await.unwrap();
    let mut reply = String::new();
    tokio::time::timeout(WAIT, s.read_to_string(&mut reply)).await.unwrap().unwrap();
    let (head, body) = reply.split_once("\r\n\r\n").expect("an HTTP reply");
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(head.contains("content-type: text/plain; version=0.0.4"), "{head}");
    let mut types = BTreeMap::new();
    let mut samples = BTreeMap::new();
    for line in body.lines() {
        if let Some(decl) = line.strip_prefix("# TYPE ") {
            let (name, kind) = decl.split_once(' ').expect("# TYPE name kind");
            types.insert(name.to_string(), kind.to_string());
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("a sample: series value");
        let name = series.split('{').next().unwrap();
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s).filter(|b| types.get(*b).is_some_and(|k| k == "histogram"))
            })
            .unwrap_or(name);
        assert!(types.contains_key(base), "no # TYPE for {name}");
        samples.insert(series.to_string(), value.parse::<f64>().expect("a numeric value"));
    }
    samples
}

/// Wall-clock seconds since the Unix epoch: the daemons stamp their last
/// synchronisation with the wall clock, so the test brackets it with one.
#[allow(clippy::disallowed_methods)] // A test of real daemons reads the real clock.
fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The metrics endpoint, served as `--metrics` serves it and scraped over
/// HTTP on loopback, shows the documented series with values from the
/// run: bytes and messages per peer and kind, connected children, the
/// local server's sync durations, the master's last sync time per child,
/// and the policy revision per node (each node's own and what its children
/// and clients last said they hold).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_endpoint_shows_the_documented_series() {
    bounded(async {
        let net = Net::new();
        let began = unix_now();
        let master = net.start_master(&["tokyo"]).await;
        let tokyo = net.start_local("tokyo", any_port(), master.addr()).await;
        let pc = net.start_client("pc1.tokyo", "tokyo", "windows", tokyo.addr()).await;
        let at_master = metrics::spawn(any_port(), master.metrics.clone()).await.unwrap();
        let at_tokyo = metrics::spawn(any_port(), tokyo.metrics.clone()).await.unwrap();
        set(&master, policy("antivirus", &["windows"], &[])).await;
        eventually("revision 1 applied", || async { pc.revision("antivirus").await == Some(1) })
            .await;
        assert!(matches!(tokyo.op(OpRequest::SyncNow).await, OpResponse::Done(_)));

        let want_master = [
            ("tiersync_bytes_total{peer=\"tokyo\",direction=\"in\",kind=\"sync\"}", None),
            ("tiersync_messages_total{peer=\"tokyo\",direction=\"in\",kind=\"sync\"}", None),
            ("tiersync_bytes_total{peer=\"tokyo\",direction=\"out\",kind=\"policies\"}", None),
            ("tiersync_messages_total{peer=\"tokyo\",direction=\"out\",kind=\"policies\"}", None),
            ("tiersync_connected_children", Some(1.0)),
            ("tiersync_policy_revision{node=\"master\"}", Some(1.0)),
            ("tiersync_policy_revision{node=\"tokyo\"}", Some(1.0)),
            ("tiersync_last_sync_timestamp_seconds{child=\"tokyo\"}", None),
        ];
        let want_tokyo = [
            ("tiersync_bytes_total{peer=\"pc1.tokyo\",direction=\"in\",kind=\"report\"}", None),
            ("tiersync_messages_total{peer=\"pc1.tokyo\",direction=\"in\",kind=\"poll\"}", None),
            ("tiersync_bytes_total{peer=\"master\",direction=\"out\",kind=\"sync\"}", None),
            ("tiersync_messages_total{peer=\"master\",direction=\"out\",kind=\"sync\"}", None),
            ("tiersync_connected_children", Some(1.0)),
            ("tiersync_sync_duration_seconds_count", None),
            ("tiersync_policy_revision{node=\"tokyo\"}", Some(1.0)),
            ("tiersync_client_policy_revision{client=\"pc1.tokyo\"}", Some(1.0)),
            ("tiersync_client_last_poll_timestamp_seconds{client=\"pc1.tokyo\"}", None),
        ];
        // Each series present, at the value given or above zero.
        let shows = |got: &BTreeMap<String, f64>, want: &[(&str, Option<f64>)]| {
            want.iter().all(|(series, v)| {
                got.get(*series).is_some_and(|g| v.map_or(*g > 0.0, |v| *g == v))
            })
        };
        eventually("both endpoints show every series", || async {
            shows(&scrape(at_master).await, &want_master)
                && shows(&scrape(at_tokyo).await, &want_tokyo)
        })
        .await;

        let (m, t) = (scrape(at_master).await, scrape(at_tokyo).await);
        let now = unix_now();
        let last_sync = m["tiersync_last_sync_timestamp_seconds{child=\"tokyo\"}"];
        assert!(last_sync >= began - 1.0 && last_sync <= now + 1.0, "{last_sync} not in the run");
        let count = t["tiersync_sync_duration_seconds_count"];
        assert_eq!(t["tiersync_sync_duration_seconds_bucket{le=\"+Inf\"}"], count);
        let sum = t["tiersync_sync_duration_seconds_sum"];
        assert!(sum >= 0.0 && sum < 30.0 * count, "sync durations sum to {sum} s");
        assert_eq!(m["tiersync_open_sessions"], 1.0);
    })
    .await;
}

/// A client that keeps asking but never reads is cut off once what is
/// queued for it passes `send_queue_bytes`, at once rather than when its
/// blocked write times out; the server's other client is unaffected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_does_not_read_is_cut_off_at_its_queue_bound() {
    use tokio::io::AsyncWriteExt as _;

    bounded(async {
        let net = Net::new();
        let master = net.start_master(&["tokyo"]).await;
        // A write may block for 30 s and more (the handshake timeout is the
        // grace of every write), and a silent peer is dead after 30 s; the
        // queue bound must act well before either.
        let path = net.local_config_with(
            "tokyo",
            any_port(),
            master.addr(),
            &[
                ("send_queue_bytes", "\"2MiB\""),
                ("handshake_timeout", "\"30s\""),
                ("dead_after", "\"30s\""),
                ("keepalive", "\"10s\""),
            ],
        );
        let tokyo = net.start_local_from(&path).await;
        let pc = net.start_client("pc1.tokyo", "tokyo", "windows", tokyo.addr()).await;
        let mut big = policy("antivirus", &["windows"], &[]);
        big.content = Some(tiersync_engine::Blob::from_bytes(vec![7; 32 << 10]));
        set(&master, big).await;
        eventually("revision 1 applied", || async { pc.revision("antivirus").await == Some(1) })
            .await;

        // A genuine Tokyo client that polls from revision 0 over and over,
        // each answer 32 KiB, and reads nothing: the socket buffers fill
        // (some megabytes), the server's write blocks, and the queue
        // behind it grows to the bound.
        net.issue(Role::Client, "pc2.tokyo", Some("tokyo"));
        let files = tiersync_net::config::TlsFiles {
            ca: net.pki().join("ca.pem"),
            cert: net.pki().join("pc2.tokyo.pem"),
            key: net.pki().join("pc2.tokyo.key"),
        };
        let tls =
            tokio_rustls::TlsConnector::from(tiersync_net::pki::client_config(&files).unwrap());
        // A small receive buffer, so that the server's writes block after
        // a few megabytes rather than the tens a loopback socket grows to.
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.set_recv_buffer_size(8 << 10).unwrap();
        let tcp = sock.connect(tokyo.addr()).await.unwrap();
        let name = rustls_pki_types::ServerName::try_from("tokyo").unwrap();
        let mut s = tls.connect(name, tcp).await.unwrap();
        let poll = tiersync_engine::codec::encode(&tiersync_engine::Message::Poll {
            have: tiersync_engine::Revision(0),
            site: tiersync_engine::Name::new("tokyo"),
            platform: tiersync_engine::Name::new("windows"),
        })
        .unwrap();
        eventually("three sessions open", || async { tokyo.metrics.open_sessions() == 3 }).await;
        let started = tokio::time::Instant::now();
        // Paced, so that the writer keeps up until the buffers are full and
        // only then the queue grows.
        for _ in 0..3000 {
            if s.write_all(&poll).await.is_err() || s.flush().await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
            if tokyo.metrics.open_sessions() < 3 {
                break;
            }
        }

        // The server ends the session while the peer still reads nothing
        // and its write is blocked: three sessions (the master's, pc1's,
        // pc2's) become two within seconds, not after the write's 30 s.
        let mut open = tokyo.metrics.open_sessions();
        for _ in 0..80 {
            if open == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            open = tokyo.metrics.open_sessions();
        }
        let took = started.elapsed();
        assert_eq!(
            open, 2,
            "the session of a peer that does not read is still open after {took:?}"
        );
        drop(s);

        // The other client still gets policies.
        set(&master, policy("antivirus", &["windows"], &[])).await;
        eventually("revision 2 applied", || async { pc.revision("antivirus").await == Some(2) })
            .await;
        assert_eq!(tokyo.metrics.sessions("pc1.tokyo"), 1);
    })
    .await;
}

/// Keepalives hold idle sessions open, and a silent peer is cut off: with
/// `keepalive = 1s` and `dead_after = 3s`, a local server and a client
/// that have nothing to say for three times `dead_after` keep their very
/// sessions (to the master, to the local server) because each side sends
/// keepalives; a peer that completes the TLS handshake and then sends
/// nothing is closed by the server after `dead_after` (not before, and not
/// much later), having received only keepalives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalives_hold_idle_sessions_and_a_silent_peer_is_cut_off() {
    use tokio::io::AsyncReadExt as _;

    bounded(async {
        let net = Net::new();
        let master = net.start_master(&["tokyo"]).await;
        // No scheduled exchange for an hour: the sessions are idle.
        let path = net.local_config("tokyo", any_port(), master.addr());
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace("policy_check = \"300ms\"", "policy_check = \"1h\""))
            .unwrap();
        let tokyo = net.start_local_from(&path).await;
        let path = net.client_config("pc1.tokyo", "tokyo", "windows", tokyo.addr(), "tokyo");
        let text = std::fs::read_to_string(&path).unwrap();
        let text = text.replace("\"300ms\"", "\"1h\"");
        std::fs::write(&path, text).unwrap();
        let pc = net.start_client_from(&path).await;
        eventually("both sessions up", || async {
            master.metrics.sessions("tokyo") == 1 && tokyo.metrics.sessions("pc1.tokyo") == 1
        })
        .await;

        // A genuine Tokyo client that says nothing after its handshake.
        net.issue(Role::Client, "pc2.tokyo", Some("tokyo"));
        let files = tiersync_net::config::TlsFiles {
            ca: net.pki().join("ca.pem"),
            cert: net.pki().join("pc2.tokyo.pem"),
            key: net.pki().join("pc2.tokyo.key"),
        };
        let tls =
            tokio_rustls::TlsConnector::from(tiersync_net::pki::client_config(&files).unwrap());
        let tcp = tokio::net::TcpStream::connect(tokyo.addr()).await.unwrap();
        let name = rustls_pki_types::ServerName::try_from("tokyo").unwrap();
        let mut silent = tls.connect(name, tcp).await.unwrap();
        let connected = tokio::time::Instant::now();
        let mut got = Vec::new();
        let read = tokio::time::timeout(WAIT, silent.read_to_end(&mut got)).await;
        let took = connected.elapsed();
        assert!(read.is_ok(), "the silent peer was never cut off");
        let dead_after = Duration::from_secs(3);
        assert!(took >= dead_after - Duration::from_millis(200), "cut off after only {took:?}");
        assert!(took < dead_after * 2, "cut off only after {took:?}");
        assert!(!got.is_empty() && got.chunks(5).all(|c| c == [0, 0, 0, 1, 0]), "{got:?}");

        // Idle well past `dead_after`: still the first sessions.
        tokio::time::sleep(dead_after * 3 - took.min(dead_after * 3)).await;
        assert_eq!(master.metrics.sessions("tokyo"), 1, "tokyo reconnected to the master");
        assert_eq!(tokyo.metrics.sessions("master"), 1, "tokyo reconnected to the master");
        assert_eq!(tokyo.metrics.sessions("pc1.tokyo"), 1, "the client reconnected");
        assert_eq!(pc.metrics.sessions("tokyo"), 1, "the client reconnected");
        let keepalives = |m: &tiersync_net::metrics::Metrics| {
            m.all_frames().iter().filter(|f| f.2 == "keepalive").map(|f| f.4).sum::<u64>()
        };
        assert!(keepalives(&tokyo.metrics) >= 4, "tokyo sent and received few keepalives");
        assert!(keepalives(&pc.metrics) >= 4, "the client sent and received few keepalives");
    })
    .await;
}
