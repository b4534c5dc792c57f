#!/usr/bin/env bash
# Instructions per request (valgrind callgrind: repeatable whatever else the machine runs) of
#   - /health;
#   - /api/v1/auth/me with an access token and with an API key: the marginal cost of
#     authentication plus the in-memory rate limiter;
#   - /v1/chat/completions (non-stream, "Say hello", API key) through a mock OpenAI upstream
#     written in Python (not under valgrind): the gateway's own cost per call;
#   - /api/v1/chat/stream (no RAG) and /v1/chat/completions with `stream: true` (SSE, API key),
#     the mock streaming 50 one-token chunks: the cost of a streamed answer, most of it per
#     relayed chunk.
# Each case runs the release binary twice, with SMALL and LARGE sequential keep-alive requests;
# (total(LARGE) - total(SMALL)) / (LARGE - SMALL) cancels start-up and sign-up.
#   scripts/bench-instructions.sh [small] [large] [case...]   (cases: health me-jwt me-key chat stream openai-stream)
# With KEEP_PROFILES=DIR each run's callgrind output is kept in DIR (CASE-REQUESTS.out), for
# `callgrind_annotate --inclusive=yes`; comparing a case's two runs function by function shows
# where a request's instructions go.
# Note: valgrind's CPU lacks SHA-NI, so SHA-256 runs in software here (~17k instructions per
# bearer token hashed, about a tenth of that on a CPU with SHA extensions).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-common.sh
small=${1:-200}
large=${2:-1200}
shift $(($# < 2 ? $# : 2))
if [ $# -gt 0 ]; then cases=("$@"); else cases=(health me-jwt me-key chat stream openai-stream); fi
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
release_binary
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

cat >"$work/drive.py" <<'PY'
import http.client, json, sys
port, path, n, token = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
connection = http.client.HTTPConnection("127.0.0.1", port)
headers = {"authorization": "Bearer " + token} if token else {}
request = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello"}]}
if path == "/api/v1/chat/stream":
    request["use_rag"] = False
elif path == "/v1/chat/completions?stream":
    path = "/v1/chat/completions"
    request.update(stream=True, stream_options={"include_usage": True})
body = json.dumps(request) if path != "/health" and not path.startswith("/api/v1/auth") else None
if body:
    headers["content-type"] = "application/json"
for _ in range(n):
    connection.request("POST" if body else "GET", path, body=body, headers=headers)
    response = connection.getresponse()
    response.read()
    assert response.status == 200, (response.status, response.read())
PY

# The upstream: OpenAI's chat completion, answered at once over keep-alive HTTP/1.1; streamed
# as 50 chunks of one token, then usage and [DONE].
cat >"$work/upstream.py" <<'PY'
import http.server, json, sys
ANSWER = json.dumps({
    "id": "chatcmpl-mock", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello!"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11},
}).encode()
def event(delta, finish=None, usage=None):
    chunk = {"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini",
             "choices": [{"index": 0, "delta": delta, "finish_reason": finish}] if usage is None else []}
    if usage is not None:
        chunk["usage"] = usage
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"
STREAM = [event({"role": "assistant", "content": ""})] + [event({"content": " word"}) for _ in range(50)] + [
    event({}, "stop"), event(None, usage={"prompt_tokens": 9, "completion_tokens": 50, "total_tokens": 59}),
    b"data: [DONE]\n\n"]
class Upstream(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        request = json.loads(self.rfile.read(int(self.headers["content-length"])))
        self.send_response(200)
        if not request.get("stream"):
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(ANSWER)))
            self.end_headers()
            self.wfile.write(ANSWER)
            return
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for data in STREAM:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
print(server.server_address[1], flush=True)
server.serve_forever()
PY
python3 "$work/upstream.py" >"$work/upstream.port" &
for _ in $(seq 1 50); do [ -s "$work/upstream.port" ] && break; sleep 0.1; done
upstream="http://127.0.0.1:$(cat "$work/upstream.port")/v1"

total_instructions() { # case name, path, requests, credential (none|jwt|key)
  local dir port pid base token
  dir=$(mktemp -d -p "$work")
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  DATA_DIR="$dir" DATABASE_URL="sqlite://$dir/ragd.db" PORT=$port RATE_LIMIT_PER_MINUTE=1000000 \
    OPENAI_BASE_URL="$upstream" OPENAI_API_KEY=sk-bench DEFAULT_MODEL=gpt-4o-mini \
    LOG_FORMAT=json RUST_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$dir/callgrind.out" \
    "$ragd" >/dev/null 2>&1 &
  pid=$!
  base="http://127.0.0.1:$port"
  for _ in $(seq 1 300); do curl -sf "$base/health" >/dev/null && break; sleep 0.2; done
  bench_credentials "$base"
  case $4 in none) token="" ;; jwt) token=$jwt ;; key) token=$key ;; esac
  python3 "$work/drive.py" "$port" "$2" "$3" "$token"
  kill -INT "$pid"
  wait "$pid" || true
  if [ -n "${KEEP_PROFILES:-}" ]; then
    mkdir -p "$KEEP_PROFILES" && cp "$dir/callgrind.out" "$KEEP_PROFILES/$1-$3.out"
  fi
  awk '/^summary:/ {print $2}' "$dir/callgrind.out"
}

for name in "${cases[@]}"; do
  case $name in
    health) path=/health credential=none ;;
    me-jwt) path=/api/v1/auth/me credential=jwt ;;
    me-key) path=/api/v1/auth/me credential=key ;;
    chat) path=/v1/chat/completions credential=key ;;
    stream) path=/api/v1/chat/stream credential=key ;;
    openai-stream) path='/v1/chat/completions?stream' credential=key ;;
    *) echo "unknown case $name" >&2; exit 2 ;;
  esac
  low=$(total_instructions "$name" "$path" "$small" "$credential")
  high=$(total_instructions "$name" "$path" "$large" "$credential")
  printf '%-13s %-28s %-5s %8d instructions/request\n' "$name" "$path" "$credential" $(((high - low) / (large - small)))
done
