//! Daemon configuration files against scenario files: the schedule keys a
//! scenario's `[local]`, `[client]`, `[master]` and `[business_hours]`
//! take are read by the daemons with the same units and the same defaults
//! (each parsed here by the scenario model itself and by the daemon's
//! configuration), reach the engine nodes the daemons build, and are
//! documented in `tiersync init-config ROLE`.

mod common;

use std::time::Duration;

use common::Net;
use tiersync_engine::Node;
use tiersync_engine::schedule::{DailyWindow, QuietHours};
use tiersync_net::clock::Clock;
use tiersync_net::config::{self, ClientConfigFile, LocalConfigFile, MasterConfigFile};
use tiersync_net::ids::Role;
use tiersync_net::metrics::Metrics;
use tiersync_net::setup;
use tiersync_simnet::scenario::{BusinessHours, ClientSettings, LocalSettings, Master};

fn tls(name: &str) -> String {
    format!("[tls]\nca = \"pki/ca.pem\"\ncert = \"pki/{name}.pem\"\nkey = \"pki/{name}.key\"\n")
}

/// The engine's quiet hours for a scenario's business hours, as the
/// simulator derives them.
fn quiet(bh: &BusinessHours) -> QuietHours {
    let mut days = [false; 7];
    for d in &bh.days {
        days[d.to_jiff().to_monday_zero_offset() as usize] = true;
    }
    let window =
        DailyWindow { start_min: bh.window.start_minute(), end_min: bh.window.end_minute() };
    QuietHours { window, days }
}

/// A scenario's `[local]` section (and `[business_hours]`), pasted into a
/// local server's file, gives the engine's local server the values the
/// simulator gives it from the scenario: sync window, checks (`"off"`
/// included), business hours, stale time and retry; defaults included.
#[test]
fn a_scenario_local_section_configures_a_local_server_alike() {
    let net = Net::new();
    net.issue(Role::Local, "tokyo", None);
    let cases = [
        ("sync_window = \"02:00-04:00\"\n", ""),
        (
            "sync_window = \"23:00-01:00\"\npolicy_check = \"off\"\n\
             checks_in_business_hours = false\nstale_after = \"2d\"\nretry = \"90s\"\n",
            "",
        ),
        (
            "sync_window = \"01:00-02:00\"\npolicy_check = \"1h30m\"\n\
             checks_in_business_hours = false\n",
            "window = \"07:30-19:00\"\ndays = [\"sat\", \"sun\"]\n",
        ),
    ];
    for (local, hours) in cases {
        let sc: LocalSettings = toml::from_str(local).unwrap();
        let bh: BusinessHours = toml::from_str(hours).unwrap();
        let text = format!(
            "name = \"tokyo\"\nsite = \"tokyo\"\ntimezone = \"Asia/Tokyo\"\n\
             listen = \"127.0.0.1:0\"\nparent = \"127.0.0.1:1\"\nparent_name = \"master\"\n\
             data_dir = \"data/tokyo\"\npolicy_verify_key = \"pki/policy-signing.pub\"\n\
             {local}[business_hours]\n{hours}{}",
            tls("tokyo")
        );
        let path = net.dir().join("tokyo.toml");
        std::fs::write(&path, text).unwrap();
        let cfg: LocalConfigFile = config::load(&path).unwrap();
        let built = setup::local(&cfg, Clock::wall(), Metrics::new()).unwrap();
        let Node::Local(l) = &built.node else { panic!("not a local server") };
        let c = l.config();
        let window = DailyWindow {
            start_min: sc.sync_window.start_minute(),
            end_min: sc.sync_window.end_minute(),
        };
        assert_eq!(c.sync_window, window, "{local}");
        assert_eq!(c.policy_check, sc.policy_check.map(Duration::from), "{local}");
        let want_quiet = (!sc.checks_in_business_hours).then(|| quiet(&bh));
        assert_eq!(c.check_quiet, want_quiet, "{local}{hours}");
        assert_eq!(c.stale_after, Duration::from(sc.stale_after), "{local}");
        assert_eq!(c.request_timeout, Duration::from(sc.retry), "{local}");
    }
}

