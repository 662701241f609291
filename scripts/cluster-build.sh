#!/usr/bin/env bash
# Builds the real Kubernetes programs the lab runs (and the other pinned Go
# programs under cluster/) into target/cluster/bin/, from their own Go modules.
#
#   scripts/cluster-build.sh            # build what is out of date, print how long it took
#   scripts/cluster-build.sh --force    # rebuild even when the stamp matches
#
# One Go module per upstream program (cluster/<name>/go.mod), so their
# dependency versions never mix. A module builds the packages its go.mod lists
# as `tool`s, or, with no tools, its own main package (named after the folder).
# cluster/<name>/ldflags, when present, holds extra -ldflags (version stamps);
# cluster/<name>/share lists manifests (CRDs) to copy out of its dependencies
# into target/cluster/share/<name>/.
# Nothing is rebuilt when the stamp (every go.sum, ldflags file and
# `go version`) matches the one written by the last successful build.
# Go's module and build caches stay in their default places, under $HOME.
set -euo pipefail
cd "$(dirname "$0")/.."

force=0
case "${1:-}" in
  --force) force=1 ;;
  "") ;;
  -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
  *) echo "cluster-build.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
esac

command -v go >/dev/null 2>&1 || {
  echo "cluster-build.sh: 'go' not found on PATH; install Go 1.26+ (the modules under cluster/ need it)" >&2
  exit 1
}

bin=target/cluster/bin
stamp_file="$bin/.stamp"
mkdir -p "$bin"
stamp=$( { go version; for f in cluster/*/go.mod cluster/*/go.sum cluster/*/*.go cluster/*/ldflags cluster/*/share; do
  [ -f "$f" ] || continue; echo "$f"; cat "$f"; done; } | sha256sum | cut -d' ' -f1)

if [ $force = 0 ] && [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$stamp" ]; then
  echo "cluster-build: up to date ($(ls "$bin" | tr '\n' ' '))"
  exit 0
fi

start=$SECONDS
out=$(cd "$bin" && pwd)
for mod in cluster/*/; do
  [ -f "$mod/go.mod" ] || continue
  name=$(basename "$mod")
  flags="-s -w"
  [ -f "$mod/ldflags" ] && flags="$flags $(grep -v '^#' "$mod/ldflags" | tr '\n' ' ')"
  t0=$SECONDS
  (
    cd "$mod"
    tools=$(sed -n '/^tool (/,/^)/{/^tool (/d;/^)/d;s/^[[:space:]]*//;p}; s/^tool \([^ (]\+\)$/\1/p' go.mod)
    if [ -n "$tools" ]; then
      # shellcheck disable=SC2086
      go build -trimpath -ldflags="$flags" -o "$out/" $tools
    else
      go build -trimpath -ldflags="$flags" -o "$out/$name" .
    fi
  )
  if [ -f "$mod/share" ]; then
    # Manifests shipped inside the module's dependencies (CRDs), by path.
    share="$out/../share/$name"
    rm -rf "$share" && mkdir -p "$share"
    grep -v '^#' "$mod/share" | while read -r module path dest; do
      [ -n "$module" ] || continue
      dir=$(cd "$mod" && go list -m -f '{{.Dir}}' "$module")
      mkdir -p "$share/$dest"
      if [ -d "$dir/$path" ]; then
        find "$dir/$path" -maxdepth 1 -name '*.yaml' ! -name kustomization.yaml -exec cp {} "$share/$dest/" \;
      else
        cp "$dir/$path" "$share/$dest/"
      fi
      chmod -R u+w "$share/$dest"
    done
  fi
  echo "cluster-build: $name in $((SECONDS - t0)) s"
done
echo "$stamp" > "$stamp_file"
echo "cluster-build: done in $((SECONDS - start)) s -> $bin ($(du -sh "$bin" | cut -f1))"
