// The page-wide message bar: one error or notice at a time, announced (role="alert"),
// dismissable with its button or Escape.
import { $ } from './dom.js';
import { describe } from './api.js';

let hideTimer = null;

/** Shows `error` (an ApiError or any Error) or a plain string. */
export function showError(error) {
  show(typeof error === 'string' ? error : describe(error), 'error');
}

export function showInfo(text) {
  show(text, 'info');
  hideTimer = setTimeout(hideNotice, 6000);
}

function show(text, kind) {
  clearTimeout(hideTimer);
  const notice = $('notice');
  $('notice-text').textContent = text;
  notice.dataset.kind = kind;
  notice.hidden = false;
}

export function hideNotice() {
  clearTimeout(hideTimer);
  $('notice').hidden = true;
}

export function initNotice() {
  $('notice-close').addEventListener('click', hideNotice);
  document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && !$('notice').hidden && !document.querySelector('dialog[open]')) {
      hideNotice();
    }
  });
}
