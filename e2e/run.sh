#!/usr/bin/env bash
# The browser end-to-end test of the web UI: installs Debian's Chromium if it is missing,
# installs playwright-core (npm ci), builds ragd, starts it with the embedded defaults (SQLite,
# local embedder, local/extractive answerer) in a temp data directory plus a slow mock
# OpenAI-compatible provider for the Stop step, runs e2e/ui.test.mjs, and stops everything.
# Screenshots land in e2e/output/. Exits non-zero when the test fails.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

if [ ! -x /usr/bin/chromium ]; then
  echo "[e2e] installing chromium"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium >/dev/null
fi

echo "[e2e] npm ci"
(cd e2e && npm ci --no-audit --no-fund --loglevel=error)

echo "[e2e] cargo build"
cargo build --locked --bin ragd
RAGD="${CARGO_TARGET_DIR:-$ROOT/target}/debug/ragd"
case "$RAGD" in /*) ;; *) RAGD="$ROOT/$RAGD" ;; esac

WORK=$(mktemp -d)
MOCK_PID=""
RAGD_PID=""
stop_all() {
  for pid in $RAGD_PID $MOCK_PID; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap stop_all EXIT

# Waits up to 60 s for FILE to hold a line matching PATTERN.
wait_for() {
  local file=$1 pattern=$2 pid=$3
  for _ in $(seq 600); do
    if grep -q "$pattern" "$file" 2>/dev/null; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then break; fi
    sleep 0.1
  done
  echo "[e2e] gave up waiting for '$pattern' in $file:" >&2
  tail -n 30 "$file" >&2 || true
  return 1
}

node e2e/mock-llm.mjs "$WORK/mock-port" >"$WORK/mock.log" 2>&1 &
MOCK_PID=$!
wait_for "$WORK/mock-port" '[0-9]' "$MOCK_PID"
MOCK_URL="http://127.0.0.1:$(cat "$WORK/mock-port")"

# A clean environment (and the temp dir as working directory, so no .env is read): what a
# user gets with nothing configured, plus the mock provider for the model picker.
mkdir -p "$WORK/data"
(cd "$WORK" && exec env -i PATH="$PATH" HOME="$HOME" \
  HOST=127.0.0.1 PORT=0 DATA_DIR="$WORK/data" DATABASE_URL="sqlite://$WORK/data/ragd.db" \
  DEFAULT_MODEL=local/extractive OPENAI_API_KEY=sk-e2e OPENAI_BASE_URL="$MOCK_URL" \
  LOG_FORMAT=json "$RAGD" serve) >"$WORK/ragd.log" 2>&1 &
RAGD_PID=$!
wait_for "$WORK/ragd.log" 'ragd listening' "$RAGD_PID"
ADDRESS=$(grep -o '"address":"[^"]*"' "$WORK/ragd.log" | head -n1 | cut -d'"' -f4)
BASE_URL="http://$ADDRESS"
healthy() {
  node -e 'fetch(process.argv[1]).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))' "$BASE_URL/health"
}
for _ in $(seq 100); do
  if healthy; then break; fi
  sleep 0.1
done
healthy || { echo "[e2e] $BASE_URL/health does not answer" >&2; exit 1; }
echo "[e2e] ragd at $BASE_URL, mock provider at $MOCK_URL"

status=0
BASE_URL="$BASE_URL" MOCK_LLM_URL="$MOCK_URL" node --test --test-reporter=spec e2e/ui.test.mjs || status=$?
if [ "$status" -ne 0 ]; then
  echo "[e2e] FAILED; the last lines of ragd's log:" >&2
  tail -n 40 "$WORK/ragd.log" >&2
fi
echo "[e2e] screenshots in $ROOT/e2e/output/"
exit "$status"
