// Chat: answers stream in over SSE (fetch + ReadableStream), rendered as safe Markdown; Stop
// aborts the request (ragd then cancels the upstream call); citations become numbered sources
// that open the cited chunk.
import { $, el, announce } from './dom.js';
import { api, describe, ApiError } from './api.js';
import { events } from './sse.js';
import { render } from './markdown.js';
import { showSource } from './dialogs.js';
import { onDocumentsChange } from './documents.js';
import { showError } from './notice.js';

/** The API accepts up to 100 messages of up to 10000 characters; older turns are dropped. */
const HISTORY_LIMIT = 40;
const CONTENT_LIMIT = 10000;
const STREAM_ERROR_STATUS = { provider_timeout: 504, provider_not_configured: 503, rate_limited: 429 };

let history = [];
let controller = null;
const selected = new Set();

function setStreaming(streaming) {
  const stopHadFocus = document.activeElement === $('stop');
  $('send').hidden = streaming;
  $('stop').hidden = !streaming;
  $('chat-form').setAttribute('aria-busy', streaming ? 'true' : 'false');
  if (!streaming && stopHadFocus) $('prompt').focus();
}

/** One assistant answer in the conversation, updated as events arrive. */
class AnswerView {
  constructor() {
    this.text = '';
    this.citations = [];
    this.frame = 0;
    this.body = el('div', { className: 'markdown' });
    this.sources = el('div', { className: 'sources', hidden: true });
    this.footer = el('p', { className: 'message-footer' }, 'Thinking…');
    this.node = el('li', { className: 'message assistant', 'aria-busy': 'true' },
      el('span', { className: 'visually-hidden' }, 'ragd: '), this.body, this.sources, this.footer);
    $('messages').append(this.node);
    this.scroll();
  }

  scroll() {
    const log = $('messages');
    log.scrollTop = log.scrollHeight;
  }

  setText(text) {
    this.text = text;
    if (this.frame) return;
    // One render per frame however fast tokens arrive.
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.renderBody();
    });
  }

  renderBody() {
    if (this.frame) cancelAnimationFrame(this.frame);
    this.frame = 0;
    this.body.replaceChildren(render(this.text, { citation: (n) => this.marker(n) }));
    this.scroll();
  }

  /** A `[n]` in the answer, when source n exists, becomes a button that opens it. */
  marker(number) {
    const citation = this.citations[number - 1];
    if (!citation) return null;
    return el('button', {
      type: 'button', className: 'cite', onclick: () => showSource(number, citation),
      'aria-label': `Source ${number}: ${citation.filename}`,
    }, `[${number}]`);
  }

  setCitations(citations) {
    this.citations = citations;
    const list = el('ol', { className: 'source-list' });
    citations.forEach((citation, index) => {
      const where = citation.page !== null && citation.page !== undefined ? `, page ${citation.page}` : '';
      list.append(el('li', {}, el('button', {
        type: 'button', className: 'source', onclick: () => showSource(index + 1, citation),
      }, `${citation.filename}${where}`)));
    });
    this.sources.replaceChildren(el('h3', {}, 'Sources'), list);
    this.sources.hidden = citations.length === 0;
    if (this.text) this.renderBody();
  }

  finish(footer, kind = 'done') {
    this.renderBody();
    this.node.dataset.state = kind;
    this.node.setAttribute('aria-busy', 'false');
    this.footer.textContent = footer;
    this.footer.hidden = !footer;
  }
}

function appendUser(text) {
  $('messages').append(el('li', { className: 'message user' },
    el('span', { className: 'visually-hidden' }, 'You: '), el('p', { className: 'user-text' }, text)));
}

function requestBody() {
  const body = {
    messages: history.slice(-HISTORY_LIMIT).map((m) => ({ role: m.role, content: m.content.slice(0, CONTENT_LIMIT) })),
    stream: true,
    use_rag: $('use-rag').checked,
  };
  if ($('model').value) body.model = $('model').value;
  if (body.use_rag && selected.size > 0) body.document_ids = [...selected];
  return body;
}

