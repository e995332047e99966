#!/usr/bin/env bash
# Regenerates the committed report of every bundled scenario but
# scale-100k (a week of 100,000 clients, too long for a routine run).
# Usage, from anywhere: reports/regenerate.sh [scenario names...]
# Each report lands in reports/<name>/; the numbers depend only on the
# scenario file and its seed, so a rerun rewrites identical CSV files.
set -euo pipefail
cd "$(dirname "$0")/.."

names=("$@")
if [ ${#names[@]} -eq 0 ]; then
    for f in scenarios/*.toml; do
        name=$(basename "$f" .toml)
        [ "$name" = scale-100k ] || names+=("$name")
    done
fi

for name in "${names[@]}"; do
    echo "== $name"
    cargo run --release --locked --quiet -- \
        compare "scenarios/$name.toml" --out "reports/$name" --quiet
done
