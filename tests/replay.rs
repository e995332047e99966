//! `tiersync replay` end to end: a small scenario's nodes as daemons over
//! loopback TLS, set beside the simulator's prediction.
//!
//! The scenario is small on purpose (one site of 20 clients below the
//! master, six simulated hours at 3600x, about six seconds of real time),
//! and the child process is killed if it outlives its bound.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The most a replay here may take, real time.
const BOUND: Duration = Duration::from_secs(120);

/// How far replayed application bytes may be from the simulator's, in
/// percent, on the total and on each link. The command aims for 2% on a
/// day at its default speed; six hours at 3600x leave less time for timers
/// to drift, so 2% holds here as well.
const TOLERANCE: f64 = 2.0;

const SMALL: &str = r#"
name = "replay-test"
seed = 3
start = "2026-03-02T00:00:00Z"
duration = "6h"

[master]
site = "hq"

[client]
poll = "30m"
splay = "10m"
status_every = "30m"
inventory = "1KiB"

[local]
sync_window = "02:00-04:00"
policy_check = "1h"

[[site]]
name = "hq"
timezone = "UTC"

[[site]]
name = "branch"
parent = "hq"
timezone = "Europe/Paris"
clients = { windows = 14, linux = 6 }
wan = { bandwidth = "10Mbit/s", latency = "40ms" }

[[policy]]
id = "antivirus"
platforms = ["windows", "linux"]
content = "16KiB"
params = { scan = "daily" }

[[change]]
at = "2026-03-02T02:30:00Z"
policy = "antivirus"
content = "16KiB"
origin = "hq"

[[change]]
at = "2026-03-02T03:10:00Z"
policy = "firewall"
platforms = ["windows"]
params = { default_inbound = "deny" }
origin = "branch"

[[status_query]]
at = "2026-03-02T05:00:00Z"
kind = "current"
"#;

/// Kills the replay if the test fails or it runs past its bound.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn scenario(name: &str, text: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("replay");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs `tiersync replay ARGS`, bounded; returns success, stdout, stderr.
fn replay(args: &[&str]) -> (bool, String, String) {
    let child = Command::new(env!("CARGO_BIN_EXE_tiersync"))
        .arg("replay")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut guard = Guard(child);
    let mut stdout = guard.0.stdout.take().unwrap();
    let mut stderr = guard.0.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        stdout.read_to_string(&mut s).unwrap();
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        stderr.read_to_string(&mut s).unwrap();
        s
    });
    let mut status = None;
    for _ in 0..BOUND.as_millis() / 50 {
        if let Some(s) = guard.0.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = status.unwrap_or_else(|| panic!("tiersync replay ran past {BOUND:?}"));
    (status.success(), out.join().unwrap(), err.join().unwrap())
}

/// The replay's application bytes agree with the simulator's within the
/// tolerance, in total and on every link, with the same messages per kind
/// up to a few at the end of the run; every client converges on the
/// master's revisions in both, and the current status query is answered by
/// the same sites.
#[test]
fn replayed_bytes_agree_with_the_simulator_and_policies_converge() {
    let path = scenario("small.toml", SMALL);
    let (ok, stdout, stderr) = replay(&[path.to_str().unwrap(), "--json"]);
    assert!(ok, "replay failed: {stderr}");
    let r: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON object");
    let num = |v: &serde_json::Value, k: &str| v[k].as_f64().unwrap_or_else(|| panic!("{k}: {v}"));

    let diff = num(&r, "diff_percent");
    assert!(diff.abs() <= TOLERANCE, "total application bytes differ by {diff:.2}%");
    let links = r["links"].as_array().unwrap();
    assert_eq!(links.len(), 4, "LAN and WAN of the branch, each way: {links:?}");
    for l in links {
        let d = num(l, "diff_percent");
        // The WAN uplink carries a few hundred bytes of checks: there one
        // message is percents, so it is held to one message's worth.
        let sim = num(l, "sim_app_bytes");
        let real = num(l, "real_app_bytes");
        let per_message = sim / num(l, "sim_messages").max(1.0);
        assert!(
            d.abs() <= TOLERANCE || (real - sim).abs() <= per_message * 1.5,
            "link {} {}: {d:.2}% ({sim} vs {real})",
            l["link"],
            l["way"]
        );
        assert!(num(l, "real_socket_bytes") >= real, "socket bytes include the frames");
    }

    // Every kind the simulator sent, the replay sent.
    for k in r["kinds"].as_array().unwrap() {
        let (sim, real) = (num(k, "sim_messages"), num(k, "real_messages"));
        assert!(real > 0.0 || sim == 0.0, "kind {} never sent", k["kind"]);
        assert!((real - sim).abs() <= (sim * 0.02).max(2.0), "kind {}: {sim} vs {real}", k["kind"]);
    }

    // Policies converge, and status is answered alike.
    assert_eq!(num(&r, "clients"), 20.0);
    assert_eq!(num(&r, "sim_clients_up_to_date"), 20.0);
    assert_eq!(num(&r, "real_clients_up_to_date"), 20.0);
    let q = &r["status_queries"][0];
    assert_eq!(q["sim_sites"], q["real_sites"], "{q}");
    assert!(r["connected_before_start"].as_bool().unwrap());
    assert_eq!(num(&r, "reconnections"), 0.0);
}

/// A scenario the replay cannot run is refused with every reason listed.
#[test]
fn unsupported_scenarios_are_refused_with_every_reason() {
    let text = SMALL.replace(
        "wan = { bandwidth = \"10Mbit/s\", latency = \"40ms\" }",
        "wan = { bandwidth = \"10Mbit/s\", latency = \"40ms\", loss = 0.01 }",
    ) + "\n[[fault]]\nkind = \"crash\"\nsite = \"branch\"\nnode = \"local\"\n\
         at = \"2026-03-02T01:00:00Z\"\nrestart_after = \"10m\"\n";
    let path = scenario("faulty.toml", &text);
    let (ok, _, stderr) = replay(&[path.to_str().unwrap()]);
    assert!(!ok);
    assert!(stderr.contains("cannot be replayed"), "{stderr}");
    assert!(stderr.contains("fault `crash` at site `branch`"), "{stderr}");
    assert!(stderr.contains("site `branch`: WAN loss or duplication"), "{stderr}");
}
