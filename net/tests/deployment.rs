//! Whole deployments on loopback TLS: a master, local servers and clients
//! as daemons in this process, each test bounded by `common::WAIT` per
//! wait and by a runtime-wide timeout.

mod common;

use std::time::Duration;

use common::*;
use tiersync_net::ids::Role;
use tiersync_net::operator::{self, OpRequest, OpResponse, OpScope};

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

/// Garbage and an oversized frame each close only their own connection: a
/// client connected to the same server keeps receiving policies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_or_oversized_frame_closes_only_that_connection() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    bounded(async {
        let net = Net::new();
        let master = net.start_master(&["tokyo"]).await;
        let tokyo = net.start_local("tokyo", any_port(), master.addr()).await;
        let pc = net.start_client("pc1.tokyo", "tokyo", "windows", tokyo.addr()).await;
        set(&master, policy("antivirus", &["windows"], &[])).await;
        eventually("revision 1 applied", || async { pc.revision("antivirus").await == Some(1) })
            .await;

        // Two connections with a genuine Tokyo client certificate.
        net.issue(Role::Client, "pc2.tokyo", Some("tokyo"));
        let files = tiersync_net::config::TlsFiles {
            ca: net.pki().join("ca.pem"),
            cert: net.pki().join("pc2.tokyo.pem"),
            key: net.pki().join("pc2.tokyo.key"),
        };
        let tls =
            tokio_rustls::TlsConnector::from(tiersync_net::pki::client_config(&files).unwrap());
        for bad in [&[0u8, 0, 0, 5, 1, 0xff, 0xff, 0xff, 0xff][..], &[0xff, 0xff, 0xff, 0xff, 1]] {
            let tcp = tokio::net::TcpStream::connect(tokyo.addr()).await.unwrap();
            let name = rustls_pki_types::ServerName::try_from("tokyo").unwrap();
            let mut s = tls.connect(name, tcp).await.unwrap();
            s.write_all(bad).await.unwrap();
            s.flush().await.unwrap();
            let mut rest = Vec::new();
            let read = tokio::time::timeout(WAIT, s.read_to_end(&mut rest)).await;
            assert!(read.is_ok(), "the server closed the connection");
        }

        // The other client's connection is untouched.
        let OpResponse::PolicySet(_) = set(&master, policy("antivirus", &["windows"], &[])).await
        else {
            panic!("refused")
        };
        eventually("revision 2 applied", || async { pc.revision("antivirus").await == Some(2) })
            .await;
        let _ = operator::render;
    })
    .await;
}
