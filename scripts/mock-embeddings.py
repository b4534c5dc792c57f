#!/usr/bin/env python3
"""An OpenAI-compatible /v1/embeddings server for benchmarks: deterministic vectors derived
from each input's bytes, no model, no network. Prints its port on the first line.

    scripts/mock-embeddings.py [dimension]     # then OPENAI_BASE_URL=http://127.0.0.1:PORT/v1
"""
import hashlib
import json
import struct
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DIMENSION = int(sys.argv[1]) if len(sys.argv) > 1 else 384


def vector(text: str) -> list:
    seed = hashlib.sha256(text.encode()).digest()
    out = []
    block = seed
    while len(out) < DIMENSION:
        block = hashlib.sha256(block).digest()
        out.extend(v / 2**31 for v in struct.unpack("<8i", block))
    return out[:DIMENSION]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        answer = json.dumps({
            "object": "list",
            "data": [{"object": "embedding", "index": i, "embedding": vector(t)} for i, t in enumerate(inputs)],
            "model": body.get("model"),
            "usage": {"prompt_tokens": len(inputs), "total_tokens": len(inputs)},
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
