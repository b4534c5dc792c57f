#!/usr/bin/env bash
# Retrieval quality (hit@1, hit@5, MRR@10 per search mode) on a real corpus: the Rust book
# shipped with the toolchain, ingested into a fresh ragd with the built-in local embedder,
# against the question set in scripts/eval/rust-book.json.
#   scripts/eval-retrieval.sh [corpus-dir]
# Extra VAR=VALUE settings for ragd (another embedder, say) can be passed in the environment
# as RAGD_ENV="EMBEDDING_MODEL=... OPENAI_BASE_URL=...".
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=${1:-"$(rustc --print sysroot)/share/doc/rust/html/book"}
if [ -z "${RAGD_BIN:-}" ]; then cargo build --release --locked --bin ragd; fi
ragd=$(realpath "${RAGD_BIN:-${CARGO_TARGET_DIR:-target}/release/ragd}")
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
read -r -a extra <<<"${RAGD_ENV:-}"
# One ingest worker: the corpus has files of identical content, and which of them is kept
# (the others are "already present") must not depend on timing, or the figures would move.
settings=(DATA_DIR="$dir" DATABASE_URL="sqlite://$dir/ragd.db" PORT="$port" RUST_LOG=warn
  RATE_LIMIT_PER_MINUTE=1000000 INGEST_WORKERS=1 "${extra[@]}")
password=evaluation-password
echo "$password" | env "${settings[@]}" "$ragd" user create --email eval@example.com --password-stdin >/dev/null
env "${settings[@]}" "$ragd" ingest "$corpus"/*.html --user eval@example.com >"$dir/ingest.log" 2>&1 ||
  { tail -5 "$dir/ingest.log"; exit 1; }
env "${settings[@]}" "$ragd" >/dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$dir"' EXIT
base="http://127.0.0.1:$port"
for _ in $(seq 1 100); do curl -sf "$base/health" >/dev/null && break; sleep 0.1; done
token=$(curl -sf -X POST "$base/api/v1/auth/token" -H 'content-type: application/json' \
  -d "{\"email\":\"eval@example.com\",\"password\":\"$password\"}" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
echo "# corpus: $corpus ($(ls "$corpus"/*.html | wc -l) HTML files); ingest: $(tail -1 "$dir/ingest.log")"
python3 scripts/eval-retrieval.py "$base" "$token" scripts/eval/rust-book.json
