//! Kill -9 and restart: a local server, the master and a client, each as a
//! separate process killed with SIGKILL at random moments while policies
//! change and statistics travel. Every child process is killed if a test
//! panics (`common::Proc` kills on drop).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use rand::{RngExt as _, SeedableRng as _};
use tiersync_engine::stats::SiteStats;
use tiersync_engine::{Message, Time, codec};
use tiersync_net::config::TlsFiles;
use tiersync_net::frame::{self, KEEPALIVE, Limits};
use tiersync_net::ids::{Role, node_id};
use tiersync_net::operator::{self, OpRequest, OpResponse, OpScope, time_text};
use tiersync_net::pki;
use tiersync_net::store::Store;
use tokio::io::AsyncWriteExt as _;

/// Each test in at most this long.
const TEST_BOUND: Duration = Duration::from_secs(150);

/// Changes `antivirus` at `node` every 150 ms while `on` holds, and
/// returns the revisions the master acknowledged (assigned and answered).
async fn keep_changing(
    master: &tiersync_net::config::OperatorConfigFile,
    on: &AtomicBool,
) -> Vec<u64> {
    let mut acked = Vec::new();
    let mut n = 0u64;
    while on.load(Ordering::SeqCst) {
        n += 1;
        let v = format!("v{n}");
        let change = policy("antivirus", &["windows", "linux"], &[("v", &v)]);
        let req = OpRequest::SetPolicy { change, platform: None };
        // While the master is down the request fails; nothing was acknowledged.
        if let Ok(OpResponse::PolicySet(o)) = operator::request(master, &req).await {
            acked.extend(o.revision);
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    acked
}

/// Every (policy, revision) a client applied, exactly once each.
fn applied_once(node: &Node, what: &str) {
    for ((policy, rev), n) in node.metrics.applied_revisions() {
        assert_eq!(n, 1, "{what} applied {policy}@{rev} {n} times");
    }
}

/// Kill -9 of a local server during its synchronisations loses nothing it
/// acknowledged: after each kill its store holds at least the revision its
/// clients had already applied from it (it served only what it had
/// committed) and the report of every client it had acknowledged, each
/// under that client's id and name with that client's fields (site,
/// platform, engine version, inventory), at least as new as the one the
/// server showed the master just before the kill and never newer than
/// what the client holds or older than the last kill's; after
/// each restart it resumes syncing, every client converges on the master's
/// last revision having applied each revision exactly once, and a client
/// restarted from its own store applies nothing again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_a_local_server_during_syncs_loses_nothing() {
    let seed = 20_261_203;
    eprintln!("kill timings from seed {seed}");
    let mut rng = rand_pcg::Pcg32::seed_from_u64(seed);
    let test = async {
        let net = Net::new();
        let master = net.start_master(&["tokyo"]).await;
        let config = net.local_config("tokyo", any_port(), master.addr());
        let log = net.dir().join("tokyo.log");
        let (mut child, addr) = Proc::spawn("local", &config, &log);
        let addr = addr.expect("a local server listens");
        // Restarts keep the port the clients know.
        let config = net.local_config("tokyo", addr, master.addr());
        // Each client reports its own engine version, so that a record
        // stored under the wrong client, or a stale one, shows.
        let specs = [
            ("pc1.tokyo", "windows", 11),
            ("pc2.tokyo", "windows", 12),
            ("pc3.tokyo", "linux", 13),
        ];
        let mut started = Vec::new();
        for (name, platform, version) in specs {
            let path = net.client_config(name, "tokyo", platform, addr, "tokyo");
            prepend(&path, &format!("engine_version = {version}\n"));
            started.push(net.start_client_from(&path).await);
        }
        let Ok::<[Node; 3], _>(clients) = started.try_into() else { panic!("three clients") };
        let to_local = net.operator(addr, "tokyo");
        let inventory = format!("os={}", std::env::consts::OS);
        let mut last_seen: BTreeMap<&str, Time> = BTreeMap::new();

        // The master changes the policy every 150 ms throughout.
        let changing = Arc::new(AtomicBool::new(true));
        let writer = {
            let (changing, master) = (changing.clone(), &master);
            async move {
                let mut n = 0u64;
                while changing.load(Ordering::SeqCst) {
                    n += 1;
                    let v = format!("v{n}");
                    set(master, policy("antivirus", &["windows", "linux"], &[("v", &v)])).await;
                    tokio::time::sleep(Duration::from_millis(150)).await;
                }
            }
        };
        let killer = async {
            for round in 0..5 {
                tokio::time::sleep(Duration::from_millis(rng.random_range(400..900))).await;
                let mut applied = 0;
                for c in &clients {
                    applied = applied.max(c.revision("antivirus").await.unwrap_or(0));
                }
                // What the server holds of each client now, as the master's
                // drill-down shows it: its acknowledged latest report.
                let mut shown = BTreeMap::new();
                for (name, _, _) in specs {
                    let one =
                        OpRequest::Status { current: true, scope: OpScope::Client(name.into()) };
                    if let OpResponse::Status(v) = master.op(one).await
                        && let Some(row) = v.client
                    {
                        shown.insert(name, row);
                    }
                }

                // Start a synchronisation and kill the server in the middle.
                let _ = operator::request(&to_local, &OpRequest::SyncNow).await;
                tokio::time::sleep(Duration::from_millis(rng.random_range(0..20))).await;
                child.kill_9();

                let store = Store::open(&net.dir().join("data/tokyo"), Role::Local, "tokyo")
                    .expect("the store opens after a kill -9");
                let (state, names) = store.local_load().unwrap();
                assert!(
                    state.upto.0 >= applied,
                    "round {round}: store at r{} but clients had applied r{applied}",
                    state.upto.0
                );
                if round > 0 {
                    assert_eq!(
                        state.clients.len(),
                        3,
                        "round {round}: an acknowledged report lost"
                    );
                }
                // Each stored record is its client's, whole, and at least
                // as new as what the server acknowledged and showed.
                for ((name, platform, version), client) in specs.iter().zip(&clients) {
                    let id = node_id(name);
                    let Some((_, rec)) = state.clients.iter().find(|(i, _)| *i == id) else {
                        assert!(round == 0 && !shown.contains_key(name), "{name}'s record lost");
                        continue;
                    };
                    let what = format!("round {round}, {name}");
                    assert_eq!(names.get(&id).map(String::as_str), Some(*name), "{what}");
                    let r = &rec.report;
                    assert_eq!(
                        (r.site.as_str(), r.platform.as_str(), r.engine_version),
                        ("tokyo", *platform, *version),
                        "{what}: another client's or a damaged record"
                    );
                    assert_eq!(r.inventory.as_bytes(), inventory.as_bytes(), "{what}");
                    assert_eq!((r.threats_found, r.rejected_policies), (0, 0), "{what}");
                    let stored = r.applied.iter().find(|(p, _)| p.as_str() == "antivirus");
                    let stored = stored.map_or(0, |(_, rev)| rev.0);
                    let held = client.revision("antivirus").await.unwrap_or(0);
                    assert!(stored <= held, "{what}: stored r{stored}, the client holds r{held}");
                    if let Some(row) = shown.get(name) {
                        let before = row.applied.iter().find(|(p, _)| p == "antivirus");
                        let before = before.map_or(0, |a| a.1);
                        assert!(
                            stored >= before,
                            "{what}: stored r{stored}, acknowledged r{before}"
                        );
                        assert!(time_text(rec.seen) >= row.seen, "{what}: an older report stored");
                    }
                    let prev = last_seen.insert(name, rec.seen);
                    assert!(
                        prev.is_none_or(|p| p <= rec.seen),
                        "{what}: a stored report went back"
                    );
                }
                drop(store);
                (child, _) = Proc::spawn("local", &config, &log);
            }
            changing.store(false, Ordering::SeqCst);
        };
        tokio::join!(writer, killer);

        // It resumes: every client converges on the master's last revision,
        // having applied each revision it received exactly once.
        let OpResponse::Policies(list) = master.op(OpRequest::ListPolicies).await else {
            panic!("list")
        };
        let last = list[0].revision;
        for (i, c) in clients.iter().enumerate() {
            eventually("clients converge after the restarts", || async {
                c.revision("antivirus").await == Some(last)
            })
            .await;
            applied_once(c, &format!("client {i}"));
            let applied = c.metrics.applied_revisions();
            assert!(applied.contains_key(&("antivirus".to_string(), last)));
        }

        // A client restarted from its store applies nothing again.
        let path = net.dir().join("pc1.tokyo.toml");
        let [first, ..] = clients;
        first.stop().await;
        let again = net.start_client_from(&path).await;
        assert_eq!(again.revision("antivirus").await, Some(last));
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(again.metrics.applied_total(), 0, "a restarted client re-applied a policy");
    };
    tokio::time::timeout(TEST_BOUND, test).await.expect("bounded in time");
}

/// What a recording proxy saw between a local server and the master.
#[derive(Default)]
struct Seen {
    /// Statistics uploads sent up, by their sequence number.
    uploads: BTreeMap<u64, Vec<SiteStats>>,
    /// Upload sequence numbers the master acknowledged.
    acked: BTreeSet<u64>,
}

fn files(net: &Net, name: &str) -> TlsFiles {
    net.files(name)
}

/// A relay between the local server `tokyo` and the master at `upstream`
/// (it holds both certificates), recording every statistics upload and
/// every acknowledgement of one. A master that goes away closes the local
/// server's side too; the local server reconnects, and the relay dials the
/// master again.
async fn recording_proxy(net: &Net, upstream: SocketAddr, seen: Arc<Mutex<Seen>>) -> SocketAddr {
    let acceptor =
        tokio_rustls::TlsAcceptor::from(pki::server_config(&files(net, "master")).unwrap());
    let connector =
        tokio_rustls::TlsConnector::from(pki::client_config(&files(net, "tokyo")).unwrap());
    let listener = tokio::net::TcpListener::bind(any_port()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = Limits {
        max_frame_bytes: 1 << 20,
        dead_after: Duration::from_secs(60),
        min_send_rate_bps: 1,
        grace: Duration::from_secs(60),
    };
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, connector, seen) = (acceptor.clone(), connector.clone(), seen.clone());
            tokio::spawn(async move {
                let Ok(down) = acceptor.accept(tcp).await else { return };
                let Ok(up) = tokio::net::TcpStream::connect(upstream).await else { return };
                let name = rustls_pki_types::ServerName::try_from("master").unwrap();
                let Ok(up) = connector.connect(name, up).await else { return };
                let (mut dr, mut dw) = tokio::io::split(down);
                let (mut ur, mut uw) = tokio::io::split(up);
                let to_master = async {
                    while let Ok(f) = frame::read_frame(&mut dr, &limits).await {
                        if let Ok((Message::Sync { stats: Some(u), .. }, _)) =
                            codec::decode(&f, usize::MAX)
                        {
                            seen.lock().unwrap().uploads.insert(u.seq, u.sites);
                        }
                        if uw.write_all(&f).await.is_err() {
                            return;
                        }
                    }
                };
                let to_local = async {
                    while let Ok(f) = frame::read_frame(&mut ur, &limits).await {
                        if f != KEEPALIVE
                            && let Ok((Message::Policies { stats_acked: Some(seq), .. }, _)) =
                                codec::decode(&f, usize::MAX)
                        {
                            seen.lock().unwrap().acked.insert(seq);
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

/// Kill -9 of the master while policies are set and statistics uploaded
/// loses nothing it acknowledged: after each kill its store holds every
/// revision an operator was told it assigned and every statistics upload
/// it acknowledged to the local server; after each restart it serves on,
/// and the clients converge on its last revision having applied each
/// revision exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_master_loses_no_revision_or_upload() {
    let seed = 20_261_204;
    eprintln!("kill timings from seed {seed}");
    let mut rng = rand_pcg::Pcg32::seed_from_u64(seed);
    let test = async {
        let net = Net::new();
        let log = net.dir().join("master.log");
        let config = net.master_config(&["tokyo"]);
        let (mut master, addr) = Proc::spawn("master", &config, &log);
        let addr = addr.expect("the master listens");
        let config = net.master_config_at(&["tokyo"], addr);
        let seen = Arc::new(Mutex::new(Seen::default()));
        net.issue(Role::Local, "tokyo", None);
        let relay = recording_proxy(&net, addr, seen.clone()).await;
        let tokyo = net.start_local("tokyo", any_port(), relay).await;
        let clients = [
            net.start_client("pc1.tokyo", "tokyo", "windows", tokyo.addr()).await,
            net.start_client("pc2.tokyo", "tokyo", "linux", tokyo.addr()).await,
        ];
        let to_master = net.operator(addr, "master");

        // Policies change every 150 ms; the local server uploads its
        // statistics every 100 ms.
        let changing = Arc::new(AtomicBool::new(true));
        let writer = keep_changing(&to_master, &changing);
        let syncing = async {
            while changing.load(Ordering::SeqCst) {
                let _ = tokyo.op(OpRequest::SyncNow).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        let killer = async {
            let mut acked_by_round = Vec::new();
            for round in 0..4 {
                tokio::time::sleep(Duration::from_millis(rng.random_range(500..1000))).await;
                master.kill_9();
                let (uploads, acked) = {
                    let s = seen.lock().unwrap();
                    (s.uploads.clone(), s.acked.clone())
                };
                acked_by_round.push(acked.len());

                // Every acknowledged upload is in the global data store.
                let store = Store::open(&net.dir().join("data/master"), Role::Master, "master")
                    .expect("the store opens after a kill -9");
                let state = store.master_load().unwrap();
                for seq in &acked {
                    let sites = &uploads[seq];
                    assert!(
                        state.history.iter().any(|u| &u.sites == sites),
                        "round {round}: acknowledged upload {seq} lost"
                    );
                }
                drop(store);
                (master, _) = Proc::spawn("master", &config, &log);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            changing.store(false, Ordering::SeqCst);
            acked_by_round
        };
        let (acked_revisions, (), acked_by_round) = tokio::join!(writer, syncing, killer);
        assert!(acked_by_round.iter().any(|n| *n > 0), "no upload was ever acknowledged");
        assert!(acked_revisions.len() > 4, "too few revisions acknowledged to test");

        // Every revision an operator was told about is stored; none twice.
        master.kill_9();
        let store = Store::open(&net.dir().join("data/master"), Role::Master, "master").unwrap();
        let state = store.master_load().unwrap();
        let stored: Vec<u64> = state.revisions.iter().map(|h| h.revision().0).collect();
        let distinct: BTreeSet<u64> = stored.iter().copied().collect();
        assert_eq!(distinct.len(), stored.len(), "a revision stored twice");
        for r in &acked_revisions {
            assert!(distinct.contains(r), "acknowledged revision {r} lost");
        }
        drop(store);
        (master, _) = Proc::spawn("master", &config, &log);

        // It resumes: the clients converge on its last revision.
        let OpResponse::Policies(list) =
            operator::request(&to_master, &OpRequest::ListPolicies).await.unwrap()
        else {
            panic!("list")
        };
        let last = list[0].revision;
        assert_eq!(Some(&last), distinct.iter().max(), "the master serves its last revision");
        for (i, c) in clients.iter().enumerate() {
            eventually("clients converge after the restarts", || async {
                c.revision("antivirus").await == Some(last)
            })
            .await;
            applied_once(c, &format!("client {i}"));
        }
        master.kill_9();
    };
    tokio::time::timeout(TEST_BOUND, test).await.expect("bounded in time");
}

/// The (policy, revision) pairs a client's log says it applied.
fn applied_in_log(log: &std::path::Path) -> Vec<(String, u64)> {
    let text = std::fs::read_to_string(log).unwrap();
    text.lines()
        .filter(|l| l.contains("policy applied"))
        .filter_map(|l| {
            let field = |k: &str| {
                let at = l.find(&format!("{k}="))? + k.len() + 1;
                l[at..].split_whitespace().next().map(str::to_string)
            };
            Some((field("policy")?, field("revision")?.parse().ok()?))
        })
        .collect()
}

/// Kill -9 of a client while policies change loses nothing it reported:
/// after each kill its store holds at least the revision its server last
/// acknowledged a report of; after each restart it resumes from its store,
/// applies every revision exactly once across all its lives, and ends on
/// the master's last revision.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_a_client_applies_nothing_twice() {
    let seed = 20_261_205;
    eprintln!("kill timings from seed {seed}");
    let mut rng = rand_pcg::Pcg32::seed_from_u64(seed);
    let test = async {
        let net = Net::new();
        let master = net.start_master(&["tokyo"]).await;
        let tokyo = net.start_local("tokyo", any_port(), master.addr()).await;
        let config = net.client_config("pc1.tokyo", "tokyo", "windows", tokyo.addr(), "tokyo");
        let log = net.dir().join("pc1.tokyo.log");
        let (mut client, _) = Proc::spawn("client", &config, &log);
        let to_master = net.operator(master.addr(), "master");

        let changing = Arc::new(AtomicBool::new(true));
        let writer = keep_changing(&to_master, &changing);
        let killer = async {
            for round in 0..5 {
                tokio::time::sleep(Duration::from_millis(rng.random_range(400..900))).await;
                client.kill_9();

                // What the server holds of the client's last acknowledged
                // report, against what the client's store holds.
                let one =
                    OpRequest::Status { current: true, scope: OpScope::Client("pc1.tokyo".into()) };
                let reported = match master.op(one).await {
                    OpResponse::Status(v) => v
                        .client
                        .and_then(|c| c.applied.iter().find(|(p, _)| p == "antivirus").map(|a| a.1))
                        .unwrap_or(0),
                    _ => 0,
                };
                let store =
                    Store::open(&net.dir().join("data/pc1.tokyo"), Role::Client, "pc1.tokyo")
                        .expect("the store opens after a kill -9");
                let state = store.client_load().unwrap();
                let held = state.applied.iter().find(|e| e.id.as_str() == "antivirus");
                let held = held.map_or(0, |e| e.revision.0);
                assert!(
                    held >= reported,
                    "round {round}: the client reported r{reported} but its store holds r{held}"
                );
                drop(store);
                (client, _) = Proc::spawn("client", &config, &log);
            }
            changing.store(false, Ordering::SeqCst);
        };
        tokio::join!(writer, killer);

        // It ends on the master's last revision, and no revision was
        // applied twice over all its lives.
        let OpResponse::Policies(list) = master.op(OpRequest::ListPolicies).await else {
            panic!("list")
        };
        let last = list[0].revision;
        eventually("the client applies the last revision", || async {
            applied_in_log(&log).iter().any(|(p, r)| p == "antivirus" && *r == last)
        })
        .await;
        let applied = applied_in_log(&log);
        let distinct: BTreeSet<&(String, u64)> = applied.iter().collect();
        assert_eq!(distinct.len(), applied.len(), "a revision applied twice: {applied:?}");
        assert!(applied.len() >= 2, "the client applied too little to test: {applied:?}");
        client.kill_9();
    };
    tokio::time::timeout(TEST_BOUND, test).await.expect("bounded in time");
}
