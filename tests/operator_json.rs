//! The operator commands' `--json` output, from the real `tiersync` binary
//! against a master and a local server running as separate processes
//! (`tiersync master|local`).
//!
//! The deployment helpers are the `tiersync-net` tests' own, included by
//! path: the same PKI, configuration files and process handling.

#[path = "../net/tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::Value;
use tiersync_net::operator::{self, OpRequest, OpResponse};

/// The policy the test sets, and the facts of its file.
const POLICY: &str = "antivirus";
const PLATFORMS: [&str; 2] = ["windows", "linux"];
const CONTENT: &str = "signature set of the operator JSON test";
const SCAN: &str = "daily";
const HEURISTICS: bool = true;
const SITE: &str = "tokyo";
const SITE_SCAN: &str = "weekly";

/// What one run of `tiersync` printed.
struct Run {
    stdout: String,
    stderr: String,
}

/// Runs `tiersync ARGS --config operator.toml` in `dir`, its output in
/// files there; kills it and panics if it has not exited within [`WAIT`].
fn tiersync(dir: &Path, args: &[&str]) -> Run {
    let (out, err) = (dir.join("op.stdout"), dir.join("op.stderr"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_tiersync"))
        .args(args)
        .args(["--config", "operator.toml"])
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    // Polled every 20 ms, up to WAIT in all.
    let mut status = None;
    for _ in 0..WAIT.as_millis() / 20 {
        status = child.try_wait().unwrap();
        if status.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("tiersync {args:?} did not exit within {WAIT:?}");
    };
    let run = Run {
        stdout: std::fs::read_to_string(out).unwrap(),
        stderr: std::fs::read_to_string(err).unwrap(),
    };
    assert!(status.success(), "tiersync {args:?}: {status}\n{}", run.stderr);
    run
}

/// `tiersync ARGS --json`'s standard output, parsed.
fn json(dir: &Path, args: &[&str]) -> Value {
    let run = tiersync(dir, &[args, &["--json"]].concat());
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| {
        panic!("tiersync {args:?} --json printed no JSON ({e}):\n{}{}", run.stdout, run.stderr)
    })
}

/// The sites of a status answer.
fn sites(status: &Value) -> Vec<&str> {
    let rows = status["sites"].as_array().expect("`sites` is a list");
    rows.iter().map(|s| s["site"].as_str().expect("a row names its site")).collect()
}

/// Asks `status` every 100 ms until its only site is the local server's,
/// and returns that answer; panics after [`WAIT`]'s worth of pauses (each
/// ask is itself bounded).
fn until(what: &str, mut status: impl FnMut() -> Value) -> Value {
    for _ in 0..WAIT.as_millis() / 100 {
        let answer = status();
        if sites(&answer) == [SITE] {
            return answer;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for: {what}; last answer {}", status());
}

/// A JSON object held as text in a field of `policy show` (`params`, …).
fn json_text(detail: &Value, field: &str) -> Value {
    let text = detail[field].as_str().unwrap_or_else(|| panic!("`{field}` is text: {detail}"));
    serde_json::from_str(text).unwrap_or_else(|e| panic!("`{field}` is JSON text ({e}): {text}"))
}

/// With `--json`, `policy set`, `policy list`, `policy show`, `status` and
/// `status --current` of the real `tiersync` binary each print one JSON
/// document of the answer's serde form, with the facts of the request:
/// the revision `set` reports assigned (by the master) is the one `list`
/// and `show` then report for the policy; `show` returns the platforms,
/// content (size and SHA-256), parameters and site overlay of the policy
/// file; both kinds of status name the local server's site, and the
/// current one misses none. Without `--json`, `policy list` prints the
/// human table instead, which is not JSON.
#[test]
fn operator_commands_print_their_answers_as_json() {
    let net = Net::new();
    let dir = net.dir();
    let (_master, master_addr) =
        Proc::spawn("master", &net.master_config(&[SITE]), &dir.join("master.log"));
    let master_addr = master_addr.expect("the master listens");
    let local_config = net.local_config(SITE, any_port(), master_addr);
    let (_local, local_addr) = Proc::spawn("local", &local_config, &dir.join("local.log"));
    let local_addr = local_addr.expect("the local server listens");
    let to_master = net.operator(master_addr, "master");

    std::fs::write(
        dir.join("antivirus.toml"),
        format!(
            "platforms = {PLATFORMS:?}\ncontent = {CONTENT:?}\n[params]\nscan = {SCAN:?}\n\
             heuristics = {HEURISTICS}\n[site_params.{SITE}]\nscan = {SITE_SCAN:?}\n"
        ),
    )
    .unwrap();

    // `policy set`: a `SetOutcome`, with the revision the master assigned.
    let set = json(dir, &["policy", "set", POLICY, "--file", "antivirus.toml"]);
    assert_eq!(set["policy"], POLICY, "{set}");
    assert_eq!(set["node"], "master", "{set}");
    let revision = set["revision"].as_u64().expect("the master assigns a revision");

    // `policy list`: the `PolicySummary` list, with that revision.
    let list = json(dir, &["policy", "list"]);
    let rows = list.as_array().expect("`policy list --json` is a list");
    let av: Vec<&Value> = rows.iter().filter(|p| p["id"] == POLICY).collect();
    assert_eq!(av.len(), 1, "{list}");
    assert_eq!(av[0]["revision"].as_u64(), Some(revision), "{list}");
    assert_eq!(av[0]["site_overlays"], serde_json::json!([SITE]), "{list}");

    // `policy show`: the `PolicyDetail`, with the file's facts.
    let show = json(dir, &["policy", "show", POLICY]);
    let summary = &show["summary"];
    assert_eq!(summary["id"], POLICY, "{show}");
    assert_eq!(summary["revision"].as_u64(), Some(revision), "{show}");
    let mut platforms: Vec<&str> =
        summary["platforms"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    platforms.sort_unstable();
    let mut expected = PLATFORMS.to_vec();
    expected.sort_unstable();
    assert_eq!(platforms, expected, "{show}");
    assert_eq!(summary["content_bytes"].as_u64(), Some(CONTENT.len() as u64), "{show}");
    let digest = ring::digest::digest(&ring::digest::SHA256, CONTENT.as_bytes());
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(show["content_sha256"], hex, "{show}");
    assert_eq!(
        json_text(&show, "params"),
        serde_json::json!({ "scan": SCAN, "heuristics": HEURISTICS }),
        "{show}"
    );
    assert_eq!(
        json_text(&show, "site_params"),
        serde_json::json!({ SITE: { "scan": SITE_SCAN } }),
        "{show}"
    );
    let history = show["history"].as_array().expect("`history` is a list");
    let last = history.last().expect("a revision in the history");
    assert_eq!(last[0].as_u64(), Some(revision), "{show}");
    assert_eq!(last[2], "master", "set at the master: {show}");

    // `status --current`: asks the local server now, once it is connected.
    let current = until("tokyo answers", || json(dir, &["status", "--current"]));
    assert_eq!(current["kind"], "current", "{current}");
    assert_eq!(current["missing"], serde_json::json!([]), "{current}");
    assert!(current["client"].is_null(), "{current}");

    // `status`: the master's store, once the local server has uploaded.
    let mut to_local = to_master.clone();
    (to_local.server, to_local.server_name) = (local_addr.to_string(), SITE.to_string());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let sync = rt.block_on(operator::request(&to_local, &OpRequest::SyncNow)).unwrap();
    assert!(matches!(sync, OpResponse::Done(_)), "sync now: {sync:?}");
    let historical = until("tokyo's upload is stored", || json(dir, &["status"]));
    assert_eq!(historical["kind"], "historical", "{historical}");

    // Without `--json`: the table, headed by its columns, not JSON.
    let table = tiersync(dir, &["policy", "list"]).stdout;
    assert!(serde_json::from_str::<Value>(&table).is_err(), "{table}");
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split_whitespace().collect();
    assert_eq!(header.get(..2), Some(&["POLICY", "REVISION"][..]), "{table}");
    let row = lines.find(|l| l.starts_with(POLICY)).unwrap_or_else(|| panic!("{table}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[1], revision.to_string(), "{table}");
}
