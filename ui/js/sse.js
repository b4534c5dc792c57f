// Server-sent events over fetch: EventSource cannot POST or send an Authorization header,
// so the stream is read from a ReadableStream and parsed here (the WHATWG event-stream rules
// that ragd uses: `data:` lines, blank line ends an event, `:` comments ignored).

/**
 * Yields each event's data, parsed as JSON, from a fetch Response's body.
 * Stops at `[DONE]`. Aborting the fetch's signal makes the read throw an AbortError.
 */
export async function* events(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let data = [];
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      const lines = buffer.split(/\r\n|\r|\n/);
      buffer = lines.pop();
      for (const line of lines) {
        if (line === '') {
          if (data.length > 0) {
            const payload = data.join('\n');
            data = [];
            if (payload === '[DONE]') return;
            yield parse(payload);
          }
        } else if (line.startsWith('data:')) {
          data.push(line.slice(line.startsWith('data: ') ? 6 : 5));
        }
        // `event:`, `id:`, `retry:` and `:` comments carry nothing ragd's UI needs.
      }
    }
    if (buffer.startsWith('data:')) data.push(buffer.slice(buffer.startsWith('data: ') ? 6 : 5));
    if (data.length > 0 && data.join('\n') !== '[DONE]') yield parse(data.join('\n'));
  } finally {
    reader.releaseLock();
  }
}

function parse(payload) {
  try {
    return JSON.parse(payload);
  } catch {
    return { error: { code: 'bad_event', message: 'the server sent an unreadable event' } };
  }
}
