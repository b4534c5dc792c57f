// Modal dialogs: a delete confirmation and the cited-source viewer. Native <dialog> gives
// focus trapping, Escape to close and focus return for free.
import { $, el } from './dom.js';

/** Resolves true when the user confirms. `text` is shown as text, never as HTML. */
export function confirmDialog(title, text, action = 'Delete') {
  const dialog = $('confirm-dialog');
  $('confirm-title').textContent = title;
  $('confirm-text').textContent = text;
  $('confirm-ok').textContent = action;
  return new Promise((resolve) => {
    const finish = (answer) => {
      $('confirm-ok').removeEventListener('click', yes);
      $('confirm-cancel').removeEventListener('click', no);
      dialog.removeEventListener('close', no);
      if (dialog.open) dialog.close();
      resolve(answer);
    };
    const yes = () => finish(true);
    const no = () => finish(false);
    $('confirm-ok').addEventListener('click', yes);
    $('confirm-cancel').addEventListener('click', no);
    dialog.addEventListener('close', no);
    dialog.showModal();
    $('confirm-cancel').focus();
  });
}

/** Shows one citation: its document's name, where it is, and the chunk's text. */
export function showSource(number, citation) {
  const dialog = $('source-dialog');
  $('source-title').textContent = `[${number}] ${citation.filename || 'Unknown document'}`;
  const where = [`chunk ${Number(citation.chunk_index) + 1}`];
  if (citation.page !== null && citation.page !== undefined) where.push(`page ${citation.page}`);
  if (Number.isFinite(citation.score)) where.push(`score ${citation.score.toFixed(3)}`);
  $('source-meta').textContent = where.join(' · ');
  const body = $('source-text');
  body.replaceChildren(...String(citation.text || '').split(/\n{2,}/).map((part) => el('p', {}, part)));
  dialog.showModal();
  $('source-close').focus();
}

export function initDialogs() {
  $('source-close').addEventListener('click', () => $('source-dialog').close());
  // A click on the backdrop (outside the dialog's box) closes it too.
  for (const dialog of document.querySelectorAll('dialog')) {
    dialog.addEventListener('click', (event) => {
      if (event.target === dialog) dialog.close();
    });
  }
}
