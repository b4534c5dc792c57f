// The ragd API client: every call goes through here, so every failure becomes an ApiError
// whose `describe()` is a sentence a user can act on (wait N seconds, sign in again, pick a
// smaller file, the provider is down...).
import * as session from './session.js';

/** A failed API call, from the contract's error shape (or OpenAI's, on /v1). */
export class ApiError extends Error {
  constructor({ status, code, message = '', details = null, requestId = null, retryAfter = null, authenticated = false }) {
    super(message || `HTTP ${status}`);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.serverMessage = message;
    this.details = details;
    this.requestId = requestId;
    this.retryAfter = retryAfter;
    this.authenticated = authenticated;
  }
}

let unauthorizedHandler = () => {};

/** Called when a signed-in request answers 401: the session is over. */
export function onUnauthorized(handler) {
  unauthorizedHandler = handler;
}

/** Retry-After as whole seconds (it may be seconds or an HTTP date), or null. */
export function parseRetryAfter(value) {
  if (!value) return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(1, Math.ceil(seconds));
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(1, Math.ceil((date - Date.now()) / 1000));
}

/** An ApiError from a status, a parsed body (or null) and two headers. */
export function errorFrom(status, body, retryAfter, requestId, authenticated) {
  const error = body && typeof body.error === 'object' && body.error !== null ? body.error : {};
  return new ApiError({
    status,
    code: error.code || error.type || `http_${status}`,
    message: typeof error.message === 'string' ? error.message : '',
    details: error.details ?? null,
    requestId: (body && body.request_id) || requestId || null,
    retryAfter: parseRetryAfter(retryAfter),
    authenticated,
  });
}

async function errorFromResponse(response, authenticated) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // Not JSON (a proxy's page, an empty body): the status alone must do.
  }
  return errorFrom(response.status, body, response.headers.get('retry-after'),
    response.headers.get('x-request-id'), authenticated);
}

