#!/usr/bin/env bash
# The benchmarks of issue 9, in one command (from anywhere in the checkout):
#
#   bench/run.sh [wsaffinity-bench options, e.g. --only server --repeat 3]
#
# `--only cluster` (also part of the full run) benchmarks the plugin through
# the real control plane (`wsaffinity-lab cluster up`, root and the programs
# of scripts/cluster-build.sh in target/cluster/bin) against the manual
# `kubectl port-forward` routine.
#
# Builds release binaries (plugin, websocket-server, lab, baselines), raises
# the file-descriptor limit, installs nothing, talks only to 127.0.0.0/8, and
# prints the machine, the load, per-run figures and a table of medians with
# ratios to the baselines measured in the same run. websocat (`cargo install
# websocat`) is used as a baseline when found on PATH or in ~/.cargo/bin.
set -euo pipefail
cd "$(dirname "$0")/.."

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 20000 ]; then
    echo "bench: file-descriptor limit is $(ulimit -n); 18,000 idle connections need 20,000 (pass --idle-conns N for fewer)" >&2
fi

cargo build --release -p kubectl-wsaffinity -p websocket-server -p wsaffinity-lab -p wsaffinity-bench

WEBSOCAT=()
w="$(command -v websocat || true)"
if [ -z "$w" ] && [ -x "$HOME/.cargo/bin/websocat" ]; then
    w="$HOME/.cargo/bin/websocat"
fi
if [ -n "$w" ]; then
    WEBSOCAT=(--websocat "$w")
else
    echo "bench: websocat not found; the stock tokio-tungstenite echo is the WebSocket baseline" >&2
fi

# Every server, lab and pod process is a child of wsaffinity-bench (killed on
# drop; pod processes also die with the lab). On exit or Ctrl-C, end the
# benchmark's whole process group if anything is left.
bench_pid=""
cleanup() {
    if [ -n "$bench_pid" ] && kill -0 "$bench_pid" 2>/dev/null; then
        kill -TERM -- "-$bench_pid" 2>/dev/null || kill -TERM "$bench_pid" 2>/dev/null || true
        wait "$bench_pid" 2>/dev/null || true
    fi
}
trap cleanup EXIT INT TERM

set -m # the benchmark gets its own process group
"${CARGO_TARGET_DIR:-target}/release/wsaffinity-bench" "${WEBSOCAT[@]}" "$@" &
bench_pid=$!
set +m
wait "$bench_pid"
