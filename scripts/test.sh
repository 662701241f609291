#!/usr/bin/env bash
# The README's test command: installs what the tests need, builds the real
# Kubernetes programs (scripts/cluster-build.sh), then runs every test.
#
#   scripts/test.sh                 # everything
#   scripts/test.sh --test cluster_real   # extra arguments go to `cargo test`
#
# Installs, when missing: haproxy, nginx, Node.js/npm (Debian), Python
# `websockets` (pip, else Debian's python3-websockets), Artillery (npm, into
# target/artillery). The tests that need the real control plane run as root
# (a network namespace of their own); with CI=true nothing may skip.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s  (%ss)\n' "$*" "$SECONDS"; }

log "tools"
export DEBIAN_FRONTEND=noninteractive
need_apt=()
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || need_apt+=(haproxy)
command -v npm >/dev/null 2>&1 || need_apt+=(nodejs npm)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need_apt+=(nginx-light)
command -v git >/dev/null 2>&1 || need_apt+=(git)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
  else
    echo "test.sh: missing ${need_apt[*]}; install them (apt-get install ${need_apt[*]}) or run as root" >&2
  fi
fi
# Third-party WebSocket client used by the server's interoperability test.
# Debian's own python3 refuses pip installs (PEP 668): take its package then.
python3 -c 'import websockets' 2>/dev/null ||
  python3 -m pip install -q websockets 2>/dev/null ||
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends python3-websockets; }
# The real Artillery runs the scenario `spread --emit artillery` writes.
[ -x target/artillery/node_modules/.bin/artillery ] ||
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --prefix target/artillery --no-audit --no-fund artillery@2.0.21 >/dev/null

log "real Kubernetes programs (Go)"
scripts/cluster-build.sh
# The real kubectl built with the control plane is the one the tests use.
export PATH="$PWD/target/cluster/bin:$PATH"
kubectl version --client 2>/dev/null | head -1 || true

log "build"
# The lab runs target/debug/websocket-server as its pods and the cluster tests
# start target/debug/wsaffinity-lab: build every binary up front.
cargo build --workspace --bins --locked

log "tests"
cargo test --workspace --locked --no-fail-fast "$@"
log "ok"
