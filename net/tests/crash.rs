//! Kill -9 and restart: a local server as a separate process, killed with
//! SIGKILL at random moments while it synchronises and serves clients.

mod common;

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::*;
use rand::{RngExt as _, SeedableRng as _};
use tiersync_net::ids::Role;
use tiersync_net::operator::{self, OpRequest, OpResponse};
use tiersync_net::store::Store;

/// Starts `tiersync-node local CONFIG` and returns it with its listen
/// address, read from its log.
fn spawn_local(config: &Path, log: &Path) -> (Child, SocketAddr) {
    let log_file = std::fs::File::create(log).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tiersync-node"))
        .args(["local", config.to_str().unwrap()])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .unwrap();
    // Polled every 50 ms, up to WAIT in all.
    let tries = WAIT.as_millis() / 50;
    for _ in 0..tries {
        let text = std::fs::File::open(log).map(BufReader::new).unwrap();
        for line in text.lines().map_while(Result::ok) {
            if let Some(at) = line.find("listening addr=") {
                let addr = line[at + "listening addr=".len()..].trim().parse().unwrap();
                return (child, addr);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("local server did not start");
}

/// Kill -9 of a local server during its synchronisations loses nothing it
/// acknowledged: after each kill its store holds at least the revision its
/// clients had already applied from it (it served only what it had
/// committed) and the report of every client it had acknowledged; after
/// each restart it resumes syncing, every client converges on the master's
/// last revision, and a client restarted from its own store applies
/// nothing twice.
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
        let (mut child, addr) = spawn_local(&config, &log);
        // Restarts keep the port the clients know.
        let config = net.local_config("tokyo", addr, master.addr());
        let clients = [
            net.start_client("pc1.tokyo", "tokyo", "windows", addr).await,
            net.start_client("pc2.tokyo", "tokyo", "windows", addr).await,
            net.start_client("pc3.tokyo", "tokyo", "linux", addr).await,
        ];
        let to_local = net.operator(addr, "tokyo");

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

                // Start a synchronisation and kill the server in the middle.
                let _ = operator::request(&to_local, &OpRequest::SyncNow).await;
                tokio::time::sleep(Duration::from_millis(rng.random_range(0..20))).await;
                child.kill().unwrap();
                child.wait().unwrap();

                let store = Store::open(&net.dir().join("data/tokyo"), Role::Local, "tokyo")
                    .expect("the store opens after a kill -9");
                let (state, _) = store.local_load().unwrap();
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
                drop(store);
                (child, _) = spawn_local(&config, &log);
            }
            changing.store(false, Ordering::SeqCst);
        };
        tokio::join!(writer, killer);

        // It resumes: every client converges on the master's last revision.
        let OpResponse::Policies(list) = master.op(OpRequest::ListPolicies).await else {
            panic!("list")
        };
        let last = list[0].revision;
        for c in &clients {
            eventually("clients converge after the restarts", || async {
                c.revision("antivirus").await == Some(last)
            })
            .await;
            assert!(c.metrics.applied_total() <= last, "a client applied more than there was");
        }

        // A client restarted from its store applies nothing again.
        let path = net.dir().join("pc1.tokyo.toml");
        let [first, ..] = clients;
        first.stop().await;
        let again = net.start_client_from(&path).await;
        assert_eq!(again.revision("antivirus").await, Some(last));
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(again.metrics.applied_total(), 0, "a restarted client re-applied a policy");

        child.kill().unwrap();
        child.wait().unwrap();
    };
    tokio::time::timeout(Duration::from_secs(120), test).await.expect("bounded in time");
}
