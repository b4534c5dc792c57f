// A stand-in OpenAI-compatible provider for the browser test: it lists one model, `e2e-slow`,
// whose streamed answer sends a few words and then waits until the client goes away. That makes
// "press Stop while an answer streams" deterministic, and lets the test check that Stop reached
// the provider (ragd cancels the upstream request when the browser disconnects).
//
// Usage: node mock-llm.mjs PORT_FILE   (writes the port it listens on to PORT_FILE)
import http from 'node:http';
import fs from 'node:fs';

const state = { streams: 0, cancelled: 0 };

function chunk(content) {
  return `data: ${JSON.stringify({
    id: 'chatcmpl-e2e', object: 'chat.completion.chunk', created: 0, model: 'e2e-slow',
    choices: [{ index: 0, delta: { content }, finish_reason: null }],
  })}\n\n`;
}

const server = http.createServer((req, res) => {
  const body = [];
  req.on('data', (part) => body.push(part));
  req.on('end', () => {
    const path = new URL(req.url, 'http://mock').pathname;
    if (req.method === 'GET' && path.endsWith('/models')) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ object: 'list', data: [{ id: 'e2e-slow', object: 'model', owned_by: 'e2e' }] }));
      return;
    }
    if (req.method === 'GET' && path === '/__state') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(state));
      return;
    }
    if (req.method === 'POST' && path.endsWith('/chat/completions')) {
      let request = {};
      try {
        request = JSON.parse(Buffer.concat(body).toString('utf8'));
      } catch {
        // An empty request gets the non-streaming answer below.
      }
      if (!request.stream) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({
          id: 'chatcmpl-e2e', object: 'chat.completion', created: 0, model: 'e2e-slow',
          choices: [{ index: 0, message: { role: 'assistant', content: 'A slow answer.' }, finish_reason: 'stop' }],
          usage: { prompt_tokens: 1, completion_tokens: 3, total_tokens: 4 },
        }));
        return;
      }
      state.streams += 1;
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.write(chunk('This answer '));
      res.write(chunk('takes its time'));
      // Keep the connection busy (and never finish) until the client hangs up.
      const keepAlive = setInterval(() => res.write(chunk('.')), 500);
      res.on('close', () => {
        clearInterval(keepAlive);
        state.cancelled += 1;
      });
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { message: 'not found', type: 'invalid_request_error' } }));
  });
});

server.listen(0, '127.0.0.1', () => {
  fs.writeFileSync(process.argv[2], String(server.address().port));
});
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.close(() => process.exit(0)));
