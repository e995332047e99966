#!/usr/bin/env bash
# Regenerates the committed report of every bundled scenario but the
# scale-* ones (weeks of 100,000 and 1,000,000 clients: benchmarks, too
# long for a routine run). Each report folder is emptied first, so no file
# of an older report survives beside the new one.
# Usage, from anywhere: reports/regenerate.sh [scenario names...]
# Each report lands in reports/<name>/; the numbers depend only on the
# scenario file and its seed, so a rerun rewrites identical CSV files.
set -euo pipefail
cd "$(dirname "$0")/.."

names=("$@")
if [ ${#names[@]} -eq 0 ]; then
    for f in scenarios/*.toml; do
        name=$(basename "$f" .toml)
        case "$name" in scale-*) ;; *) names+=("$name") ;; esac
    done
fi

for name in "${names[@]}"; do
    echo "== $name"
    rm -rf "reports/$name"
    cargo run --release --locked --quiet -- \
        compare "scenarios/$name.toml" --out "reports/$name" --quiet
done
