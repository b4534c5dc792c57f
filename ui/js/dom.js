// Small DOM helpers. Text always goes in through textContent, never through HTML parsing, so
// nothing from the server, a model or a document can become markup.

/** `$('id')`: the element with that id (the page's fixed structure). */
export function $(id) {
  const element = document.getElementById(id);
  if (!element) throw new Error(`missing #${id}`);
  return element;
}

/**
 * Creates an element: `el('button', { className: 'x', type: 'button', onclick }, 'Label')`.
 * Properties are assigned as DOM properties (never `innerHTML`); `aria-*`, `data-*` and `for`
 * go through setAttribute. Children are nodes or strings (strings become text nodes).
 */
export function el(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'innerHTML' || key === 'outerHTML') throw new Error('no HTML injection');
    if (key.startsWith('aria-') || key.startsWith('data-') || key === 'for' || key === 'role') {
      element.setAttribute(key, value === true ? '' : String(value));
    } else {
      element[key] = value;
    }
  }
  element.append(...children.filter((c) => c !== null && c !== undefined && c !== false));
  return element;
}

/** Screen-reader announcement of a short status ("report.md is ready"). */
export function announce(text) {
  const announcer = $('announcer');
  announcer.textContent = '';
  // A new text node in a separate task is what makes screen readers speak repeats too.
  setTimeout(() => { announcer.textContent = text; }, 50);
}

/** Human file size: 1.2 MB. */
export function formatBytes(bytes) {
  if (!Number.isFinite(bytes)) return '';
  const units = ['B', 'KB', 'MB', 'GB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit === 0 || value >= 10 ? 0 : 1)} ${units[unit]}`;
}
