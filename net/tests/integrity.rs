//! A compromised local server cannot make clients apply a policy of its
//! own making.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::*;
use tiersync_engine::{Message, Value, codec};
use tiersync_net::config::TlsFiles;
use tiersync_net::frame::{self, KEEPALIVE, Limits};
use tiersync_net::ids::Role;
use tiersync_net::operator::{OpRequest, OpResponse, OpScope};
use tiersync_net::pki;
use tokio::io::AsyncWriteExt as _;

fn files(net: &Net, name: &str) -> TlsFiles {
    TlsFiles {
        ca: net.pki().join("ca.pem"),
        cert: net.pki().join(format!("{name}.pem")),
        key: net.pki().join(format!("{name}.key")),
    }
}

/// Rewrites the parameters of every policy in a `PolicyUpdate` frame.
fn tamper(frame: Vec<u8>) -> Vec<u8> {
    let Ok((Message::PolicyUpdate { current, policies, removed, full }, _)) =
        codec::decode(&frame, usize::MAX)
    else {
        return frame;
    };
    let policies = policies
        .into_iter()
        .map(|p| {
            let mut forged = (*p).clone();
            forged.params.insert("scan".into(), Value::Str("never".into()));
            Arc::new(forged)
        })
        .collect();
    codec::encode(&Message::PolicyUpdate { current, policies, removed, full }).unwrap()
}

/// A man in the middle holding Tokyo's certificate: clients take it for
/// their local server, and it relays to the real one, rewriting policies
/// while `on` is set.
async fn compromised_server(net: &Net, upstream: SocketAddr, on: Arc<AtomicBool>) -> SocketAddr {
    net.issue(Role::Client, "proxy.tokyo", Some("tokyo"));
    let acceptor =
        tokio_rustls::TlsAcceptor::from(pki::server_config(&files(net, "tokyo")).unwrap());
    let connector =
        tokio_rustls::TlsConnector::from(pki::client_config(&files(net, "proxy.tokyo")).unwrap());
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
            let (acceptor, connector, on) = (acceptor.clone(), connector.clone(), on.clone());
            tokio::spawn(async move {
                let Ok(down) = acceptor.accept(tcp).await else { return };
                let Ok(up) = tokio::net::TcpStream::connect(upstream).await else { return };
                let name = rustls_pki_types::ServerName::try_from("tokyo").unwrap();
                let Ok(up) = connector.connect(name, up).await else { return };
                let (mut dr, mut dw) = tokio::io::split(down);
                let (mut ur, mut uw) = tokio::io::split(up);
                let to_server = async {
                    while let Ok(f) = frame::read_frame(&mut dr, &limits).await {
                        if uw.write_all(&f).await.is_err() {
                            return;
                        }
                    }
                };
                let to_client = async {
                    while let Ok(f) = frame::read_frame(&mut ur, &limits).await {
                        let f =
                            if f != KEEPALIVE && on.load(Ordering::SeqCst) { tamper(f) } else { f };
                        if dw.write_all(&f).await.is_err() {
                            return;
                        }
                    }
                };
                tokio::select! { _ = to_server => {}, _ = to_client => {} }
            });
        }
    });
    addr
}

/// A policy rewritten by a compromised local server fails the master's
/// signature at the client: the client refuses it, keeps enforcing the last
/// good revision (also after a restart from its store), and reports the
/// refusal, which the master sees in the client's status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_policy_is_refused_and_the_client_keeps_the_last_good_one() {
    let test = async {
        let net = Net::new();
        let master = net.start_master(&["tokyo"]).await;
        let tokyo = net.start_local("tokyo", any_port(), master.addr()).await;
        let on = Arc::new(AtomicBool::new(false));
        let evil = compromised_server(&net, tokyo.addr(), on.clone()).await;
        let path = net.client_config("pc1.tokyo", "tokyo", "windows", evil, "tokyo");
        let pc = net.start_client_from(&path).await;

        set(&master, policy("antivirus", &["windows"], &[("scan", "daily")])).await;
        eventually("revision 1 applied", || async { pc.revision("antivirus").await == Some(1) })
            .await;

        on.store(true, Ordering::SeqCst);
        set(&master, policy("antivirus", &["windows"], &[("scan", "hourly")])).await;
        eventually("tokyo holds revision 2", || async {
            tokyo.revision("antivirus").await == Some(2)
        })
        .await;
        // The real server files the client's reports under the proxy's
        // name, so the refusal is looked for in the site's statistics.
        eventually("the refusal reaches the master", || async {
            let req = OpRequest::Status { current: true, scope: OpScope::Site("tokyo".into()) };
            let OpResponse::Status(v) = master.op(req).await else { return false };
            v.sites.iter().any(|s| s.rejected_policies > 0)
        })
        .await;
        assert_eq!(pc.revision("antivirus").await, Some(1), "the last good policy is kept");
        assert_eq!(pc.metrics.applied_total(), 1);

        // After a restart the client still enforces revision 1, from disk.
        pc.stop().await;
        let pc = net.start_client_from(&path).await;
        assert_eq!(pc.revision("antivirus").await, Some(1));
    };
    tokio::time::timeout(Duration::from_secs(90), test).await.expect("bounded in time");
}

