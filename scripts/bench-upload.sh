#!/usr/bin/env bash
# Peak memory of a large upload: streams a SIZE_MB text file (default 1024) through
# POST /api/v1/documents/upload to the release binary and reports how much its peak RSS
# (VmHWM) grew. Ingestion workers are off so only the upload path is measured.
#   scripts/bench-upload.sh [size-mb]
set -euo pipefail
cd "$(dirname "$0")/.."
size_mb=${1:-1024}
# RAGD_BIN: an already built release binary (skips the build).
if [ -z "${RAGD_BIN:-}" ]; then cargo build --release --locked --bin ragd; fi
ragd=$(realpath "${RAGD_BIN:-${CARGO_TARGET_DIR:-target}/release/ragd}")
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
DATA_DIR="$dir/data" DATABASE_URL="sqlite://$dir/ragd.db" PORT=$port RUST_LOG=warn \
  MAX_UPLOAD_MB=$((size_mb + 16)) INGEST_WORKERS=0 \
  RATE_LIMIT_PER_MINUTE=100000 "$ragd" >"$dir/ragd.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
api="http://127.0.0.1:$port/api/v1"
credentials='{"email":"bench@example.com","password":"benchmark-password"}'
curl -sf -H 'content-type: application/json' -d "$credentials" "$api/auth/register" >/dev/null
token=$(curl -sf -H 'content-type: application/json' -d "$credentials" "$api/auth/token" | jq -r .access_token)
kib() { awk -v k="$1" '$1 == k":" {print $2}' "/proc/$pid/status"; }

# Warm up the upload path with a small file, so the baseline includes its pools and buffers.
(yes "warm-up line for the upload path" || true) | head -c 1048576 >"$dir/small.txt"
curl -sf -H "authorization: Bearer $token" -F file=@"$dir/small.txt" "$api/documents/upload" >/dev/null
(yes "The lighthouse keeper counted seventeen herons at dawn." || true) | head -c $((size_mb * 1048576)) >"$dir/big.txt"
before=$(kib VmHWM)
start=$(date +%s.%N)
answer=$(curl -sS -H "authorization: Bearer $token" -F file=@"$dir/big.txt" -w ' %{http_code}' "$api/documents/upload")
end=$(date +%s.%N)
after=$(kib VmHWM)
echo "# upload of $size_mb MiB: answer $answer"
echo "peak RSS before: $((before / 1024)) MiB, after: $((after / 1024)) MiB, growth: $(((after - before) / 1024)) MiB ($((after - before)) KiB)"
awk -v s="$start" -v e="$end" -v m="$size_mb" 'BEGIN {printf "upload time: %.1f s (%.0f MiB/s)\n", e - s, m / (e - s)}'
