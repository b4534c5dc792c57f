// Documents: upload (picker or drag and drop, a progress bar per file), the list with live
// status, and delete with confirmation. The list updates rows in place so polling never
// steals keyboard focus.
import { $, el, announce, formatBytes } from './dom.js';
import { api, upload, describe } from './api.js';
import { confirmDialog } from './dialogs.js';
import { showError, showInfo } from './notice.js';

const POLL_BUSY_MS = 2000;
const POLL_IDLE_MS = 30000;
const STATUS_LABELS = { queued: 'Queued', processing: 'Processing', ready: 'Ready', failed: 'Failed' };

const documents = new Map();
const rows = new Map();
const listeners = [];
const pending = [];
let uploading = false;
let pollTimer = null;
let active = false;

/** `listener(documents)` runs whenever the list changes (the chat's document choice). */
export function onDocumentsChange(listener) {
  listeners.push(listener);
}

export function allDocuments() {
  return [...documents.values()];
}

function busy() {
  return uploading || allDocuments().some((d) => d.status === 'queued' || d.status === 'processing');
}

/** Plans the next poll: soon while something is being processed, and never sooner than a
 * rate limit's Retry-After. */
function schedule(notBefore = 0) {
  clearTimeout(pollTimer);
  if (active) pollTimer = setTimeout(refresh, Math.max(notBefore, busy() ? POLL_BUSY_MS : POLL_IDLE_MS));
}

export async function refresh() {
  if (!active) return;
  let wait = 0;
  try {
    const items = await api.listDocuments();
    if (active) apply(items);
  } catch (error) {
    if (error.status !== 401) showError(error);
    if (error.retryAfter) wait = error.retryAfter * 1000;
  } finally {
    schedule(wait);
  }
}

function apply(items) {
  const seen = new Set();
  const list = $('document-list');
  items.forEach((doc, index) => {
    seen.add(doc.id);
    const before = documents.get(doc.id);
    if (before && before.status !== doc.status) {
      if (doc.status === 'ready') announce(`${doc.filename} is ready.`);
      if (doc.status === 'failed') announce(`${doc.filename} failed: ${doc.error || 'unknown error'}.`);
    }
    documents.set(doc.id, doc);
    let row = rows.get(doc.id);
    if (!row) {
      row = createRow(doc);
      rows.set(doc.id, row);
    }
    updateRow(row, doc);
    if (list.children[index] !== row) list.insertBefore(row, list.children[index] || null);
  });
  for (const id of [...documents.keys()]) {
    if (!seen.has(id)) removeRow(id);
  }
  $('documents-empty').hidden = documents.size > 0;
  for (const listener of listeners) listener(allDocuments());
}

function removeRow(id) {
  documents.delete(id);
  const row = rows.get(id);
  if (row) row.remove();
  rows.delete(id);
}

function createRow(doc) {
  const row = el('li', { className: 'document', 'data-id': doc.id });
  row.parts = {
    name: el('span', { className: 'doc-name' }),
    status: el('span', { className: 'badge' }),
    meta: el('span', { className: 'doc-meta' }),
    error: el('p', { className: 'doc-error' }),
    progress: el('progress', { 'aria-label': `Processing ${doc.filename}` }),
    remove: el('button', { type: 'button', className: 'danger small', 'aria-label': `Delete ${doc.filename}` }, 'Delete'),
  };
  row.parts.remove.addEventListener('click', () => remove(doc.id));
  row.append(
    el('div', { className: 'doc-head' }, row.parts.name, row.parts.status),
    row.parts.meta,
    row.parts.progress,
    row.parts.error,
    row.parts.remove,
  );
  return row;
}

function updateRow(row, doc) {
  const { name, status, meta, error, progress } = row.parts;
  row.dataset.status = doc.status;
  name.textContent = doc.filename;
  name.title = doc.filename;
  status.textContent = STATUS_LABELS[doc.status] || doc.status;
  status.className = `badge status-${doc.status}`;
  const chunks = doc.status === 'ready' ? `${doc.chunk_count} chunk${doc.chunk_count === 1 ? '' : 's'} · ` : '';
  meta.textContent = `${chunks}${formatBytes(doc.size_bytes)}`;
  error.textContent = doc.status === 'failed' ? doc.error || 'Processing failed.' : '';
  error.hidden = doc.status !== 'failed';
  progress.hidden = !(doc.status === 'queued' || doc.status === 'processing');
}

