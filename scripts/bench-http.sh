#!/usr/bin/env bash
# /health throughput of the release binary under wrk on loopback: the baseline that later
# figures (authenticated routes, the LLM gateway) are compared to.
#   scripts/bench-http.sh [duration-seconds] [connections]
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10}
connections=${2:-64}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release --locked --bin ragd
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
DATA_DIR="$dir" DATABASE_URL="sqlite://$dir/ragd.db" PORT=$port RATE_LIMIT_PER_MINUTE=1000000 \
  LOG_FORMAT=json RUST_LOG=warn target/release/ragd >/dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$port/health" >/dev/null || { echo "ragd did not start" >&2; exit 1; }
echo "# wrk -t2 -c$connections -d${duration}s http://127.0.0.1:$port/health"
wrk -t2 -c"$connections" -d"${duration}s" --latency "http://127.0.0.1:$port/health"