function plural(n, word) {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** The sentence to show a user for any error a call can throw. */
export function describe(error) {
  if (!(error instanceof ApiError)) {
    if (error && error.name === 'AbortError') return 'Cancelled.';
    return `Something went wrong: ${error && error.message ? error.message : String(error)}`;
  }
  const { status, serverMessage: message, code } = error;
  const said = message ? `: ${message}` : '';
  const wait = error.retryAfter ? ` Try again in ${plural(error.retryAfter, 'second')}.` : '';
  if (status === 0) {
    return message === 'upload_interrupted'
      ? 'The upload was cut off before it finished. The file may be larger than the server accepts, or the connection dropped.'
      : 'Cannot reach ragd. Check your connection and that the server is running.';
  }
  if (status === 401) {
    return error.authenticated
      ? 'Your session has expired. Please sign in again.'
      : (message || 'Wrong email or password.');
  }
  if (status === 403) return `You are not allowed to do that${said}.`;
  if (status === 404) return message ? `Not found${said}.` : 'Not found: it may have been deleted.';
  if (status === 413) return `That file is too large for this server${said}.`;
  if (status === 415) return `That file type is not supported${said}. Use text, Markdown, HTML, PDF or DOCX.`;
  if (status === 422 && Array.isArray(error.details) && error.details.length > 0) {
    return error.details.map((d) => `${d.field}: ${d.message}`).join('; ');
  }
  if (status === 429) {
    return error.retryAfter
      ? `Too many requests. Please wait ${plural(error.retryAfter, 'second')} and try again.`
      : 'Too many requests. Please wait a moment and try again.';
  }
  if (status === 502) return `The AI provider reported an error${said}.${wait || ' Try again, or pick another model.'}`;
  if (status === 504) return `The AI provider took too long to answer${said}. Try again.`;
  if (status === 503) {
    return code && code.startsWith('provider')
      ? `No AI provider is available right now${said}. Try again later or pick another model.`
      : `ragd is temporarily unavailable${said}. Try again shortly.${wait}`;
  }
  if (status >= 500) {
    return `Something went wrong on the server${error.requestId ? ` (request id ${error.requestId})` : ''}. Try again.`;
  }
  return message || `The request failed (HTTP ${status}).`;
}

/**
 * Sends a request and returns the Response once it is known to be a success; throws ApiError
 * otherwise (a signed-in 401 also ends the session). `json` is sent as the body.
 */
export async function send(method, path, { json, auth = true, signal, accept = 'application/json' } = {}) {
  const headers = { Accept: accept };
  const token = auth ? session.token() : null;
  if (auth && !token) {
    const error = new ApiError({ status: 401, code: 'unauthorized', authenticated: true });
    unauthorizedHandler(error);
    throw error;
  }
  if (token) headers.Authorization = `Bearer ${token}`;
  let body;
  if (json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(json);
  }
  let response;
  try {
    response = await fetch(path, { method, headers, body, signal, cache: 'no-store', credentials: 'omit' });
  } catch (err) {
    if (err && err.name === 'AbortError') throw err;
    throw new ApiError({ status: 0, code: 'network_error' });
  }
  if (!response.ok) {
    const error = await errorFromResponse(response, Boolean(token));
    if (error.status === 401 && token) unauthorizedHandler(error);
    throw error;
  }
  return response;
}

/** `send`, then the parsed JSON body (null for 204). */
export async function request(method, path, options) {
  const response = await send(method, path, options);
  if (response.status === 204) return null;
  const type = response.headers.get('content-type') || '';
  return type.includes('json') ? response.json() : response.text();
}

/**
 * Uploads one file with XMLHttpRequest (fetch cannot report upload progress).
 * `onProgress(fraction)` runs as bytes go out. Returns `{ promise, abort }`.
 */
export function upload(file, onProgress) {
  const xhr = new XMLHttpRequest();
  const promise = new Promise((resolve, reject) => {
    const token = session.token();
    let sent = false;
    xhr.open('POST', '/api/v1/documents/upload');
    xhr.setRequestHeader('Accept', 'application/json');
    if (token) xhr.setRequestHeader('Authorization', `Bearer ${token}`);
    xhr.upload.addEventListener('progress', (event) => {
      if (event.lengthComputable && event.total > 0) onProgress(event.loaded / event.total);
    });
    xhr.upload.addEventListener('load', () => { sent = true; });
    xhr.addEventListener('load', () => {
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        // Keep null: errorFrom copes.
      }
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress(1);
        resolve(body);
        return;
      }
      const error = errorFrom(xhr.status, body, xhr.getResponseHeader('retry-after'),
        xhr.getResponseHeader('x-request-id'), Boolean(token));
      if (error.status === 401 && token) unauthorizedHandler(error);
      reject(error);
    });
    xhr.addEventListener('error', () => {
      // A server refusing an oversized body may close the connection before answering 413.
      reject(new ApiError({ status: 0, code: 'network_error', message: sent ? '' : 'upload_interrupted' }));
    });
    xhr.addEventListener('abort', () => reject(new DOMException('Upload cancelled', 'AbortError')));
    const form = new FormData();
    form.append('file', file, file.name);
    xhr.send(form);
  });
  return { promise, abort: () => xhr.abort() };
}

const DOCUMENTS = '/api/v1/documents';

export const api = {
  register: (email, password) =>
    request('POST', '/api/v1/auth/register', { json: { email, password }, auth: false }),
  login: (email, password) =>
    request('POST', '/api/v1/auth/token', { json: { email, password }, auth: false }),
  me: () => request('GET', '/api/v1/auth/me'),

  /** Every document of the caller, following the cursor (bounded, newest first). */
  async listDocuments() {
    const items = [];
    let cursor = null;
    for (let page = 0; page < 20; page += 1) {
      const query = new URLSearchParams({ limit: '100' });
      if (cursor) query.set('cursor', cursor);
      const result = await request('GET', `${DOCUMENTS}?${query}`);
      items.push(...(result.items || []));
      cursor = result.next_cursor;
      if (!cursor) break;
    }
    return items;
  },
  deleteDocument: (id) => request('DELETE', `${DOCUMENTS}/${encodeURIComponent(id)}`),
  models: () => request('GET', '/v1/models'),
  /** The chat SSE response (check `ok` is already done); read it with `sse.events`. */
  chatStream: (body, signal) =>
    send('POST', '/api/v1/chat/stream', { json: body, signal, accept: 'text/event-stream' }),
};
