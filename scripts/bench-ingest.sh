#!/usr/bin/env bash
# Ingest throughput of the release binary over a real corpus on every machine (the Rust book
# shipped with the toolchain), once with the local embedder and once with a mock
# OpenAI-compatible embedding server (scripts/mock-embeddings.py, 384 dimensions).
#   scripts/bench-ingest.sh [corpus-dir] [workers]
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=${1:-"$(rustc --print sysroot)/share/doc/rust/html/book"}
workers=${2:-2}
# RAGD_BIN: an already built release binary (skips the build).
if [ -z "${RAGD_BIN:-}" ]; then cargo build --release --locked --bin ragd; fi
ragd=$(realpath "${RAGD_BIN:-${CARGO_TARGET_DIR:-target}/release/ragd}")
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cleanup=()
trap 'for c in "${cleanup[@]}"; do eval "$c"; done' EXIT

# run LABEL [VAR=VALUE...]: a fresh data dir and user, then `ragd ingest` under /usr/bin/time.
run() {
  local label=$1; shift
  local dir port pid
  dir=$(mktemp -d); port=$(free_port)
  cleanup+=("rm -rf '$dir'")
  local base=(DATA_DIR="$dir" DATABASE_URL="sqlite://$dir/ragd.db" PORT="$port" RUST_LOG=warn INGEST_WORKERS="$workers" "$@")
  env "${base[@]}" "$ragd" >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
  curl -sf -H 'content-type: application/json' -d '{"email":"bench@example.com","password":"benchmark-password"}' \
    "http://127.0.0.1:$port/api/v1/auth/register" >/dev/null
  kill "$pid"; wait "$pid" || true
  echo "## $label"
  env "${base[@]}" /usr/bin/time -v "$ragd" ingest "$corpus" --user bench@example.com --recursive \
    >"$dir/out.log" 2>&1 || true
  grep -E "ready \(|Elapsed \(wall|Maximum resident" "$dir/out.log"
}

echo "# corpus: $corpus ($(find "$corpus" -name '*.html' | wc -l) HTML files, $(find "$corpus" -name '*.html' -print0 | du -cb --files0-from=- | tail -1 | cut -f1) bytes of HTML), $workers workers, $(nproc) cores"
run "release build, local embedder, SQLite"
port_file=$(mktemp)
python3 scripts/mock-embeddings.py 384 >"$port_file" &
mock=$!
cleanup+=("kill $mock 2>/dev/null" "rm -f '$port_file'")
for _ in $(seq 1 50); do [ -s "$port_file" ] && break; sleep 0.1; done
run "release build, mock embedding server (OpenAI wire format), SQLite" \
  EMBEDDING_MODEL=text-embedding-3-small OPENAI_API_KEY=sk-bench VECTOR_DIMENSION=384 \
  OPENAI_BASE_URL="http://127.0.0.1:$(head -1 "$port_file")/v1"
