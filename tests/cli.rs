//! The `tiersync` binary as a user meets it: `check` on good and broken
//! files, and `--help` with an example for every command.
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

#[test]
fn every_command_has_help_with_an_example() {
    for cmd in ["run", "check", "compare", "sweep"] {
        let out = tiersync(&[cmd, "--help"]);
        assert!(out.status.success(), "{cmd} --help");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Example"), "{cmd} --help shows an example:\n{text}");
        assert!(text.contains(&format!("tiersync {cmd} scenarios/")), "{text}");
    }
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
