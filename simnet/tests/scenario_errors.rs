//! Every kind of scenario error names the file, line and column, the key,
//! what was expected and, for a misspelling, the nearest valid name.
//!
//! Each test breaks one thing in the bundled `figure-1.toml` and asserts on
//! the whole message, since the message is the user interface here.

use tiersync_simnet::scenario::{Problem, Scenario, ScenarioError};
use tiersync_simnet::units::Span;

const FIGURE_1: &str = include_str!("../../scenarios/figure-1.toml");

/// Loads figure 1 with the first `from` replaced by `to`; the error it gives.
fn error_after(from: &str, to: &str) -> ScenarioError {
    assert!(FIGURE_1.contains(from), "figure-1.toml has no `{from}`");
    let text = FIGURE_1.replacen(from, to, 1);
    match Scenario::from_str_named(&text, "figure-1.toml") {
        Ok(_) => panic!("replacing `{from}` by `{to}` should be rejected"),
        Err(e) => e,
    }
}

fn message_after(from: &str, to: &str) -> String {
    error_after(from, to).to_string()
}

fn overrides(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

#[allow(clippy::result_large_err)]
fn load_with(pairs: &[(&str, &str)]) -> Result<Scenario, ScenarioError> {
    Scenario::from_str_with_overrides(FIGURE_1, "figure-1.toml", &overrides(pairs))
}

#[test]
fn unknown_key_suggests_the_nearest() {
    assert_eq!(
        message_after("splay = \"30m\"", "spaly = \"30m\""),
        "figure-1.toml:12:1: unknown key `spaly` in [client]; did you mean `splay`?"
    );
    assert_eq!(
        message_after("bandwidth = \"50Mbit/s\"", "bandwith = \"50Mbit/s\""),
        "figure-1.toml:29:9: unknown key `bandwith` in `wan` of [[site]] \"a\"; \
         did you mean `bandwidth`?"
    );
    assert_eq!(
        message_after("[master]", "[mastr]"),
        "figure-1.toml:7:2: unknown key `mastr` in the top level; did you mean `master`?"
    );
}

#[test]
fn unknown_key_without_a_near_name_lists_the_valid_ones() {
    assert_eq!(
        message_after("[local]\n", "[local]\nzzz = 1\n"),
        "figure-1.toml:17:1: unknown key `zzz` in [local]; expected one of `sync_window`, \
         `policy_check`, `checks_in_business_hours`, `stale_after`, `retry`, `status_deadline`"
    );
}

#[test]
fn bad_unit_explains_the_accepted_forms() {
    assert_eq!(
        message_after("poll = \"1h\"", "poll = \"1hr\""),
        "figure-1.toml:11:8: bad value for `poll` in [client]: invalid duration `1hr`: \
         unknown unit `hr`; write a number and a unit (ns, us, ms, s, m or min, h, d, w), \
         parts may be combined and decimals are allowed: 90ms, 30s, 1h30m, 2.5h"
    );
    let bare = message_after("poll = \"1h\"", "poll = 60");
    assert!(
        bare.starts_with(
            "figure-1.toml:11:8: bad value for `poll` in [client]: invalid duration `60`: \
             missing unit: write e.g. 30s;"
        ),
        "{bare}"
    );
    let rate = message_after("\"10Mbit/s\"", "\"10 megabits\"");
    assert!(
        rate.starts_with(
            "figure-1.toml:43:21: bad value for `bandwidth` in `wan` of [[site]] \"c\": \
             invalid bandwidth `10 megabits`: unknown unit `megabits`;"
        ),
        "{rate}"
    );
}

#[test]
fn unknown_time_zone_suggests_a_close_one() {
    let err = error_after("\"Europe/London\"", "\"Europe/Londn\"");
    assert_eq!(
        err.to_string(),
        "figure-1.toml:27:12: `timezone` in [[site]] \"a\": unknown time zone \
         `Europe/Londn`; did you mean `Europe/London`?"
    );
    assert!(matches!(err, ScenarioError::Invalid { problem: Problem::UnknownTimeZone { .. }, .. }));
}

#[test]
fn unknown_parent_is_named() {
    assert_eq!(
        message_after("name = \"b\"\nparent = \"hq\"", "name = \"b\"\nparent = \"hqq\""),
        "figure-1.toml:33:10: `parent` in [[site]] \"b\": no site is named `hqq`; \
         did you mean `hq`?"
    );
}

#[test]
fn parent_cycle_shows_the_loop() {
    assert_eq!(
        message_after("name = \"hq\"\n", "name = \"hq\"\nparent = \"a\"\n"),
        "figure-1.toml:22:10: `parent` in [[site]] \"hq\": the parent links form a cycle: \
         hq -> a -> hq"
    );
}

#[test]
fn duplicate_site_points_at_the_first() {
    assert_eq!(
        message_after("name = \"c\"", "name = \"a\""),
        "figure-1.toml:39:8: `name` in [[site]] \"a\": site `a` is already defined on line 25"
    );
}

#[test]
fn second_root_and_misplaced_master() {
    assert_eq!(
        message_after("name = \"c\"\nparent = \"hq\"\n", "name = \"c\"\n"),
        "figure-1.toml:39:8: `name` in [[site]] \"c\": site `c` has no `parent`, but `hq` is \
         already the root; only the master's site may be without a parent"
    );
    assert_eq!(
        message_after("site = \"hq\"\n", "site = \"a\"\n"),
        "figure-1.toml:8:8: `site` in [master]: the master must be at the root site `hq` \
         (the one without a parent), not at `a`"
    );
}

#[test]
fn change_for_unknown_policy() {
    assert_eq!(
        message_after("policy = \"firewall\"", "policy = \"firewal\""),
        "figure-1.toml:65:10: `policy` in [[change]] #2: no policy has id `firewal`, and the \
         change gives no `platforms` to create it; did you mean `firewall`?"
    );
}

#[test]
fn change_creating_a_policy_is_accepted() {
    let text = FIGURE_1.replacen(
        "policy = \"firewall\"",
        "policy = \"usb-lockdown\"\nplatforms = [\"windows\"]",
        1,
    );
    let scenario = Scenario::from_str_named(&text, "figure-1.toml").unwrap();
    assert!(scenario.changes[1].creates_policy);
}

#[test]
fn change_outside_the_run() {
    assert_eq!(
        message_after("at = \"2026-03-03T14:00:00Z\"", "at = \"2026-03-10T00:00:00Z\""),
        "figure-1.toml:58:6: `at` in [[change]] #1: 2026-03-10T00:00:00Z is outside the run, \
         which goes from 2026-03-02T00:00:00Z to 2026-03-09T00:00:00Z"
    );
}

#[test]
fn change_origin_must_have_a_local_server() {
    assert_eq!(
        message_after("origin = \"b\"", "origin = \"hq2\""),
        "figure-1.toml:67:10: `origin` in [[change]] #2: no site is named `hq2`; \
         did you mean `hq`?"
    );
    let text = FIGURE_1.replacen("clients = { windows = 800 }\n", "", 1);
    let text = text.replacen("origin = \"b\"", "origin = \"c\"", 1);
    let err = Scenario::from_str_named(&text, "figure-1.toml").unwrap_err();
    assert_eq!(
        err.to_string(),
        "figure-1.toml:66:10: `origin` in [[change]] #2: site `c` has no local server \
         (it has no clients and relays for no site that has one, or `local_servers = 0`)"
    );
}

#[test]
fn missing_wan_on_a_child_site() {
    let wan = "wan = { bandwidth = \"20Mbit/s\", latency = \"170ms\", background = \"office\" }\n";
    assert_eq!(
        message_after(wan, ""),
        "figure-1.toml:31:1: `wan` in [[site]] \"b\": site `b` has parent `hq`, so it needs \
         a `wan` table with at least `bandwidth` and `latency`"
    );
}

#[test]
fn bad_fault_kind_suggests_the_nearest() {
    let err = error_after("kind = \"partition\"", "kind = \"partion\"");
    assert_eq!(
        err.to_string(),
        "figure-1.toml:74:8: `kind` in [[fault]] #1 (partion): unknown fault kind `partion`; \
         kinds are `partition`, `loss`, `duplicate`, `crash`, `skew`; did you mean `partition`?"
    );
    assert!(matches!(
        err,
        ScenarioError::Invalid { problem: Problem::UnknownFaultKind { .. }, .. }
    ));
}

#[test]
fn fault_fields_depend_on_the_kind() {
    assert_eq!(
        message_after("to = \"2026-03-04T09:00:00Z\"", "to = \"2026-03-04T09:00:00Z\"\nrate = 0.5"),
        "figure-1.toml:78:1: unknown key `rate` in [[fault]] #1 (partition); \
         expected one of `site`, `from`, `to`"
    );
    assert_eq!(
        message_after("to = \"2026-03-04T09:00:00Z\"", ""),
        "figure-1.toml:73:1: missing key `to` in [[fault]] #1 (partition); expected an RFC 3339 \
         time with a UTC offset, such as 2026-03-02T00:00:00Z"
    );
    assert_eq!(
        message_after("kind = \"partition\"\n", ""),
        "figure-1.toml:73:1: missing key `kind` in [[fault]] #1; expected one of `partition`, \
         `loss`, `duplicate`, `crash`, `skew`"
    );
}

#[test]
fn fault_on_the_root_uplink() {
    assert_eq!(
        message_after("site = \"c\"\nfrom", "site = \"hq\"\nfrom"),
        "figure-1.toml:75:8: `site` in [[fault]] #1 (partition): site `hq` is the root and \
         has no uplink for a `partition` fault"
    );
}

#[test]
fn other_values_and_syntax() {
    assert_eq!(
        message_after("kind = \"current\"", "kind = \"curent\""),
        "figure-1.toml:71:8: bad value for `kind` in [[status_query]] #1: unknown value \
         `curent`, expected `current` or `historical`; did you mean `current`?"
    );
    assert_eq!(
        message_after("seed = 1\n", ""),
        "figure-1.toml:1:1: missing key `seed` in the top level; expected a whole number ≥ 0, \
         such as 1"
    );
    assert_eq!(
        message_after("seed = 1", "seed = = 1"),
        "figure-1.toml:3:8: invalid TOML: extra `=`, expected nothing"
    );
    let start = message_after("\"2026-03-02T00:00:00Z\"", "\"2026-03-02T00:00:00\"");
    assert!(
        start.starts_with(
            "figure-1.toml:4:9: bad value for `start` in the top level: \
             `2026-03-02T00:00:00` is not an RFC 3339 time with a UTC offset"
        ),
        "{start}"
    );
}

#[test]
fn overrides_replace_values() {
    let s = load_with(&[
        ("client.poll", "15m"),
        ("local.policy_check", "off"),
        ("seed", "7"),
        ("duration", "\"5d\""),
        ("client.offline.share", "0.25"),
        ("client.offline.off", "2d"),
        ("client.offline.every", "7d"),
        ("strategy", "flat-conditional"),
    ])
    .unwrap();
    assert_eq!(s.client.poll, Span::from_mins(15));
    assert_eq!(s.local.policy_check, None);
    assert_eq!(s.seed, 7);
    assert_eq!(s.duration, Span::from_secs(5 * 86_400));
    let offline = s.client.offline.unwrap();
    assert_eq!(offline.share.value(), 0.25);
    assert_eq!(s.strategy.name(), "flat-conditional");

    let s = load_with(&[("local.policy_check", "6h"), ("master.log_keep", "10")]).unwrap();
    assert_eq!(s.local.policy_check, Some(Span::from_secs(6 * 3600)));
    assert_eq!(s.master.log_keep, 10);
}

#[test]
fn unknown_override_key_suggests_the_nearest() {
    let err = load_with(&[("client.pol", "15m")]).unwrap_err();
    assert_eq!(err.to_string(), "override `client.pol`: no such key; did you mean `client.poll`?");
    let err = load_with(&[("site.a.wan.latency", "10ms")]).unwrap_err();
    assert!(matches!(err, ScenarioError::UnknownOverride { .. }), "{err}");
}

#[test]
fn bad_override_values_name_the_override() {
    let err = load_with(&[("client.poll", "15x")]).unwrap_err();
    assert!(
        err.to_string().starts_with(
            "override `client.poll=15x`: bad value for `poll` in [client]: \
             invalid duration `15x`: unknown unit `x`;"
        ),
        "{err}"
    );
    let err = load_with(&[("master.site", "a")]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "override `master.site=a`: `site` in [master]: the master must be at the root site \
         `hq` (the one without a parent), not at `a`"
    );
}

#[test]
fn wrong_types_are_named_in_words() {
    assert_eq!(
        message_after("seed = 1\n", "seed = \"one\"\n"),
        "figure-1.toml:3:8: bad value for `seed` in the top level: expected a whole number ≥ 0, \
         found the string \"one\""
    );
    assert_eq!(
        message_after("seed = 1\n", "seed = -3\n"),
        "figure-1.toml:3:8: bad value for `seed` in the top level: expected a whole number ≥ 0, \
         found -3"
    );
    assert_eq!(
        message_after("windows = 800", "windows = \"many\""),
        "figure-1.toml:42:23: bad value for `windows` in `clients` of [[site]] \"c\": expected a \
         whole number from 0 to 4,294,967,295, found the string \"many\""
    );
    assert_eq!(
        message_after("platforms = [\"windows\"]", "platforms = \"windows\""),
        "figure-1.toml:53:13: bad value for `platforms` in [[policy]] \"firewall\": expected a \
         list in square brackets, such as [\"a\", \"b\"], found the string \"windows\""
    );
    let poll = message_after("poll = \"1h\"", "poll = true");
    assert!(poll.ends_with("found `true`"), "{poll}");
    // No message speaks serde's type names.
    for (from, to) in [
        ("seed = 1\n", "seed = 1.5\n"),
        ("id = \"firewall\"", "id = 5"),
        ("platforms = [\"windows\"]", "platforms = { windows = 1 }"),
        ("windows = 800", "windows = true"),
    ] {
        let m = message_after(from, to);
        for word in ["u64", "u32", "a sequence", "a map", "invalid type"] {
            assert!(!m.contains(word), "`{word}` in: {m}");
        }
    }
}

#[test]
fn a_duplicate_key_is_named() {
    assert_eq!(
        message_after("heuristics = true", "heuristics = true, scan = \"weekly\""),
        "figure-1.toml:49:47: invalid TOML: duplicate key `scan`: a key may be given only once \
         in a table; remove one of them"
    );
    let header = message_after("origin = \"hq\"", "origin = \"hq\"\norigin = \"b\"");
    assert!(header.contains("duplicate key `origin`"), "{header}");
}

#[test]
fn a_missing_key_says_what_it_takes() {
    assert_eq!(
        message_after("timezone = \"Europe/London\"\n", ""),
        "figure-1.toml:24:1: missing key `timezone` in [[site]] \"a\"; expected an IANA time \
         zone name such as \"Europe/London\""
    );
    let window = message_after("sync_window = \"02:00-04:00\"", "");
    assert!(window.ends_with("expected a local time-of-day window such as \"02:00-04:00\""));
    let bandwidth = message_after("bandwidth = \"10Mbit/s\", ", "");
    assert!(bandwidth.ends_with("expected a bandwidth such as \"50Mbit/s\""), "{bandwidth}");
}

#[test]
fn every_key_error_of_a_file_is_reported() {
    let text = FIGURE_1
        .replacen("seed = 1\n", "seed = \"one\"\n", 1)
        .replacen("splay = \"30m\"", "spaly = \"30m\"", 1)
        .replacen("timezone = \"Asia/Tokyo\"\n", "", 1)
        .replacen("loss = 0.002", "loss = 2", 1)
        .replacen("kind = \"partition\"", "kind = \"partition\"\nrate = 3", 1)
        .replacen("policy = \"firewall\"", "policy = \"firewall\"\nurgent = \"yes\"", 1);
    let err = Scenario::from_str_named(&text, "figure-1.toml").unwrap_err();
    let all = err.errors();
    let lines: Vec<String> = all.iter().map(|e| e.to_string()).collect();
    assert_eq!(lines.len(), 6, "{err}");
    assert!(lines[0].starts_with("figure-1.toml:3:8: bad value for `seed`"), "{err}");
    // The misspelt key is reported once, as unknown with its suggestion,
    // not also as a missing `splay`.
    assert!(lines[1].starts_with("figure-1.toml:12:1: unknown key `spaly`"), "{err}");
    assert!(lines[2].contains("missing key `timezone` in [[site]] \"b\""), "{err}");
    assert!(lines[3].contains("bad value for `loss` in `wan` of [[site]] \"c\""), "{err}");
    assert!(lines[4].contains("bad value for `urgent` in [[change]] #2"), "{err}");
    assert!(lines[5].contains("unknown key `rate` in [[fault]] #1 (partition)"), "{err}");
    // In file order, then their count.
    let locations: Vec<(usize, usize)> = lines
        .iter()
        .map(|l| {
            let mut parts = l.split(':').skip(1);
            let line = parts.next().unwrap().parse().unwrap();
            (line, parts.next().unwrap().parse().unwrap())
        })
        .collect();
    assert!(locations.windows(2).all(|w| w[0] < w[1]), "{locations:?}");
    assert!(err.to_string().ends_with("\n6 errors"), "{err}");
    assert!(matches!(err, ScenarioError::Several { .. }));
}

#[test]
fn one_error_stays_one_error() {
    let err = error_after("splay = \"30m\"", "spaly = \"30m\"");
    assert!(matches!(err, ScenarioError::UnknownKey { .. }), "{err}");
    assert_eq!(err.errors().len(), 1);
}

#[test]
fn syntax_errors_are_reported_one_per_line() {
    let text = FIGURE_1.replacen("seed = 1", "seed = = 1", 1).replacen(
        "name = \"figure-1\"",
        "name = \"figure-1\"\nname = \"x\"",
        1,
    );
    let err = Scenario::from_str_named(&text, "figure-1.toml").unwrap_err();
    let lines: Vec<String> = err.errors().iter().map(|e| e.to_string()).collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(lines[0].contains("duplicate key `name`"), "{err}");
    assert!(lines[1].starts_with("figure-1.toml:4:8: invalid TOML: extra `=`"), "{err}");
}

/// Figure 1 with `extra` appended (faults) and the first `from` replaced.
#[allow(clippy::result_large_err)]
fn load_edited(from: &str, to: &str, extra: &str) -> Result<Scenario, ScenarioError> {
    assert!(FIGURE_1.contains(from), "figure-1.toml has no `{from}`");
    let text = format!("{}\n{extra}", FIGURE_1.replacen(from, to, 1));
    Scenario::from_str_named(&text, "figure-1.toml")
}

/// The key and problem of an `Invalid` error.
fn invalid(result: Result<Scenario, ScenarioError>) -> (String, Problem) {
    match result {
        Err(ScenarioError::Invalid { key, problem, .. }) => (key, problem),
        Err(other) => panic!("expected an invalid value, got {other}"),
        Ok(_) => panic!("expected an error"),
    }
}

fn skew(site: &str, who: &str) -> String {
    format!("[[fault]]\nkind = \"skew\"\nsite = \"{site}\"\n{who}\noffset = \"-90s\"\n")
}

fn crash_local(site: &str) -> String {
    format!(
        "[[fault]]\nkind = \"crash\"\nsite = \"{site}\"\nnode = \"local\"\n\
         at = \"2026-03-05T09:00:00Z\"\nrestart_after = \"1h\"\n"
    )
}

/// A figure 1 where `a` hangs below a regional hub `eu` without clients.
#[allow(clippy::result_large_err)]
fn with_hub(extra: &str) -> Result<Scenario, ScenarioError> {
    let hub = "[[site]]\nname = \"eu\"\nparent = \"hq\"\ntimezone = \"Europe/Paris\"\n\
               wan = { bandwidth = \"100Mbit/s\", latency = \"70ms\" }\n\n[[site]]\nname = \"a\"\n\
               parent = \"eu\"";
    load_edited("[[site]]\nname = \"a\"\nparent = \"hq\"", hub, extra)
}

#[test]
fn local_faults_follow_the_sites_that_run_a_local_server() {
    // A relay hub runs a local server, so it may crash or be skewed.
    let s = with_hub(&format!("{}{}", crash_local("eu"), skew("eu", "node = \"local\""))).unwrap();
    assert!(s.runs_local_server(s.site_index("eu").unwrap()));
    // The master's site runs one when it has clients...
    let clients = "timezone = \"America/New_York\"\nclients = { linux = 10 }";
    let s = load_edited("timezone = \"America/New_York\"", clients, &crash_local("hq")).unwrap();
    assert!(s.runs_local_server(s.root_index()));
    // ...and not without: a crash of it would do nothing, so it is refused.
    let (key, problem) = invalid(load_edited("", "", &crash_local("hq")));
    assert_eq!(key, "node");
    assert_eq!(problem, Problem::NoLocalServer { site: "hq".into() });
    // A site with `local_servers = 0` has none either.
    let none = "clients = { windows = 800 }\nlocal_servers = 0";
    let (_, problem) = invalid(load_edited("clients = { windows = 800 }", none, &crash_local("c")));
    assert_eq!(problem, Problem::NoLocalServer { site: "c".into() });
}

#[test]
fn several_local_servers_per_site_are_refused() {
    let two = "clients = { windows = 800 }\nlocal_servers = 2";
    let err = load_edited("clients = { windows = 800 }", two, "").unwrap_err();
    assert!(
        err.to_string().contains(
            "`local_servers` in [[site]] \"c\": site `c` asks for 2 local servers; the \
             simulator runs at most one per site"
        ),
        "{err}"
    );
}

#[test]
fn skew_names_the_master_or_one_client() {
    let s = load_edited(
        "",
        "",
        &format!("{}{}", skew("hq", "node = \"master\""), skew("b", "client = 2899")),
    )
    .unwrap();
    use tiersync_simnet::scenario::{Fault, SkewTarget};
    let targets: Vec<SkewTarget> = s
        .faults
        .iter()
        .filter_map(|f| if let Fault::Skew(k) = f { Some(k.node) } else { None })
        .collect();
    assert_eq!(targets, [SkewTarget::Master, SkewTarget::Client(2899)]);

    let (key, problem) = invalid(load_edited("", "", &skew("b", "node = \"master\"")));
    assert_eq!(key, "node");
    assert_eq!(problem, Problem::MasterElsewhere { site: "b".into(), master: "hq".into() });
    let (key, problem) = invalid(load_edited("", "", &skew("b", "client = 2900")));
    assert_eq!(key, "client");
    assert_eq!(problem, Problem::NoSuchSiteClient { site: "b".into(), client: 2900, count: 2900 });
    let (_, problem) = invalid(load_edited("", "", &skew("b", "node = \"clients\"\nclient = 1")));
    assert_eq!(problem, Problem::NodeAndClient);
    let (_, problem) = invalid(load_edited("", "", &skew("b", "")));
    assert_eq!(problem, Problem::SkewWithoutNode);
    let err = load_edited("", "", &skew("b", "node = \"mastr\"")).unwrap_err();
    assert!(err.to_string().contains("did you mean `master`?"), "{err}");
}

#[test]
fn client_behaviour_keys_default_to_the_documented_values() {
    let s = load_with(&[]).unwrap();
    assert_eq!(s.client.threat_rate.value(), 0.001);
    assert_eq!(s.client.scan_every, Span::from_secs(86_400));
    assert_eq!(s.client.wake_splay, Span::from_secs(60));
    let s = load_with(&[("client.wake_splay", "5m"), ("client.threat_rate", "0.5")]).unwrap();
    assert_eq!(s.client.wake_splay, Span::from_mins(5));
    assert_eq!(s.client.threat_rate.value(), 0.5);
}

/// Figure 1 with `n` more policies `p0`, `p1`, ... before its changes.
#[allow(clippy::result_large_err)]
fn with_policies(n: usize, extra: &str) -> Result<Scenario, ScenarioError> {
    let policies: String = (0..n)
        .map(|i| format!("[[policy]]\nid = \"p{i}\"\nplatforms = [\"windows\"]\n\n"))
        .collect();
    load_edited("[[change]]\n", &format!("{policies}[[change]]\n"), extra)
}

/// The simulator's metering keeps one bit per policy and per platform in
/// a `u64`: a 65th would alias the first and corrupt propagation and
/// staleness, so the loader refuses it, naming the file and the count.
#[test]
fn more_than_64_policies_or_platforms_are_refused() {
    // Figure 1's two policies and 62 more are 64: accepted.
    assert!(with_policies(62, "").is_ok());
    // One more in the file is refused at its `id`.
    let err = with_policies(63, "").unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("figure-1.toml:")
            && text.ends_with(
                "`id` in [[policy]] \"p62\": the scenario has 65 distinct policies (its \
                 [[policy]] ids and those its [[change]]s create); the simulator tracks at \
                 most 64, one bit each"
            ),
        "{text}"
    );
    assert_eq!(invalid(Err(err)).1, Problem::TooManyPolicies { count: 65, max: 64 });
    // A change that creates the 65th counts too.
    let create = "[[change]]\nat = \"2026-03-04T00:00:00Z\"\npolicy = \"new\"\n\
                  platforms = [\"linux\"]\n";
    let (key, problem) = invalid(with_policies(62, create));
    assert_eq!(key, "policy");
    assert_eq!(problem, Problem::TooManyPolicies { count: 65, max: 64 });

    // Platforms: figure 1's clients run windows, macos and linux; site c
    // with 61 more runs 64 in all, with 62 more 65.
    #[allow(clippy::result_large_err)]
    fn platforms(n: usize) -> Result<Scenario, ScenarioError> {
        let more: String = (0..n).map(|i| format!(", os{i:02} = 1")).collect();
        let clients = format!("clients = {{ windows = 800{more} }}");
        load_edited("clients = { windows = 800 }", &clients, "")
    }
    assert!(platforms(61).is_ok());
    let err = platforms(62).unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("figure-1.toml:")
            && text.contains(
                "the scenario's clients run 65 distinct platforms; the simulator tracks at \
                 most 64, one bit each"
            ),
        "{text}"
    );
    assert_eq!(invalid(Err(err)).1, Problem::TooManyPlatforms { count: 65, max: 64 });
}
