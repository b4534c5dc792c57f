#!/usr/bin/env bash
# Instructions per request (valgrind callgrind: repeatable whatever else the machine runs) of
# /health, and of /api/v1/auth/me with an access token and with an API key: the marginal cost of
# authentication plus the in-memory rate limiter. Each case runs the release binary twice, with
# SMALL and LARGE sequential keep-alive requests; (total(LARGE) - total(SMALL)) / (LARGE - SMALL)
# cancels start-up and sign-up.
#   scripts/bench-auth-instructions.sh [small] [large]
# Note: valgrind's CPU lacks SHA-NI, so SHA-256 runs in software here (~17k instructions per
# bearer token hashed, about a tenth of that on a CPU with SHA extensions).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-common.sh
small=${1:-200}
large=${2:-1200}
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
release_binary
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cat >"$work/drive.py" <<'PY'
import http.client, sys
port, path, n, token = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
connection = http.client.HTTPConnection("127.0.0.1", port)
headers = {"authorization": "Bearer " + token} if token else {}
for _ in range(n):
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    response.read()
    assert response.status == 200, response.status
PY

total_instructions() { # path, requests, credential (none|jwt|key)
  local dir port pid base token
  dir=$(mktemp -d -p "$work")
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  DATA_DIR="$dir" DATABASE_URL="sqlite://$dir/ragd.db" PORT=$port RATE_LIMIT_PER_MINUTE=1000000 \
    LOG_FORMAT=json RUST_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$dir/callgrind.out" \
    "$ragd" >/dev/null 2>&1 &
  pid=$!
  base="http://127.0.0.1:$port"
  for _ in $(seq 1 300); do curl -sf "$base/health" >/dev/null && break; sleep 0.2; done
  bench_credentials "$base"
  case $3 in none) token="" ;; jwt) token=$jwt ;; key) token=$key ;; esac
  python3 "$work/drive.py" "$port" "$1" "$2" "$token"
  kill -INT "$pid"
  wait "$pid" || true
  awk '/^summary:/ {print $2}' "$dir/callgrind.out"
}

for case in "/health none" "/api/v1/auth/me jwt" "/api/v1/auth/me key"; do
  read -r path credential <<<"$case"
  low=$(total_instructions "$path" "$small" "$credential")
  high=$(total_instructions "$path" "$large" "$credential")
  printf '%-18s %-5s %8d instructions/request\n' "$path" "$credential" $(((high - low) / (large - small)))
done
