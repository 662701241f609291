#!/usr/bin/env bash
# Runs the Autobahn|Testsuite fuzzing client (autobahntestsuite 0.8.2, Python
# 2.7) against websocket-server started as a pure echo server, and fails if
# any case's behavior is FAILED.
#
#   scripts/autobahn.sh            # every case (517; about 30 s)
#   AUTOBAHN_CASES='1.*,2.*' scripts/autobahn.sh
#
# Needs Python 2.7 (pyenv's, or python2.7 on PATH) and PyPI; without Python
# 2.7 it prints "skipped" and exits 0. The virtualenv is kept under
# target/autobahn-venv and reused; reports go to target/autobahn/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
here=scripts/autobahn
venv=target/autobahn-venv
report=target/autobahn/report
# debug by default: CI has just built it for the tests, and the full run takes
# about 25 s either way (AUTOBAHN_PROFILE=release for the optimized build).
profile=${AUTOBAHN_PROFILE:-debug}

log() { printf 'autobahn: %s\n' "$*"; }

# --- Python 2.7 -----------------------------------------------------------
python27=""
if command -v pyenv >/dev/null 2>&1; then
  candidate="$(pyenv root)/versions/2.7.18/bin/python2.7"
  if [ -x "$candidate" ]; then
    python27=$candidate
  else
    python27=$(pyenv which python2.7 2>/dev/null || true)
  fi
fi
if [ -z "$python27" ] && command -v python2.7 >/dev/null 2>&1; then
  python27=$(command -v python2.7)
fi
# pyenv installed but not on PATH (a non-login shell, as in CI).
if [ -z "$python27" ]; then
  for candidate in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/2.7*/bin/python2.7; do
    [ -x "$candidate" ] && python27=$candidate
  done
fi
if [ -z "$python27" ] || ! "$python27" -c 'import sys; sys.exit(sys.version_info[:2] != (2, 7))' 2>/dev/null; then
  log "skipped: Python 2.7 not found (install it with pyenv: pyenv install 2.7.18)"
  exit 0
fi
log "python: $python27"

# --- virtualenv with the pinned testsuite ----------------------------------
stamp=$venv/.requirements
if ! [ -x "$venv/bin/wstest" ] || ! cmp -s "$here/requirements.txt" "$stamp"; then
  log "installing autobahntestsuite into $venv"
  rm -rf "$venv"
  # Python 2.7 has no venv module: virtualenv 16.7 (the last single-file
  # release that runs on 2.7) brings its own pip and setuptools.
  if ! "$python27" -c 'import virtualenv' 2>/dev/null; then
    "$python27" -m pip --version >/dev/null 2>&1 || "$python27" -m ensurepip --user >/dev/null
    "$python27" -m pip install -q --disable-pip-version-check --upgrade \
      --target target/autobahn-tools virtualenv==16.7.12 2>&1 | grep -v DEPRECATION || true
    export PYTHONPATH=$root/target/autobahn-tools
  fi
  "$python27" -m virtualenv -q "$venv"
  unset PYTHONPATH
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements.txt" 2>&1 \
    | grep -v -e DEPRECATION -e 'Python 2.7' || true
  "$venv/bin/python" -c 'import autobahntestsuite' 2>/dev/null \
    || { log "error: autobahntestsuite did not install into $venv"; exit 1; }
  cp "$here/requirements.txt" "$stamp"
fi

# --- the server --------------------------------------------------------------
if [ "$profile" = release ]; then
  cargo build -q --locked --release -p websocket-server
  server=target/release/websocket-server
else
  cargo build -q --locked -p websocket-server
  server=target/debug/websocket-server
fi

mkdir -p target/autobahn
rm -rf "$report"
server_log=target/autobahn/server.log
spec=target/autobahn/fuzzingclient.json
server_pid=""
wstest_pid=""
cleanup() {
  for pid in $wstest_pid $server_pid; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# 16 MiB: the 9.x cases send messages of up to 16 MiB.
"$server" --no-hello --max-message-size 16777216 --port 0 --bind 127.0.0.1 \
  --drain-timeout 2 >"$server_log" 2>&1 &
server_pid=$!
addr=""
for _ in $(seq 1 100); do
  addr=$(sed -n 's/.*listening on \([0-9.:]*\).*/\1/p' "$server_log" | head -1)
  [ -n "$addr" ] && break
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$addr" ]; then
  log "error: websocket-server did not start:"
  cat "$server_log"
  exit 1
fi
log "server: $server on $addr ($profile)"

cases=${AUTOBAHN_CASES:-*}
cases_json=$(printf '%s' "$cases" | "$venv/bin/python" -c \
  'import json, sys; print(json.dumps([c.strip() for c in sys.stdin.read().split(",") if c.strip()]))')
sed -e "s#OUTDIR#$root/$report#" -e "s#URL#ws://$addr#" -e "s#\"CASES\"#$cases_json#" \
  "$here/fuzzingclient.json" >"$spec"

# --- the testsuite ------------------------------------------------------------
start=$(date +%s)
log "running wstest -m fuzzingclient (cases: $cases)"
(cd target/autobahn && exec timeout 900 "$root/$venv/bin/wstest" -m fuzzingclient -s "$root/$spec") \
  >target/autobahn/wstest.log 2>&1 &
wstest_pid=$!
status=0
wait "$wstest_pid" || status=$?
wstest_pid=""
if [ "$status" -ne 0 ]; then
  log "error: wstest exited with $status (tail of target/autobahn/wstest.log):"
  tail -20 target/autobahn/wstest.log
  exit 1
fi
log "wstest took $(($(date +%s) - start)) s"

if ! kill -0 "$server_pid" 2>/dev/null; then
  log "error: websocket-server died during the run:"
  tail -20 "$server_log"
  exit 1
fi

# --- verdict ------------------------------------------------------------------
"$venv/bin/python" - "$report/index.json" <<'PY'
import json, sys
from collections import Counter

with open(sys.argv[1]) as f:
    index = json.load(f)
behaviors = Counter()
close_behaviors = Counter()
bad = []
notes = []
for agent, cases in sorted(index.items()):
    for case, result in sorted(cases.items(), key=lambda kv: [int(p) for p in kv[0].split(".")]):
        b = result.get("behavior")
        behaviors[b] += 1
        close_behaviors[result.get("behaviorClose")] += 1
        major = case.split(".")[0]
        ok = b in ("OK", "NON-STRICT", "INFORMATIONAL") or (
            b == "UNIMPLEMENTED" and major in ("12", "13"))
        if b in ("NON-STRICT", "INFORMATIONAL"):
            notes.append("%s %s" % (case, b))
        if not ok:
            bad.append((case, b, result.get("behaviorClose"), result.get("reportfile")))
total = sum(behaviors.values())
print("autobahn: %d cases" % total)
for b, n in sorted(behaviors.items()):
    print("  %-14s %d" % (b, n))
print("autobahn: close behavior: " + ", ".join("%s %d" % kv for kv in sorted(close_behaviors.items())))
if notes:
    print("autobahn: accepted but not OK: " + ", ".join(notes))
if total == 0:
    print("autobahn: error: no case ran")
    sys.exit(1)
if bad:
    print("autobahn: %d case(s) not passing:" % len(bad))
    for case, b, close, report in bad:
        print("  %s: %s (close: %s) report: target/autobahn/report/%s" % (case, b, close, report))
    sys.exit(1)
print("autobahn: ok (no FAILED case; 12.*/13.* compression answered as unimplemented)")
PY
