#!/usr/bin/env bash
# Builds the krew release archive for linux/amd64 and writes its sha256 into
# plugin.yaml, so the manifest and the archive can never disagree.
#
#   scripts/dist.sh                      # cargo build --release, dist/, ./plugin.yaml
#   scripts/dist.sh --bin PATH --out DIR --manifest FILE   # package a given binary
set -euo pipefail
cd "$(dirname "$0")/.."

bin="" out="dist" manifest="plugin.yaml"
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --manifest) manifest="$2"; shift 2 ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "dist.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
[ -n "$version" ] || { echo "dist.sh: no version in Cargo.toml [workspace.package]" >&2; exit 1; }

if [ -z "$bin" ]; then
  cargo build --release --locked -p kubectl-wsaffinity
  bin=target/release/kubectl-wsaffinity
fi
[ -x "$bin" ] || { echo "dist.sh: binary '$bin' not found or not executable" >&2; exit 1; }

name="kubectl-wsaffinity_v${version}_linux_amd64.tar.gz"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp "$bin" "$stage/kubectl-wsaffinity"
cp LICENSE "$stage/LICENSE"
mkdir -p "$out"
# Reproducible archive: fixed owner, order and mtime.
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime='2026-01-01 00:00Z' \
  -C "$stage" -czf "$out/$name" kubectl-wsaffinity LICENSE
sha=$(sha256sum "$out/$name" | cut -d' ' -f1)

# Rewrite version, the linux/amd64 uri and sha256 in place (the first platform).
tmp=$(mktemp)
awk -v ver="v$version" -v sha="$sha" -v name="$name" '
  /^  version:/ { print "  version: " ver; next }
  /^  - selector:/ { plat++ }
  plat == 1 && /^    uri:/ { sub(/uri:.*/, "uri: https://github.com/kubectl-wsaffinity/kubectl-wsaffinity/releases/download/" ver "/" name) }
  plat == 1 && /^    sha256:/ { sub(/sha256:.*/, "sha256: \"" sha "\"") }
  { print }
' "$manifest" > "$tmp"
cat "$tmp" > "$manifest"; rm -f "$tmp"
echo "$out/$name"
echo "sha256 $sha written to $manifest"