/// A scenario's `[client]` schedule keys give the engine's client the
/// values the simulator gives it: poll, splay, reports, inventory size,
/// engine version, scans and wake-up splay; defaults included.
#[test]
fn a_scenario_client_section_configures_a_client_alike() {
    let net = Net::new();
    net.issue(Role::Client, "pc1.tokyo", Some("tokyo"));
    let base = "poll = \"1h\"\nsplay = \"30m\"\nstatus_every = \"1h\"\n";
    for extra in [
        "inventory = \"2KiB\"\n",
        "inventory = 100\nengine_version = 4\nscan_every = \"12h\"\nwake_splay = \"5m\"\n",
        "inventory = 3\n",
    ] {
        let sc: ClientSettings = toml::from_str(&format!("{base}{extra}")).unwrap();
        let text = format!(
            "name = \"pc1.tokyo\"\nsite = \"tokyo\"\nplatform = \"windows\"\n\
             server = \"127.0.0.1:1\"\nserver_name = \"tokyo\"\ndata_dir = \"data/pc1\"\n\
             policy_verify_key = \"pki/policy-signing.pub\"\n{base}{extra}{}",
            tls("pc1.tokyo")
        );
        let path = net.dir().join("pc1.toml");
        std::fs::write(&path, text).unwrap();
        let cfg: ClientConfigFile = config::load(&path).unwrap();
        let built = setup::client(&cfg, Clock::wall(), Metrics::new()).unwrap();
        let Node::Client(c) = &built.node else { panic!("not a client") };
        let p = c.profile();
        assert_eq!(p.poll, Duration::from(sc.poll));
        assert_eq!(p.splay, Duration::from(sc.splay));
        assert_eq!(p.status_every, Duration::from(sc.status_every));
        assert_eq!(p.inventory.len() as u64, sc.inventory.bytes(), "{extra}");
        assert_eq!(p.engine_version, sc.engine_version, "{extra}");
        assert_eq!(p.scan_every, Duration::from(sc.scan_every), "{extra}");
        assert_eq!(p.wake_splay, Duration::from(sc.wake_splay), "{extra}");
    }
    // Without a size, the inventory is the client's description alone.
    let path = net.dir().join("pc1.toml");
    let text = std::fs::read_to_string(&path).unwrap().replace("inventory = 3\n", "");
    std::fs::write(&path, text).unwrap();
    let cfg: ClientConfigFile = config::load(&path).unwrap();
    let inventory = setup::inventory(&cfg);
    assert_eq!(inventory.as_bytes(), format!("os={}", std::env::consts::OS).as_bytes());
}

/// The master's defaults for the scenario keys it takes (`[master]
/// log_keep`, and `[local] stale_after` and `status_deadline`, which the
/// simulator gives the master too) are the scenario's.
#[test]
fn the_masters_defaults_are_the_scenarios() {
    let net = Net::new();
    let sc_master: Master = toml::from_str("site = \"hq\"\n").unwrap();
    let sc_local: LocalSettings = toml::from_str("sync_window = \"02:00-04:00\"\n").unwrap();
    let text = format!(
        "name = \"master\"\nsite = \"hq\"\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data/m\"\n\
         policy_signing_key = \"pki/policy-signing.key\"\n{}",
        tls("master")
    );
    let path = net.dir().join("master.toml");
    std::fs::write(&path, text).unwrap();
    let cfg: MasterConfigFile = config::load(&path).unwrap();
    let built = setup::master(&cfg, Clock::wall(), Metrics::new()).unwrap();
    let Node::Master(m) = &built.node else { panic!("not a master") };
    assert_eq!(m.config().log_keep, sc_master.log_keep as usize);
    assert_eq!(m.config().stale_after, Duration::from(sc_local.stale_after));
    assert_eq!(m.config().status_deadline, Duration::from(sc_local.status_deadline));
}

/// `tiersync init-config ROLE` mentions every schedule key the role's
/// file takes.
#[test]
fn init_config_documents_every_schedule_key() {
    let keys: [(Role, &[&str]); 3] = [
        (Role::Master, &["status_deadline", "stale_after", "log_keep"]),
        (
            Role::Local,
            &[
                "sync_window",
                "policy_check",
                "\"off\"",
                "checks_in_business_hours",
                "[business_hours]",
                "window",
                "days",
                "retry",
                "request_timeout",
                "stale_after",
                "log_keep",
                "sites",
            ],
        ),
        (
            Role::Client,
            &[
                "poll",
                "splay",
                "status_every",
                "wake_splay",
                "scan_every",
                "inventory",
                "engine_version",
            ],
        ),
    ];
    for (role, keys) in keys {
        let text = config::example(role);
        for key in keys {
            assert!(text.contains(key), "init-config {role} does not mention `{key}`");
        }
    }
}