/// Rewrites the parameters of every policy in a `Policies` frame, so that
/// the master's signature no longer matches.
fn tamper_policies(frame: Vec<u8>) -> Vec<u8> {
    use tiersync_engine::message::Changes;
    let Ok((Message::Policies { req, upto, changes, stats_acked }, _)) =
        codec::decode(&frame, usize::MAX)
    else {
        return frame;
    };
    let forge = |list: &[Arc<tiersync_engine::policy::SignedPolicy>]| {
        list.iter()
            .map(|p| {
                let mut forged = (**p).clone();
                forged.record.spec.params.insert("scan".into(), Value::Str("never".into()));
                Arc::new(forged)
            })
            .collect()
    };
    let changes = match &changes {
        Changes::Delta(l) => Changes::Delta(forge(l)),
        Changes::Snapshot(l) => Changes::Snapshot(forge(l)),
    };
    codec::encode(&Message::Policies { req, upto, changes, stats_acked }).unwrap()
}

/// A man in the middle between a local server and the master, holding the
/// master's certificate towards the local server and Tokyo's towards the
/// master, rewriting policies on their way down while `on` is set.
async fn compromised_master(net: &Net, upstream: SocketAddr, on: Arc<AtomicBool>) -> SocketAddr {
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
            let (acceptor, connector, on) = (acceptor.clone(), connector.clone(), on.clone());
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
                        let f = if f != KEEPALIVE && on.load(Ordering::SeqCst) {
                            tamper_policies(f)
                        } else {
                            f
                        };
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

/// A local server that refuses a policy failing the master's signature
/// (forged between it and the master) keeps what it had, and reports the
/// refusal upward: the master's current status, and once the server has
/// synchronised its historical status too, show the site's refusal. The
/// count survives a restart of the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_servers_own_refusal_reaches_the_masters_status() {
    let test = async {
        let net = Net::new();
        let master = net.start_master(&["tokyo"]).await;
        let on = Arc::new(AtomicBool::new(true));
        net.issue(Role::Local, "tokyo", None);
        let evil = compromised_master(&net, master.addr(), on.clone()).await;
        let path = net.local_config("tokyo", any_port(), evil);
        let tokyo = net.start_local_from(&path).await;

        set(&master, policy("antivirus", &["windows"], &[("scan", "daily")])).await;
        let refused = |current: bool| {
            let master = &master;
            async move {
                let req = OpRequest::Status { current, scope: OpScope::Site("tokyo".into()) };
                let OpResponse::Status(v) = master.op(req).await else { return 0 };
                v.sites.iter().filter(|s| s.site == "tokyo").map(|s| s.rejected_by_server).sum()
            }
        };
        eventually("the refusal reaches the master's current status", || async {
            refused(true).await > 0
        })
        .await;
        assert_eq!(tokyo.revision("antivirus").await, None, "a forged policy was stored");

        // The statistics uploaded at a synchronisation carry it as well.
        assert!(matches!(tokyo.op(OpRequest::SyncNow).await, OpResponse::Done(_)));
        eventually("and its historical status", || async { refused(false).await > 0 }).await;

        // Once the forgery stops, the server takes the genuine revision,
        // and the count of its refusals stays put.
        on.store(false, Ordering::SeqCst);
        eventually("the genuine policy arrives", || async {
            tokyo.revision("antivirus").await == Some(1)
        })
        .await;
        let count = refused(true).await;
        assert!(count > 0);

        // It is committed: a restarted server reports the same count.
        tokyo.stop().await;
        let tokyo = net.start_local_from(&path).await;
        assert_eq!(tokyo.revision("antivirus").await, Some(1));
        eventually("the restarted server is connected", || async {
            master.metrics.render().contains("tiersync_connected_children 1\n")
        })
        .await;
        assert_eq!(refused(true).await, count, "the count did not survive a restart");
    };
    tokio::time::timeout(Duration::from_secs(90), test).await.expect("bounded in time");
}
