#!/usr/bin/env bash
# Throughput of the release binary under wrk on loopback: /health (the baseline that later
# figures are compared to), then /api/v1/auth/me with an access token and with an API key (the
# cost of authentication plus the in-memory rate limiter, which admits everything here).
#   scripts/bench-http.sh [duration-seconds] [connections]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-common.sh
duration=${1:-10}
connections=${2:-64}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
release_binary
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
DATA_DIR="$dir" DATABASE_URL="sqlite://$dir/ragd.db" PORT=$port RATE_LIMIT_PER_MINUTE=1000000 \
  LOG_FORMAT=json RUST_LOG=warn "$ragd" >/dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$port/health" >/dev/null || { echo "ragd did not start" >&2; exit 1; }
base="http://127.0.0.1:$port"
bench_credentials "$base"

# ragd's own CPU time (user + system) in clock ticks: throughput on 2 cores shared with wrk
# (and whatever else runs) is noisy; CPU time per request much less so.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
ticks_per_second=$(getconf CLK_TCK)

run() { # label, path, [bearer token]
  echo "# $1: wrk -t2 -c$connections -d${duration}s $base$2"
  local auth=() before after
  [[ -n ${3:-} ]] && auth=(-H "authorization: Bearer $3")
  before=$(cpu_ticks)
  wrk -t2 -c"$connections" -d"${duration}s" --latency "${auth[@]}" "$base$2" >"$dir/wrk"
  after=$(cpu_ticks)
  cat "$dir/wrk"
  awk -v label="$1" -v ticks=$((after - before)) -v hz="$ticks_per_second" '
    / requests in / {requests = $1}
    /Requests\/sec/ {rate = $2}
    END {printf "%-32s %10.0f req/s %8.1f us CPU/request\n", label, rate, ticks / hz / requests * 1e6}
  ' "$dir/wrk" >>"$dir/summary"
}
run "/health" /health
run "/api/v1/auth/me, access token" /api/v1/auth/me "$jwt"
run "/api/v1/auth/me, API key" /api/v1/auth/me "$key"
echo "# summary"
cat "$dir/summary"
