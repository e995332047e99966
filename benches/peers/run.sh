#!/usr/bin/env bash
# Flat polling in tiersync, ns-3 and SimPy, side by side in one run.
#
#   benches/peers/run.sh [N] [P] [D]     defaults: 100000 1h 7d
#
# N clients poll one server every P (uniform splay of one P) for D of
# simulated time over a link with a fixed one-way latency (LATENCY, 50ms).
# Creates benches/peers/.venv, installs the pinned peers, builds tiersync in
# release if needed, runs the three one after the other, checks that they
# count the same polls, prints a markdown table and writes RESULTS.md.
# Not part of CI: the peers take minutes to install.
#
# Environment: LATENCY (50ms), SPLAY (= P), SEED (1), PYTHON (python3),
# TIERSYNC (a tiersync binary; default: build this checkout in release),
# TIMEOUT_TIERSYNC (900 s), TIMEOUT_NS3 (1800 s), TIMEOUT_SIMPY (3600 s),
# TIMEOUT_INSTALL (1800 s), RESULTS (RESULTS.md beside this script; set
# it to "" to skip writing it).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
n="${1:-100000}"
poll="${2:-1h}"
dur="${3:-7d}"
lat="${LATENCY:-50ms}"
splay="${SPLAY:-$poll}"
seed="${SEED:-1}"
results="${RESULTS-$here/RESULTS.md}"
out="$here/out"
venv="$here/.venv"
mkdir -p "$out"
rm -f "$out"/*.json "$out"/*.time "$out"/*.rc "$out"/*.err

say() { printf '== %s\n' "$*" >&2; }

# The machine, first: the load average shows whether others shared it.
{
    echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "- machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1)," \
        "$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo) memory"
    echo "- load average when the run started: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- $(uname -sr); $("${PYTHON:-python3}" --version 2>&1)"
} > "$out/machine.md"

# The peers, in a virtual environment; reinstalled only when
# requirements.txt changes.
if [ ! -x "$venv/bin/python" ]; then
    say "creating $venv"
    "${PYTHON:-python3}" -m venv "$venv"
fi
py="$venv/bin/python"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    say "installing the peers (requirements.txt; a few minutes)"
    timeout "${TIMEOUT_INSTALL:-1800}" "$py" -m pip install --quiet --upgrade pip
    timeout "${TIMEOUT_INSTALL:-1800}" "$py" -m pip install --quiet -r "$here/requirements.txt"
    echo "$want" > "$stamp"
fi
echo "- peers: $("$py" -m pip freeze | grep -iE '^(simpy|ns3|cppyy)==' | paste -sd' ')" \
    >> "$out/machine.md"

# tiersync, in release.
if [ -n "${TIERSYNC:-}" ]; then
    ts="$TIERSYNC"
else
    say "building tiersync (release)"
    (cd "$root" && timeout "${TIMEOUT_INSTALL:-1800}" cargo build --release --locked --quiet)
    ts="$root/target/release/tiersync"
fi
echo "- tiersync: $("$ts" --version) at $(cd "$root" && git rev-parse --short HEAD 2>/dev/null \
    || echo '?')" >> "$out/machine.md"

# Message sizes from tiersync's own frames, for the peers' byte counts.
model=(--poll "$poll" --splay "$splay" --latency "$lat")
sizes="$("$py" "$here/harness.py" calibrate --tiersync "$ts" "${model[@]}" --dir "$out")"
field() { echo "$sizes" | "$py" -c "import json,sys; print(*json.load(sys.stdin)['$1'], sep=',')"; }
pb="$(field poll_bytes)"
rb="$(field reply_bytes)"
say "message sizes: polls $pb, replies $rb (wire bytes, first,next)"

# Runs one tool under a time limit and /usr/bin/time -v; never fails the
# script, so that a hung or broken peer still leaves a row in the table.
measure() {
    local stem="$1" limit="$2"
    shift 2
    say "running $stem (limit ${limit} s)"
    local rc=0
    timeout --kill-after=10 "$limit" /usr/bin/time -v -o "$out/$stem.time" "$@" \
        > "$out/$stem.out" 2> "$out/$stem.err" || rc=$?
    echo "$rc" > "$out/$stem.rc"
    [ "$rc" = 0 ] || say "$stem exited with status $rc (124: timed out); see $out/$stem.err"
}

peer_args=(--clients "$n" --poll "$poll" --splay "$splay" --duration "$dur" --latency "$lat"
    --poll-bytes "$pb" --reply-bytes "$rb" --seed "$seed")

# tiersync: the real engine under the simulator, on a generated scenario.
"$py" "$here/harness.py" scenario --clients "$n" "${model[@]}" --duration "$dur" \
    --seed "$seed" > "$out/scenario.toml"
"$ts" check "$out/scenario.toml" >&2
measure tiersync "${TIMEOUT_TIERSYNC:-900}" \
    "$ts" run "$out/scenario.toml" --strategy flat-conditional --json --quiet
if [ "$(cat "$out/tiersync.rc")" = 0 ]; then
    "$py" "$here/harness.py" tiersync-line "$out/tiersync.out" "${model[@]}" --duration "$dur" \
        > "$out/tiersync.json"
fi

# ns-3 (C++ model compiled by cling) and SimPy.
measure ns3 "${TIMEOUT_NS3:-1800}" "$py" "$here/ns3_model.py" "${peer_args[@]}"
grep '^{' "$out/ns3.out" > "$out/ns3.json" || true
measure simpy "${TIMEOUT_SIMPY:-3600}" "$py" "$here/simpy_model.py" "${peer_args[@]}"
grep '^{' "$out/simpy.out" > "$out/simpy.json" || true

# Every tool's JSON line, then the checks and the table.
echo "- load average when the run ended: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/machine.md"
cat "$out/tiersync.json" "$out/ns3.json" "$out/simpy.json" 2>/dev/null || true
echo
"$py" "$here/harness.py" table --clients "$n" "${model[@]}" --duration "$dur" --dir "$out" \
    --sizes "$sizes" --machine "$out/machine.md" ${results:+--results "$results"}
