//! `tiersync run`: simulate one scenario under one strategy.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use tiersync_simnet::output::RunSummary;
use tiersync_simnet::scenario::{Scenario, Strategy};
use tiersync_simnet::world::{self, RunOptions};

use crate::progress::Progress;

/// The strategies, as written on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StrategyArg {
    /// The patent's design: local servers synchronise in a nightly window.
    Tiered,
    /// Every client polls the master and downloads everything each time.
    Flat,
    /// Every client polls the master; downloads only after a change.
    FlatConditional,
}

impl From<StrategyArg> for Strategy {
    fn from(s: StrategyArg) -> Strategy {
        match s {
            StrategyArg::Tiered => Strategy::Tiered,
            StrategyArg::Flat => Strategy::Flat,
            StrategyArg::FlatConditional => Strategy::FlatConditional,
        }
    }
}

/// Arguments of `tiersync run`.
#[derive(Args)]
pub struct RunArgs {
    /// The scenario file (TOML).
    pub scenario: PathBuf,
    /// Strategy to simulate [default: the scenario's `strategy`, else tiered].
    #[arg(long, value_enum)]
    pub strategy: Option<StrategyArg>,
    /// Seed [default: the scenario's `seed`].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Override a scenario setting, as in `tiersync compare` and `tiersync
    /// sweep` (repeatable): `--set client.poll=15m`. A sweep point's row
    /// equals `run --json` with the same `--set` values.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = super::compare::parse_override)]
    pub overrides: Vec<(String, String)>,
    /// Print exactly one JSON object on stdout instead of a summary.
    #[arg(long)]
    pub json: bool,
    /// Also write one CSV row per delivered message, and per message lost
    /// on a link or to a node that was down, to this file; its `wan_bytes`
    /// column adds up to `wan.bytes`.
    #[arg(long, value_name = "FILE.csv")]
    pub trace: Option<PathBuf>,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
    /// Count and hash on the simulating thread instead of a second one:
    /// the same results, more wall time; for measuring one core.
    #[arg(long)]
    pub single_thread: bool,
}

/// Runs one strategy with a progress bar and an optional trace file.
pub fn simulate(
    sc: &Scenario,
    opts: &RunOptions,
    quiet: bool,
    trace: Option<&std::path::Path>,
) -> anyhow::Result<tiersync_simnet::output::RunOutput> {
    let mut progress = Progress::new(opts.strategy.name(), sc.start, sc.end(), quiet);
    if let Some(path) = trace {
        let file = std::fs::File::create(path)
            .with_context(|| format!("cannot create trace file {}", path.display()))?;
        let mut w = csv::Writer::from_writer(file);
        w.write_record([
            "time_utc",
            "from",
            "from_site",
            "to",
            "to_site",
            "wan_links",
            "kind",
            "bytes",
            "reverse_bytes",
            "wan_bytes",
            "delivered",
            "outcome",
            "copy",
        ])?;
        progress = progress.with_trace(w);
    }
    let out = world::run(sc, opts, &mut progress);
    progress.finish().context("writing the trace file")?;
    Ok(out)
}

/// Runs the command.
pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let sc = super::compare::load(&args.scenario, &args.overrides)?;
    let strategy = args.strategy.map(Strategy::from).unwrap_or(sc.strategy);
    let opts = RunOptions {
        strategy,
        seed: args.seed,
        keep_detail: false,
        single_thread: args.single_thread,
    };
    let out = simulate(&sc, &opts, args.quiet, args.trace.as_deref())?;
    let text = if args.json {
        serde_json::to_string_pretty(&out.summary)? + "\n"
    } else {
        human(&out.summary)
    };
    write_stdout(&text)?;
    Ok(ExitCode::SUCCESS)
}

/// Writes to stdout; a closed pipe (`| head`) ends quietly, not in a panic.
pub fn write_stdout(text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}

/// Bytes in binary units, for people.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{n} B") } else { format!("{v:.1} {}", UNITS[u]) }
}

/// A readable summary of one run.
pub fn human(s: &RunSummary) -> String {
    let p = &s.propagation_seconds;
    let mut out = String::new();
    out += &format!("{} — {} (seed {})\n", s.scenario, s.strategy, s.seed);
    out += &format!(
        "  simulated {:.1} days in {:.2} s wall, {} events, {} messages delivered\n",
        s.simulated_seconds / 86_400.0,
        s.wall_seconds,
        s.events,
        s.delivered_messages
    );
    out += &format!(
        "  WAN: {} in {} messages; {} in business hours; peak utilisation {:.1}%\n",
        bytes(s.wan.bytes),
        s.wan.messages,
        bytes(s.wan.business_hours_bytes),
        s.wan.peak_utilization * 100.0
    );
    out += &format!(
        "  master: {} in / {} out, {} / {} messages\n",
        bytes(s.master.bytes_in),
        bytes(s.master.bytes_out),
        s.master.messages_in,
        s.master.messages_out
    );
    out += &format!(
        "  propagation: p50 {} p90 {} p99 {} max {} over {} (change, client) pairs; \
         {} never applied\n",
        dur(p.p50),
        dur(p.p90),
        dur(p.p99),
        dur(p.max),
        p.count,
        p.never_applied
    );
    let c = &s.changes;
    if c.deferred + c.dropped + c.unassigned > 0 {
        out += &format!(
            "  changes: {} in the scenario; {} made late (their local server was down), {} \
             dropped (it stayed down), {} without a revision at the end\n",
            c.total, c.deferred, c.dropped, c.unassigned
        );
    }
    out += &format!("  staleness: {:.0} client-hours\n", s.staleness_client_hours);
    out += &format!(
        "  clients: {} total, {} online at the end, {} counted at the master\n",
        s.clients.total, s.clients.online_at_end, s.clients.reporting_at_master
    );
    out += &format!("  trace hash {}\n", s.trace_hash);
    out
}

/// Seconds as the largest sensible unit.
pub fn dur(secs: f64) -> String {
    if secs >= 86_400.0 {
        format!("{:.1}d", secs / 86_400.0)
    } else if secs >= 3600.0 {
        format!("{:.1}h", secs / 3600.0)
    } else if secs >= 60.0 {
        format!("{:.1}m", secs / 60.0)
    } else {
        format!("{secs:.1}s")
    }
}