function footerFor(done) {
  const parts = [];
  if (done.model) parts.push(done.model);
  const usage = done.usage || {};
  if (Number.isFinite(usage.total_tokens)) parts.push(`${usage.total_tokens} tokens`);
  const ms = done.processing_time_ms;
  if (Number.isFinite(ms)) parts.push(ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`);
  return parts.join(' · ');
}

async function ask(text) {
  history.push({ role: 'user', content: text });
  appendUser(text);
  const view = new AnswerView();
  controller = new AbortController();
  setStreaming(true);
  let done = null;
  try {
    const response = await api.chatStream(requestBody(), controller.signal);
    view.footer.textContent = 'Answering…';
    for await (const event of events(response)) {
      if (Array.isArray(event.citations)) view.setCitations(event.citations);
      if (typeof event.token === 'string') view.setText(view.text + event.token);
      if (event.error) {
        const code = event.error.code || 'stream_error';
        throw new ApiError({ status: STREAM_ERROR_STATUS[code] || 502, code, message: event.error.message || '' });
      }
      if (event.done) done = event;
    }
    if (!done) {
      throw new ApiError({ status: 502, code: 'stream_cut', message: 'the connection closed before the answer was complete' });
    }
    history.push({ role: 'assistant', content: view.text });
    view.finish(footerFor(done) || 'Done.');
    announce('Answer complete.');
  } catch (error) {
    if (error && error.name === 'AbortError') {
      if (view.text) history.push({ role: 'assistant', content: view.text });
      else history.pop();
      view.finish('Stopped.', 'stopped');
      announce('Answer stopped.');
    } else {
      // The question stays on screen but leaves the history, so asking again works.
      history.pop();
      if (view.text) history.push({ role: 'user', content: text }, { role: 'assistant', content: view.text });
      view.footer.before(el('p', { className: 'message-error', role: 'alert' }, describe(error)));
      view.finish('', 'failed');
    }
  } finally {
    controller = null;
    setStreaming(false);
  }
}

function stop() {
  if (controller) controller.abort();
}

async function loadModels() {
  const select = $('model');
  try {
    const list = await api.models();
    const previous = select.value;
    select.replaceChildren(el('option', { value: '' }, 'Server default'));
    for (const model of list.data || []) {
      select.append(el('option', { value: model.id }, model.owned_by ? `${model.id} (${model.owned_by})` : model.id));
    }
    select.value = previous;
  } catch (error) {
    if (error.status !== 401) showError(error);
  }
}

function renderDocumentChoice(documents) {
  const ready = documents.filter((d) => d.status === 'ready');
  for (const id of [...selected]) {
    if (!ready.some((d) => d.id === id)) selected.delete(id);
  }
  const list = $('doc-choice-list');
  const current = new Map([...list.querySelectorAll('input')].map((input) => [input.value, input]));
  const wanted = new Set(ready.map((d) => d.id));
  for (const [id, input] of current) {
    if (!wanted.has(id)) input.closest('.checkbox').remove();
  }
  for (const doc of ready) {
    if (current.has(doc.id)) continue;
    const id = `doc-choice-${doc.id}`;
    const input = el('input', { type: 'checkbox', id, value: doc.id, checked: selected.has(doc.id) });
    input.addEventListener('change', () => {
      if (input.checked) selected.add(doc.id);
      else selected.delete(doc.id);
      updateChoiceSummary();
    });
    list.append(el('div', { className: 'field checkbox' }, input, el('label', { for: id }, doc.filename)));
  }
  if (ready.length === 0) list.replaceChildren(el('p', { className: 'hint' }, 'No ready documents yet.'));
  else list.querySelector('p.hint')?.remove();
  updateChoiceSummary();
}

function updateChoiceSummary() {
  $('doc-choice-summary').textContent = selected.size === 0
    ? 'Search all ready documents'
    : `Search ${selected.size} selected document${selected.size === 1 ? '' : 's'}`;
}

function newChat() {
  stop();
  history = [];
  $('messages').replaceChildren();
  $('prompt').focus();
}

export function initChat() {
  $('chat-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const prompt = $('prompt');
    const text = prompt.value.trim();
    if (!text || controller) return;
    if (text.length > CONTENT_LIMIT) {
      showError(`Messages are limited to ${CONTENT_LIMIT} characters; this one has ${text.length}.`);
      return;
    }
    prompt.value = '';
    ask(text);
  });
  $('prompt').addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $('chat-form').requestSubmit();
    } else if (event.key === 'Escape' && controller) {
      stop();
    }
  });
  $('stop').addEventListener('click', stop);
  $('new-chat').addEventListener('click', newChat);
  $('use-rag').addEventListener('change', () => {
    $('doc-choice').hidden = !$('use-rag').checked;
  });
  onDocumentsChange(renderDocumentChoice);
}

export function startChat() {
  renderDocumentChoice([]);
  loadModels();
}

export function stopChat() {
  stop();
  history = [];
  selected.clear();
  $('messages').replaceChildren();
  $('doc-choice-list').replaceChildren();
}