async function remove(id) {
  const doc = documents.get(id);
  if (!doc) return;
  const yes = await confirmDialog('Delete this document?',
    `"${doc.filename}" and everything ragd learned from it will be deleted. This cannot be undone.`);
  if (!yes) return;
  const row = rows.get(id);
  const next = row && (row.nextElementSibling || row.previousElementSibling);
  try {
    await api.deleteDocument(id);
  } catch (error) {
    if (error.status !== 404) {
      showError(error);
      return;
    }
  }
  removeRow(id);
  $('documents-empty').hidden = documents.size > 0;
  for (const listener of listeners) listener(allDocuments());
  announce(`${doc.filename} deleted.`);
  // Keep keyboard users in the list: focus the neighbouring row's button, or the picker.
  (next ? next.querySelector('button') : $('choose-files')).focus();
}

/** Queues files for upload; each gets its own row with a progress bar. */
export function uploadFiles(files) {
  for (const file of files) {
    const progress = el('progress', { max: 1, value: 0, 'aria-label': `Uploading ${file.name}` });
    const state = el('span', { className: 'upload-state' }, 'Waiting…');
    const cancel = el('button', { type: 'button', className: 'secondary small', 'aria-label': `Cancel upload of ${file.name}` }, 'Cancel');
    const row = el('li', { className: 'upload' },
      el('div', { className: 'doc-head' }, el('span', { className: 'doc-name', title: file.name }, file.name),
        el('span', { className: 'doc-meta' }, formatBytes(file.size))),
      progress, state, cancel);
    $('uploads').append(row);
    const job = { file, row, progress, state, cancel, abort: null, cancelled: false };
    cancel.addEventListener('click', () => {
      job.cancelled = true;
      if (job.abort) job.abort();
      else fail(job, 'Cancelled.');
    });
    pending.push(job);
  }
  pump();
}

async function pump() {
  if (uploading) return;
  uploading = true;
  schedule();
  while (pending.length > 0) {
    const job = pending.shift();
    if (job.cancelled) continue;
    job.state.textContent = 'Uploading… 0%';
    const { promise, abort } = upload(job.file, (fraction) => {
      job.progress.value = fraction;
      job.state.textContent = `Uploading… ${Math.round(fraction * 100)}%`;
    });
    job.abort = abort;
    try {
      const accepted = await promise;
      job.state.textContent = 'Uploaded.';
      announce(`${job.file.name} uploaded.`);
      if (accepted && accepted.message && accepted.status && accepted.status !== 'queued') showInfo(accepted.message);
      // The document's own row (with its processing status) takes over from the upload's.
      await refresh();
      job.row.remove();
    } catch (error) {
      fail(job, describe(error));
      if (!(error && error.name === 'AbortError')) announce(`${job.file.name}: ${describe(error)}`);
    }
  }
  uploading = false;
  schedule();
}

/** Ends a failed or cancelled upload: its row stays, with the reason, until dismissed. */
function fail(job, text) {
  job.state.textContent = text;
  job.row.classList.add('failed');
  job.cancel.remove();
  job.progress.remove();
  job.row.append(el('button', {
    type: 'button', className: 'secondary small', onclick: () => job.row.remove(),
    'aria-label': `Dismiss ${job.file.name}`,
  }, 'Dismiss'));
}

export function initDocuments() {
  const input = $('file-input');
  $('choose-files').addEventListener('click', () => input.click());
  input.addEventListener('change', () => {
    uploadFiles([...input.files]);
    input.value = '';
  });
  const zone = $('documents');
  let depth = 0;
  zone.addEventListener('dragenter', (event) => {
    if (!event.dataTransfer || ![...event.dataTransfer.types].includes('Files')) return;
    event.preventDefault();
    depth += 1;
    $('dropzone').classList.add('dragging');
  });
  zone.addEventListener('dragover', (event) => {
    if (event.dataTransfer && [...event.dataTransfer.types].includes('Files')) event.preventDefault();
  });
  zone.addEventListener('dragleave', () => {
    depth = Math.max(0, depth - 1);
    if (depth === 0) $('dropzone').classList.remove('dragging');
  });
  zone.addEventListener('drop', (event) => {
    event.preventDefault();
    depth = 0;
    $('dropzone').classList.remove('dragging');
    const files = event.dataTransfer ? [...event.dataTransfer.files] : [];
    if (files.length > 0) uploadFiles(files);
  });
  // A file dropped anywhere else must not make the browser leave the app to open it.
  for (const type of ['dragover', 'drop']) {
    window.addEventListener(type, (event) => {
      if (event.dataTransfer && [...event.dataTransfer.types].includes('Files')) event.preventDefault();
    });
  }
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && active) refresh();
  });
}

export function startDocuments() {
  active = true;
  refresh();
}

export function stopDocuments() {
  active = false;
  clearTimeout(pollTimer);
  for (const id of [...documents.keys()]) removeRow(id);
  $('uploads').replaceChildren();
  pending.length = 0;
}
