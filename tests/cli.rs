//! The `tiersync` binary as a user meets it: `check` on good and broken
//! files, `--help` with an example for every command, and the keys of
//! `run --json`.
//!
//! Each test writes its own scenario file in a fresh temporary folder and
//! runs the built binary, so what is checked is the exit code and the text
//! a person would see.

use std::path::PathBuf;
use std::process::{Command, Output};

const FIGURE_1: &str = include_str!("../scenarios/figure-1.toml");

fn tiersync(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tiersync")).args(args).output().expect("the binary runs")
}

/// Writes figure 1, with `from` replaced by `to`, as `name` in a folder of
/// its own; returns the file's path.
fn scenario_file(name: &str, from: &str, to: &str) -> PathBuf {
    assert!(FIGURE_1.contains(from), "figure-1.toml has no `{from}`");
    let dir = std::env::temp_dir().join(format!("tiersync-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    let path = dir.join(name);
    std::fs::write(&path, FIGURE_1.replacen(from, to, 1)).expect("the file is written");
    path
}

fn check(path: &std::path::Path) -> (bool, String, String) {
    let out = tiersync(&["check", path.to_str().expect("a UTF-8 path")]);
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn check_accepts_a_valid_file() {
    let path = scenario_file("ok.toml", "name = ", "name = ");
    let (ok, stdout, _) = check(&path);
    assert!(ok);
    assert!(stdout.contains("ok — 4 sites, 5400 clients"), "{stdout}");
}

#[test]
fn check_names_file_line_column_key_and_the_nearest_key() {
    let path = scenario_file("typo.toml", "splay = \"30m\"", "spaly = \"30m\"");
    let (ok, _, stderr) = check(&path);
    assert!(!ok, "a misspelt key fails the check");
    assert!(stderr.contains("typo.toml:12:1: unknown key `spaly` in [client]"), "{stderr}");
    assert!(stderr.contains("did you mean `splay`?"), "{stderr}");
}

#[test]
fn check_rejects_a_wrong_unit_and_lists_the_accepted_forms() {
    let path = scenario_file("unit.toml", "\"50Mbit/s\"", "\"50Mbit/h\"");
    let (ok, _, stderr) = check(&path);
    assert!(!ok);
    assert!(stderr.contains("unit.toml:29:21:"), "the line of the bad value: {stderr}");
    assert!(stderr.contains("bandwidth"), "{stderr}");
    assert!(stderr.contains("Mbit/s"), "the accepted forms are listed: {stderr}");
}

#[test]
fn check_accepts_units_as_people_write_them() {
    let path = scenario_file("units.toml", "\"50Mbit/s\"", "\"1Gbit/s\"");
    assert!(check(&path).0);
    let path = scenario_file("units2.toml", "\"4KiB\"", "\"200KiB\"");
    assert!(check(&path).0);
    let path = scenario_file("units3.toml", "latency = \"80ms\"", "latency = \"90ms\"");
    assert!(check(&path).0);
}

#[test]
fn check_fails_on_a_missing_file() {
    let (ok, _, stderr) = check(std::path::Path::new("no/such/scenario.toml"));
    assert!(!ok);
    assert!(stderr.contains("no/such/scenario.toml"), "{stderr}");
}

/// The subcommands `tiersync <path> --help` lists under "Commands:",
/// without clap's own `help`.
fn subcommands(path: &[&str]) -> Vec<String> {
    let mut args = path.to_vec();
    args.push("--help");
    let out = tiersync(&args);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let Some(start) = text.find("Commands:") else { return Vec::new() };
    text[start..]
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_command_and_subcommand_has_help_with_an_example() {
    // Walk the whole command tree as `--help` shows it, so that a new
    // subcommand without an example fails here.
    let mut queue: Vec<Vec<String>> = vec![Vec::new()];
    let mut seen = 0;
    while let Some(path) = queue.pop() {
        let args: Vec<&str> = path.iter().map(String::as_str).collect();
        let mut with_help = args.clone();
        with_help.push("--help");
        let out = tiersync(&with_help);
        assert!(out.status.success(), "{with_help:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("Example"),
            "`tiersync {}` --help has an example:\n{text}",
            args.join(" ")
        );
        let usage = format!("tiersync {}", args.join(" "));
        assert!(text.contains(usage.trim_end()), "the example uses the command:\n{text}");
        for sub in subcommands(&args) {
            let mut next = path.clone();
            next.push(sub);
            queue.push(next);
        }
        seen += 1;
    }
    // tiersync itself, 11 commands, pki's 2 and policy's 3 subcommands.
    assert!(seen >= 17, "only {seen} commands found");
    for cmd in ["run", "check", "compare", "sweep"] {
        let text = String::from_utf8_lossy(&tiersync(&[cmd, "--help"]).stdout).into_owned();
        assert!(text.contains(&format!("tiersync {cmd} scenarios/")), "{text}");
    }
}

#[test]
fn check_reports_every_key_error_and_counts_them() {
    let path = scenario_file("many.toml", "splay = \"30m\"", "spaly = \"30m\"");
    let text = std::fs::read_to_string(&path).unwrap().replacen("seed = 1\n", "seed = -1\n", 1);
    let text = text.replacen("timezone = \"Asia/Tokyo\"\n", "", 1);
    std::fs::write(&path, text).unwrap();
    let (ok, _, stderr) = check(&path);
    assert!(!ok);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 4, "three errors and their count:\n{stderr}");
    assert!(lines[0].contains("many.toml:3:8: bad value for `seed`"), "{stderr}");
    assert!(lines[0].contains("expected a whole number ≥ 0, found -1"), "{stderr}");
    assert!(lines[1].contains("unknown key `spaly` in [client]; did you mean `splay`?"));
    assert!(lines[2].contains("missing key `timezone` in [[site]] \"b\"; expected an IANA"));
    assert_eq!(lines[3], "3 errors");
}

#[test]
fn check_counts_in_words_that_agree() {
    let path = scenario_file("plural.toml", "name = ", "name = ");
    let (ok, stdout, _) = check(&path);
    assert!(ok);
    assert!(stdout.contains("2 policies, 2 changes, 1 fault, 7d"), "{stdout}");
}

/// A one-day scenario small enough for a debug build to run in seconds.
const SMALL: &str = r#"
name = "small"
seed = 5
start = "2026-03-02T00:00:00Z"
duration = "1d"
[master]
site = "hq"
[client]
poll = "1h"
splay = "30m"
status_every = "2h"
inventory = "2KiB"
[local]
sync_window = "02:00-04:00"
policy_check = "6h"
[[site]]
name = "hq"
timezone = "America/New_York"
[[site]]
name = "paris"
parent = "hq"
timezone = "Europe/Paris"
clients = { windows = 60 }
wan = { bandwidth = "20Mbit/s", latency = "40ms" }
[[policy]]
id = "antivirus"
platforms = ["windows"]
content = "50KiB"
[[change]]
at = "2026-03-02T05:00:00Z"
policy = "antivirus"
content = "60KiB"
"#;

fn small_file(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tiersync-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    let path = dir.join("small.toml");
    std::fs::write(&path, SMALL).expect("the file is written");
    path
}

#[test]
fn sweep_list_validates_its_settings_first() {
    let path = small_file("list");
    let p = path.to_str().unwrap();
    let out = tiersync(&["sweep", p, "--set", "client.pol=15m", "--list"]);
    assert!(!out.status.success(), "a misspelt key is refused before listing");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("did you mean `client.poll`?"), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing is listed");
    let out = tiersync(&["sweep", p, "--set", "client.poll=15m,1x", "--list"]);
    assert!(!out.status.success(), "a bad value in any setting is refused too");
    let out = tiersync(&["sweep", p, "--set", "client.poll=15m,1h", "--list"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 6);
}

#[test]
fn a_sweep_point_equals_run_with_the_same_settings() {
    let path = small_file("point");
    let p = path.to_str().unwrap();
    let dir = path.parent().unwrap().join("sweep");
    let d = dir.to_str().unwrap();
    // Point 1 is the first setting (poll 2h) under flat-conditional.
    let set = ["--set", "client.poll=2h,3h"];
    let out = tiersync(&[&["sweep", p], &set[..], &["--point", "1", "--out", d, "-q"]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let row = std::fs::read_to_string(dir.join("points/point-0001.csv")).unwrap();
    let mut lines = row.lines();
    let head: Vec<&str> = lines.next().unwrap().split(',').collect();
    let values: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| values[head.iter().position(|h| *h == name).unwrap()];
    assert_eq!(col("strategy"), "flat-conditional");
    assert_eq!(col("client.poll"), "2h");

    let out = tiersync(&[
        "run",
        p,
        "--set",
        "client.poll=2h",
        "--strategy",
        "flat-conditional",
        "--json",
        "-q",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(col("trace_hash"), json["trace_hash"].as_str().unwrap());
    assert_eq!(col("wan_bytes"), json["wan"]["bytes"].to_string());
    assert_eq!(col("seed"), json["seed"].to_string(), "points use the scenario's seed");

    // And another poll interval is another run.
    let out = tiersync(&[
        "run",
        p,
        "--set",
        "client.poll=3h",
        "--strategy",
        "flat-conditional",
        "--json",
        "-q",
    ]);
    let other: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_ne!(other["trace_hash"], json["trace_hash"]);
}

#[test]
fn run_refuses_a_bad_override() {
    let path = small_file("badset");
    let out = tiersync(&["run", path.to_str().unwrap(), "--set", "client.poll=15x", "-q"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("override `client.poll=15x`"), "{stderr}");
}

/// `run --trace` writes a row per message that ended, and its `wan_bytes`
/// column adds up to the JSON's `wan.bytes`, lost messages included.
#[test]
fn run_trace_adds_up_to_wan_bytes() {
    let small = FIGURE_1
        .replacen("duration = \"7d\"", "duration = \"5d\"", 1)
        .replacen(
            "clients = { windows = 1500, macos = 200 }",
            "clients = { windows = 15, macos = 2 }",
            1,
        )
        .replacen("loss = 0.001", "loss = 0.05", 1)
        .replacen(
            "clients = { windows = 2500, linux = 400 }",
            "clients = { windows = 25, linux = 4 }",
            1,
        )
        .replacen("clients = { windows = 800 }", "clients = { windows = 8 }", 1);
    let dir = std::env::temp_dir().join(format!("tiersync-cli-{}-trace", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    let path = dir.join("small.toml");
    std::fs::write(&path, small).expect("the file is written");
    let trace = dir.join("trace.csv");
    for strategy in ["tiered", "flat"] {
        let out = tiersync(&[
            "run",
            path.to_str().expect("a UTF-8 path"),
            "--strategy",
            strategy,
            "--json",
            "--quiet",
            "--trace",
            trace.to_str().expect("a UTF-8 path"),
        ]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
        let mut csv = csv::Reader::from_path(&trace).expect("the trace file");
        let headers = csv.headers().expect("a header row").clone();
        let col = |name: &str| headers.iter().position(|h| h == name).expect(name);
        let (wan_bytes, outcome) = (col("wan_bytes"), col("outcome"));
        let mut total = 0u64;
        let mut lost = 0u64;
        for row in csv.records() {
            let row = row.expect("a CSV row");
            total += row[wan_bytes].parse::<u64>().expect("a byte count");
            lost += u64::from(&row[outcome] != "delivered");
        }
        assert_eq!(total, json["wan"]["bytes"].as_u64().unwrap(), "{strategy}");
        assert_eq!(lost, json["lost_messages"].as_u64().unwrap(), "{strategy}");
        assert!(lost > 0, "{strategy}: the 5% loss on a's link lost nothing");
    }
}

/// `run --json` prints one object with every key the simulator's issue
/// lists, each of the JSON type it promises: counts as whole numbers ≥ 0,
/// times and shares as numbers, names and the hash as strings. Scripts and
/// the report read these keys, so a rename or a type change fails here.
#[test]
fn run_json_has_the_documented_keys_and_types() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/replay-small.toml");
    let out = tiersync(&["run", path, "--json", "-q"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");

    use serde_json::Value;
    let count = |v: &Value| v.is_u64();
    let number = |v: &Value| v.is_number();
    let string = |v: &Value| v.is_string();
    /// A key and the test its value's JSON type must pass.
    type Key<'a> = (&'a str, &'a dyn Fn(&Value) -> bool);
    let expect = |at: &Value, path: &str, keys: &[Key]| {
        assert!(at.is_object(), "`{path}` is an object: {at}");
        for (key, ok) in keys {
            let v = at.get(key).unwrap_or_else(|| panic!("`{path}{key}` is missing"));
            assert!(ok(v), "`{path}{key}` has the wrong type: {v}");
        }
    };
    let object = |v: &Value| v.as_object().is_some_and(|o| !o.is_empty());
    expect(
        &json,
        "",
        &[
            ("scenario", &string),
            ("strategy", &string),
            ("seed", &count),
            ("trace_hash", &string),
            ("simulated_seconds", &number),
            ("wall_seconds", &number),
            ("events", &count),
            ("wan", &object),
            ("master", &object),
            ("propagation_seconds", &object),
            ("staleness_client_hours", &number),
            ("clients", &object),
            ("by_kind", &object),
            ("transport_model", &object),
        ],
    );
    assert_eq!(json["scenario"], "replay-small");
    assert_eq!(json["strategy"], "tiered");
    let hash = json["trace_hash"].as_str().unwrap();
    assert!(hash.len() == 32 && hash.chars().all(|c| c.is_ascii_hexdigit()), "{hash}");
    expect(
        &json["wan"],
        "wan.",
        &[
            ("bytes", &count),
            ("messages", &count),
            ("business_hours_bytes", &count),
            ("peak_utilization", &number),
        ],
    );
    expect(
        &json["master"],
        "master.",
        &[
            ("bytes_in", &count),
            ("bytes_out", &count),
            ("messages_in", &count),
            ("messages_out", &count),
        ],
    );
    expect(
        &json["propagation_seconds"],
        "propagation_seconds.",
        &[
            ("count", &count),
            ("never_applied", &count),
            ("p50", &number),
            ("p90", &number),
            ("p99", &number),
            ("max", &number),
        ],
    );
    expect(
        &json["clients"],
        "clients.",
        &[("total", &count), ("online_at_end", &count), ("reporting_at_master", &count)],
    );
    assert_eq!(json["clients"]["total"], 300);
    let kinds = json["by_kind"].as_object().unwrap();
    for kind in ["poll", "policy_update", "report", "sync", "policies"] {
        assert!(kinds.contains_key(kind), "by_kind.{kind} is missing");
    }
    for (kind, v) in kinds {
        expect(v, &format!("by_kind.{kind}."), &[("messages", &count), ("bytes", &count)]);
    }
    assert_eq!(json["transport_model"]["mss_bytes"], 1460, "the issue's MSS");
}

/// `compare` writes `kinds.csv` and `nodes.csv` with the columns the
/// report and the README document, no all-zero rows, and hourly numbers
/// that add up to the per-kind, per-server and per-group totals of `run
/// --json` under each strategy.
#[test]
fn compare_writes_kinds_and_nodes_csv_that_add_up_to_the_run_json() {
    let path = small_file("kinds-nodes");
    let p = path.to_str().expect("a UTF-8 path");
    let dir = path.parent().expect("a folder").join("report");
    let out = tiersync(&["compare", p, "--out", dir.to_str().expect("UTF-8"), "--quiet"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let read = |name: &str| -> Vec<Vec<String>> {
        let text =
            std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        text.lines().map(|l| l.split(',').map(str::to_owned).collect()).collect()
    };
    let kinds = read("kinds.csv");
    assert_eq!(kinds[0].join(","), "bucket_start_utc,strategy,kind,bytes,messages");
    let nodes = read("nodes.csv");
    assert_eq!(
        nodes[0].join(","),
        "bucket_start_utc,strategy,node,role,site,platform,\
         bytes_in,bytes_out,messages_in,messages_out"
    );
    let report = std::fs::read_to_string(dir.join("report.md")).expect("report.md");
    assert!(report.contains("`kinds.csv`") && report.contains("`nodes.csv`"));

    let num = |s: &str| s.parse::<u64>().unwrap_or_else(|e| panic!("{s}: {e}"));
    for strategy in ["flat", "flat-conditional", "tiered"] {
        let out = tiersync(&["run", p, "--strategy", strategy, "--json", "-q"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");

        let mut by_kind = std::collections::BTreeMap::<String, [u64; 2]>::new();
        for row in kinds[1..].iter().filter(|r| r[1] == strategy) {
            assert!(row[0].ends_with(":00:00Z"), "an hour's start: {row:?}");
            let e = by_kind.entry(row[2].clone()).or_default();
            let v = [num(&row[3]), num(&row[4])];
            assert!(v != [0, 0], "an all-zero row: {row:?}");
            e[0] += v[0];
            e[1] += v[1];
        }
        for (kind, k) in json["by_kind"].as_object().expect("by_kind") {
            let want = [k["bytes"].as_u64().unwrap(), k["messages"].as_u64().unwrap()];
            let got = by_kind.remove(kind).unwrap_or_default();
            assert_eq!(got, want, "{strategy}: {kind}");
        }
        assert!(by_kind.is_empty(), "{strategy}: {by_kind:?}");

        // (node, role, site, platform) -> [bytes_in, bytes_out, messages_in, messages_out]
        let mut by_node = std::collections::BTreeMap::<[String; 4], [u64; 4]>::new();
        for row in nodes[1..].iter().filter(|r| r[1] == strategy) {
            let key = [row[2].clone(), row[3].clone(), row[4].clone(), row[5].clone()];
            let v = [num(&row[6]), num(&row[7]), num(&row[8]), num(&row[9])];
            assert!(v != [0; 4], "an all-zero row: {row:?}");
            let e = by_node.entry(key).or_default();
            for (sum, x) in e.iter_mut().zip(v) {
                *sum += x;
            }
        }
        let fields = ["bytes_in", "bytes_out", "messages_in", "messages_out"];
        let counts = |v: &serde_json::Value| fields.map(|k| v[k].as_u64().unwrap());
        let text = |v: &serde_json::Value, k: &str| v[k].as_str().unwrap().to_owned();
        let mut want = std::collections::BTreeMap::new();
        for s in json["servers"].as_array().expect("servers") {
            let (role, site) = (text(s, "role"), text(s, "site"));
            let name = if role == "master" { "master".to_owned() } else { site.clone() };
            want.insert([name, role, site, String::new()], counts(s));
        }
        for g in json["client_groups"].as_array().expect("client_groups") {
            let (site, platform) = (text(g, "site"), text(g, "platform"));
            let name = format!("{site}/{platform}");
            want.insert([name, "clients".to_owned(), site, platform], counts(g));
        }
        want.retain(|_, v| *v != [0; 4]);
        assert_eq!(by_node, want, "{strategy}");
    }
    let _ = std::fs::remove_dir_all(path.parent().expect("a folder"));
}

/// The smallest bundled scenario: a day of three sites and 300 clients.
const REPLAY_SMALL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/replay-small.toml");

/// The sweep of the tests below: two poll intervals under two strategies.
const SWEEP: [&str; 7] =
    ["--set", "client.poll=1h,2h", "--strategy", "flat", "--strategy", "tiered", "--quiet"];

/// `tiersync sweep REPLAY_SMALL SWEEP... extra...`, which must succeed;
/// returns its stdout.
fn sweep(extra: &[&str]) -> String {
    let out = tiersync(&[&["sweep", REPLAY_SMALL][..], &SWEEP, extra].concat());
    assert!(out.status.success(), "{extra:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// `tiersync run ARGS... --json -q`, which must succeed; returns its JSON.
fn run_json(args: &[&str]) -> serde_json::Value {
    let out = tiersync(&[&["run"][..], args, &["--json", "-q"]].concat());
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

/// A whole sweep writes `sweep.csv` with one row per (setting, strategy)
/// in point order, with the columns the sweep writes (point, strategy,
/// one per `--set` key, then the results), each row's numbers those of
/// `run --json` with the same setting and strategy; and the trade-off
/// chart as a PNG and an SVG.
#[test]
fn sweep_writes_one_row_per_setting_and_strategy_and_the_chart() {
    let out = tempfile::tempdir().expect("a temporary folder");
    let d = out.path().to_str().expect("a UTF-8 path");
    let listed = sweep(&["--list"]).lines().count();
    assert_eq!(listed, 4, "two poll intervals times two strategies");
    let stdout = sweep(&["--out", d]);
    assert!(stdout.starts_with(&format!("{listed} points; wrote ")), "{stdout}");

    let mut csv = csv::Reader::from_path(out.path().join("sweep.csv")).expect("sweep.csv");
    let head = csv.headers().expect("a header row").clone();
    assert_eq!(
        head.iter().collect::<Vec<_>>().join(","),
        "point,strategy,client.poll,seed,wan_bytes,wan_business_hours_bytes,\
         master_messages,master_bytes,propagation_p50_s,propagation_p99_s,\
         propagation_max_s,never_applied,staleness_client_hours,trace_hash"
    );
    let rows: Vec<csv::StringRecord> = csv.records().map(|r| r.expect("a CSV row")).collect();
    let col = |name: &str| head.iter().position(|h| h == name).expect(name);
    let at = |row: &csv::StringRecord, name: &str| row[col(name)].to_owned();
    let mut seen = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row.len(), head.len(), "{row:?}");
        assert_eq!(at(row, "point"), i.to_string(), "rows in point order");
        let (poll, strategy) = (at(row, "client.poll"), at(row, "strategy"));
        let set = format!("client.poll={poll}");
        let run = run_json(&[REPLAY_SMALL, "--set", &set, "--strategy", &strategy]);
        assert_eq!(at(row, "trace_hash"), run["trace_hash"].as_str().unwrap(), "{row:?}");
        assert_eq!(at(row, "wan_bytes"), run["wan"]["bytes"].to_string(), "{row:?}");
        assert_eq!(at(row, "seed"), run["seed"].to_string(), "{row:?}");
        let p99: f64 = at(row, "propagation_p99_s").parse().expect("a number");
        let want = run["propagation_seconds"]["p99"].as_f64().unwrap();
        assert!((p99 - want).abs() <= 0.0005, "{row:?}: p99 {want}");
        seen.push((poll, strategy));
    }
    let mut want = Vec::new();
    for poll in ["1h", "2h"] {
        for strategy in ["flat", "tiered"] {
            want.push((poll.to_owned(), strategy.to_owned()));
        }
    }
    assert_eq!(seen, want, "one row per (setting, strategy)");

    let png = std::fs::read(out.path().join("tradeoff.png")).expect("tradeoff.png");
    assert!(png.len() > 8 && png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG file");
    let svg = std::fs::read_to_string(out.path().join("tradeoff.svg")).expect("tradeoff.svg");
    assert!(svg.contains("<svg"), "not an SVG file: {svg:.200}");
}

/// Running every point of a sweep on its own with `--point N` (as a batch
/// scheduler's array jobs would) and then `--collect` gives the very
/// `sweep.csv` of a whole sweep; and `--collect` with a point file missing
/// fails and names that point.
#[test]
fn sweep_points_run_apart_collect_into_the_whole_sweep() {
    let whole = tempfile::tempdir().expect("a temporary folder");
    sweep(&["--out", whole.path().to_str().expect("a UTF-8 path")]);
    let want = std::fs::read(whole.path().join("sweep.csv")).expect("sweep.csv");

    let apart = tempfile::tempdir().expect("a temporary folder");
    let d = apart.path().to_str().expect("a UTF-8 path");
    let points = sweep(&["--list"]).lines().count();
    assert!(points > 1, "a sweep of one point proves nothing here");
    for n in 0..points {
        let stdout = sweep(&["--out", d, "--point", &n.to_string()]);
        assert!(stdout.starts_with(&format!("point {n} (")), "{stdout}");
    }
    assert!(!apart.path().join("sweep.csv").exists(), "--point writes no sweep.csv");
    sweep(&["--out", d, "--collect"]);
    let got = std::fs::read(apart.path().join("sweep.csv")).expect("the collected sweep.csv");
    assert!(
        got == want,
        "collected:\n{}\nwhole:\n{}",
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&want)
    );
    for chart in ["tradeoff.png", "tradeoff.svg"] {
        let len = std::fs::metadata(apart.path().join(chart)).map_or(0, |m| m.len());
        assert!(len > 0, "--collect draws {chart}");
    }

    let gone = points / 2;
    std::fs::remove_file(apart.path().join(format!("points/point-{gone:04}.csv")))
        .expect("the point file was written");
    let out =
        tiersync(&[&["sweep", REPLAY_SMALL][..], &SWEEP, &["--out", d, "--collect"]].concat());
    assert!(!out.status.success(), "--collect succeeds without point {gone}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("points not run yet: [{gone}]")), "{stderr}");
}

/// `run --trace` writes the columns the simulator's trace rows hold (UTC
/// time, sender and receiver node and site, WAN links crossed, kind,
/// bytes, outcome), times as RFC 3339 UTC instants inside the run that
/// never go back over delivered messages, sites and links named as in the
/// scenario, and one row per message of each kind the JSON's `by_kind`
/// counts, polls and their replies among them.
#[test]
fn run_trace_has_utc_times_in_order_and_every_kind() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let trace = dir.path().join("trace.csv");
    let t = trace.to_str().expect("a UTF-8 path");
    let json = run_json(&[REPLAY_SMALL, "--strategy", "flat-conditional", "--trace", t]);
    let sc = tiersync_simnet::scenario::Scenario::load(std::path::Path::new(REPLAY_SMALL))
        .expect("the scenario loads");
    let sites: Vec<&str> = sc.sites.iter().map(|s| s.name.as_str()).collect();
    let (start, end) = (sc.start.to_jiff(), sc.end().to_jiff());

    let mut csv = csv::Reader::from_path(&trace).expect("the trace file");
    let head = csv.headers().expect("a header row").clone();
    assert_eq!(
        head.iter().collect::<Vec<_>>().join(","),
        "time_utc,from,from_site,to,to_site,wan_links,kind,bytes,reverse_bytes,wan_bytes,\
         delivered,outcome,copy"
    );
    let col = |name: &str| head.iter().position(|h| h == name).expect(name);
    let mut kinds = std::collections::BTreeMap::<String, u64>::new();
    let mut last: Option<jiff::Timestamp> = None;
    let mut delivered = 0u64;
    for row in csv.records() {
        let row = row.expect("a CSV row");
        let time = &row[col("time_utc")];
        assert!(time.ends_with('Z'), "not UTC: {time}");
        let at: jiff::Timestamp = time.parse().unwrap_or_else(|e| panic!("{time}: {e}"));
        assert!(start <= at && at <= end, "{time} is outside the run");
        for node in [col("from"), col("to")] {
            row[node].parse::<u32>().unwrap_or_else(|e| panic!("a node id: {row:?}: {e}"));
        }
        for site in [&row[col("from_site")], &row[col("to_site")]] {
            assert!(sites.contains(&site), "an unknown site: {row:?}");
        }
        let links = &row[col("wan_links")];
        assert!(links.is_empty() || links.split(';').all(|l| sites.contains(&l)), "{row:?}");
        row[col("bytes")].parse::<u64>().unwrap_or_else(|e| panic!("bytes: {row:?}: {e}"));
        *kinds.entry(row[col("kind")].to_owned()).or_default() += 1;
        if &row[col("delivered")] == "true" {
            assert_eq!(&row[col("outcome")], "delivered", "{row:?}");
            assert!(last.is_none_or(|l| l <= at), "{time} comes after {last:?}");
            last = Some(at);
            delivered += 1;
        }
    }
    assert_eq!(delivered, json["delivered_messages"].as_u64().unwrap());
    assert_eq!(json["lost_messages"], 0, "every message of this scenario is delivered");
    let mut want = std::collections::BTreeMap::new();
    for (kind, k) in json["by_kind"].as_object().expect("by_kind") {
        let n = k["messages"].as_u64().unwrap();
        if n > 0 {
            want.insert(kind.clone(), n);
        }
    }
    assert_eq!(kinds, want, "rows per kind against the JSON's by_kind");
    for kind in ["poll", "policy_update", "report", "report_ack"] {
        assert!(kinds.contains_key(kind), "no {kind} in the trace: {kinds:?}");
    }
}
