#!/usr/bin/env python3
"""Scale runs of issue 6, measured the same way every time.

Runs `tiersync run SCENARIO --strategy S --json --quiet` for the bundled
scale scenarios under `tiered` and `flat-conditional`, each in a process
of its own, and prints one Markdown table row per (scenario, strategy):
the median wall time the run reports (`wall_seconds`: building the model
and running it), delivered engine messages per second, the peak resident
memory of the process (from the kernel's rusage, the figure
`/usr/bin/time -v` prints), memory per simulated client, and the trace
hash.

A change for speed must not change a result, so each trace hash is held
against `benches/scale-hashes.txt`; a different one is reported and the
script exits with status 1. `--record` writes the hashes seen instead,
for a change that alters results on purpose.

Usage (from the repository root; standard library only):

    benches/scale.py                    # scale-100k, three runs each
    benches/scale.py --1m --reps 1      # also scale-1m (several minutes)
    benches/scale.py --bin target/release/tiersync --record

Not part of CI: the runs take minutes, and their times depend on the
machine. The results go in the README's Speed section and the notes.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HASHES = os.path.join(ROOT, "benches", "scale-hashes.txt")
STRATEGIES = ["tiered", "flat-conditional"]


def read_hashes():
    """The recorded hashes: {(scenario, strategy): hash}."""
    known = {}
    if not os.path.exists(HASHES):
        return known
    with open(HASHES, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            if len(parts) != 3:
                sys.exit(f"{HASHES}:{number}: expected `SCENARIO STRATEGY HASH`, got {line!r}")
            known[(parts[0], parts[1])] = parts[2]
    return known


def write_hashes(seen):
    """Writes `seen` over the recorded hashes, keeping those not run."""
    known = read_hashes()
    known.update(seen)
    with open(HASHES, "w", encoding="utf-8") as f:
        f.write("# Trace hashes of the scale runs, checked by benches/scale.py.\n")
        f.write("# SCENARIO STRATEGY HASH (the scenario's own seed)\n")
        for (scenario, strategy), digest in sorted(known.items()):
            f.write(f"{scenario} {strategy} {digest}\n")


def run_once(binary, scenario, strategy):
    """One run in a process of its own: (its JSON summary, peak RSS in bytes)."""
    cmd = [binary, "run", scenario, "--strategy", strategy, "--json", "--quiet"]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err)
        # wait4 reaps this child alone and gives its own rusage.
        _, status, usage = os.wait4(proc.pid, 0)
        code = os.waitstatus_to_exitcode(status)
        proc.returncode = code
        out.seek(0)
        err.seek(0)
        if code != 0:
            sys.exit(f"{' '.join(cmd)} exited with {code}:\n{err.read().decode(errors='replace')}")
        summary = json.load(out)
    # Linux reports ru_maxrss in KiB.
    return summary, usage.ru_maxrss * 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "tiersync"),
                        help="the tiersync binary (default: build this checkout in release)")
    parser.add_argument("--reps", type=int, default=3, help="runs of each (default 3)")
    parser.add_argument("--1m", dest="million", action="store_true",
                        help="also scenarios/scale-1m.toml (about 2 and 4 minutes a run here)")
    parser.add_argument("--record", action="store_true",
                        help="write the hashes seen to benches/scale-hashes.txt")
    args = parser.parse_args()
    if args.reps < 1:
        sys.exit("--reps must be at least 1")

    default_bin = os.path.join(ROOT, "target", "release", "tiersync")
    if os.path.abspath(args.bin) == default_bin:
        print("building tiersync (release)", file=sys.stderr)
        subprocess.run(["cargo", "build", "--release", "--locked", "--bin", "tiersync"],
                       cwd=ROOT, check=True)

    scenarios = ["scale-100k"] + (["scale-1m"] if args.million else [])
    known = read_hashes()
    seen = {}
    changed = []
    rows = []
    for name in scenarios:
        path = os.path.join(ROOT, "scenarios", f"{name}.toml")
        for strategy in STRATEGIES:
            walls, rss, summary = [], [], None
            for rep in range(args.reps):
                started = time.monotonic()
                summary, peak = run_once(args.bin, path, strategy)
                walls.append(summary["wall_seconds"])
                rss.append(peak)
                print(f"{name} {strategy} run {rep + 1}/{args.reps}: "
                      f"{summary['wall_seconds']:.2f} s ({time.monotonic() - started:.1f} s "
                      f"with start and output), {peak / 1e6:.0f} MB", file=sys.stderr)
                digest = summary["trace_hash"]
                if seen.get((name, strategy), digest) != digest:
                    sys.exit(f"{name} {strategy}: two runs gave different trace hashes")
                seen[(name, strategy)] = digest
            wall = statistics.median(walls)
            clients = summary["clients"]["total"]
            recorded = known.get((name, strategy))
            if recorded is None:
                verdict = "not recorded"
            elif recorded == seen[(name, strategy)]:
                verdict = "as recorded"
            else:
                verdict = f"CHANGED (recorded {recorded})"
                changed.append((name, strategy))
            rows.append([
                f"`{name}` {strategy}",
                f"{wall:.1f} s",
                f"{summary['delivered_messages'] / wall / 1e6:.1f} M",
                f"{max(rss) / 1e6:.0f} MB",
                f"{max(rss) / clients / 1e3:.1f} KB",
                f"{summary['events']:,}",
                f"`{seen[(name, strategy)]}` {verdict}",
            ])

    print(f"Median of {args.reps} run(s); `{os.path.relpath(args.bin, ROOT)}`; "
          f"{os.cpu_count()} cores.\n")
    print("| run | wall time | delivered msg/s | peak memory | per client | events | trace hash |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")

    if args.record:
        write_hashes(seen)
        print(f"\nrecorded in {os.path.relpath(HASHES, ROOT)}")
    elif changed:
        print("\ntrace hashes changed: " + ", ".join(f"{n} {s}" for n, s in changed))
        sys.exit(1)


if __name__ == "__main__":
    main()
