# Sourced by the benchmark scripts.
#
# `release_binary` sets `ragd` to the binary to measure: $RAGD_BIN as it is (to compare two
# builds), else the release build in $CARGO_TARGET_DIR (default target/), built first.
release_binary() {
  if [ -n "${RAGD_BIN:-}" ]; then
    ragd=$(realpath "$RAGD_BIN")
  else
    cargo build --release --locked --bin ragd
    ragd=$(realpath "${CARGO_TARGET_DIR:-target}/release/ragd")
  fi
}

# `bench_credentials BASE_URL` signs a user up on a fresh ragd and sets `jwt` (an access token)
# and `key` (an API key) for it.
bench_credentials() {
  local base=$1 login='{"email":"bench@example.com","password":"bench-password"}'
  curl -sf -X POST "$base/api/v1/auth/register" -H 'content-type: application/json' \
    -d "$login" >/dev/null
  jwt=$(curl -sf -X POST "$base/api/v1/auth/token" -H 'content-type: application/json' \
    -d "$login" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  key=$(curl -sf -X POST "$base/api/v1/auth/api-keys" -H "authorization: Bearer $jwt" \
    -H 'content-type: application/json' -d '{"name":"bench"}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
}
