#!/usr/bin/env bash
# Runs every check and test ragd has: formatting, clippy, the Rust tests against real SQLite,
# PostgreSQL + pgvector and Redis, and the browser end-to-end test of the web UI.
# Installs and starts what the tests need, and stops it again on exit, whatever happened.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/services.sh
trap stop_test_services EXIT

echo "[test] cargo fmt --check"
cargo fmt --all --check

echo "[test] cargo clippy"
cargo clippy --all-targets --locked -- -D warnings

echo "[test] cargo test"
# The official OpenAI Python and Node SDKs, which tests/api/openai_sdk.rs and
# openai_node_sdk.rs run against ragd (the Node one as locked in tests/node-sdk; its
# node_modules/ is ignored by git).
python3 -c "import openai" 2>/dev/null || python3 -m pip install --quiet openai
(cd tests/node-sdk && npm ci --no-audit --no-fund --loglevel=error)
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --locked --no-fail-fast
  cargo test --locked --doc
else
  cargo test --locked --no-fail-fast
fi

if [ -x e2e/run.sh ]; then
  echo "[test] browser end-to-end test"
  e2e/run.sh
fi
