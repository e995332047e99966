#!/usr/bin/env bash
# Builds tiersync with profile-guided optimisation (PGO) and prints the
# binary's path.
#
# Why: the simulator's event loop is branchy code whose time is spread
# thinly over many functions (README, "Speed"). Telling LLVM which branches
# and calls a real run takes lets it lay the hot paths out together and
# inline along them. On this project's 2-core machine that took about 7% off
# the wall time of scale runs, with the same trace hashes: PGO changes how
# the code is arranged, never what it computes.
#
# Steps: an instrumented release build (target/pgo-gen), training runs of
# bundled scenarios with it, a merge of their profiles with the
# toolchain's llvm-profdata, and a release build that uses the merged
# profile (target/pgo). Both builds compile every dependency afresh in
# their own target directory: three to four minutes each here. Needs the
# rustup component llvm-tools, which the script adds when it is missing.
#
# Usage (from anywhere):
#   benches/pgo.sh                       # builds target/pgo/release/tiersync
#   benches/scale.py --bin target/pgo/release/tiersync
#   TIERSYNC=target/pgo/release/tiersync benches/peers/run.sh
#
# Not part of CI; the plain `cargo build --release` binary stays the one
# the README's commands use.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
say() { printf '== %s\n' "$*" >&2; }

# llvm-profdata of the toolchain's own LLVM: a system one of another LLVM
# version cannot read the profiles rustc writes.
host="$(rustc -vV | sed -n 's/^host: //p')"
profdata="$(rustc --print sysroot)/lib/rustlib/$host/bin/llvm-profdata"
if [ ! -x "$profdata" ]; then
    say "adding the rustup component llvm-tools (for llvm-profdata)"
    rustup component add llvm-tools
fi
if [ ! -x "$profdata" ]; then
    echo "error: $profdata is missing after 'rustup component add llvm-tools'" >&2
    exit 1
fi

profiles="$root/target/pgo-profiles"
merged="$root/target/pgo.profdata"

say "instrumented build (target/pgo-gen)"
RUSTFLAGS="-Cprofile-generate=$profiles" \
    cargo build --release --locked --quiet --bin tiersync --target-dir target/pgo-gen
# Build scripts ran instrumented too; only the training runs' profiles count.
rm -rf "$profiles"

say "training runs"
gen="$root/target/pgo-gen/release/tiersync"
train="$(mktemp -d)"
trap 'rm -rf "$train"' EXIT
"$gen" run scenarios/scale-100k.toml --strategy tiered --json --quiet > "$train/tiered.json"
"$gen" run scenarios/scale-100k.toml --strategy flat-conditional --json --quiet \
    > "$train/flat-conditional.json"
"$gen" compare scenarios/figure-1.toml --out "$train/figure-1" --quiet > /dev/null

say "merging profiles into target/pgo.profdata"
"$profdata" merge -o "$merged" "$profiles"

say "optimised build (target/pgo)"
# Functions no training run reached (daemons, operator commands) are
# compiled as usual; LLVM's warning about each of them is noise here.
RUSTFLAGS="-Cprofile-use=$merged -Cllvm-args=-pgo-warn-missing-function=false" \
    cargo build --release --locked --quiet --bin tiersync --target-dir target/pgo

echo "$root/target/pgo/release/tiersync"
