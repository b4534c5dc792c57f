// A small, safe Markdown renderer for model answers. It never parses HTML: the text is split
// into blocks and inline spans, and every piece becomes a DOM node whose text is set with
// textContent. `<script>` in an answer is shown as the characters `<script>`. Links are kept
// only for http(s) and mailto URLs; images are not loaded (they would leave the machine).
import { el } from './dom.js';

const FENCE = /^\s{0,3}(`{3,}|~{3,})\s*([\w+-]*)/;
const HEADING = /^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
const RULE = /^\s{0,3}([-*_])(\s*\1){2,}\s*$/;
const QUOTE = /^\s{0,3}>\s?/;
const ITEM = /^(\s*)([-*+]|(\d{1,9})[.)])\s+(.*)$/;
const TABLE_RULE = /^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$/;

/**
 * Renders `text` into a DocumentFragment.
 * `options.citation(n)` may return a node for a `[n]` marker (a numbered source), or null.
 */
export function render(text, options = {}) {
  const fragment = document.createDocumentFragment();
  renderBlocks(fragment, String(text).split(/\r\n|\r|\n/), options);
  return fragment;
}

function startsBlock(line) {
  return FENCE.test(line) || HEADING.test(line) || RULE.test(line) || QUOTE.test(line) || ITEM.test(line);
}

function renderBlocks(parent, lines, options) {
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (line.trim() === '') {
      i += 1;
      continue;
    }
    const fence = FENCE.exec(line);
    if (fence) {
      const body = [];
      i += 1;
      while (i < lines.length && !lines[i].trim().startsWith(fence[1])) {
        body.push(lines[i]);
        i += 1;
      }
      i += 1;
      const code = el('code', {}, body.join('\n'));
      if (fence[2]) code.dataset.language = fence[2];
      parent.append(el('pre', {}, code));
      continue;
    }
    const heading = HEADING.exec(line);
    if (heading) {
      // Answers sit under the page's h2: their headings start at h3.
      const level = Math.min(6, heading[1].length + 2);
      const node = el(`h${level}`);
      renderInline(node, heading[2], options);
      parent.append(node);
      i += 1;
      continue;
    }
    if (RULE.test(line)) {
      parent.append(el('hr'));
      i += 1;
      continue;
    }
    if (QUOTE.test(line)) {
      const body = [];
      while (i < lines.length && QUOTE.test(lines[i])) {
        body.push(lines[i].replace(QUOTE, ''));
        i += 1;
      }
      const quote = el('blockquote');
      renderBlocks(quote, body, options);
      parent.append(quote);
      continue;
    }
    if (ITEM.test(line)) {
      i = renderList(parent, lines, i, options);
      continue;
    }
    if (line.includes('|') && i + 1 < lines.length && TABLE_RULE.test(lines[i + 1])) {
      i = renderTable(parent, lines, i, options);
      continue;
    }
    const paragraph = [];
    while (i < lines.length && lines[i].trim() !== '' && !(paragraph.length > 0 && startsBlock(lines[i]))) {
      paragraph.push(lines[i].trim());
      i += 1;
    }
    const p = el('p');
    renderInline(p, paragraph.join('\n'), options);
    parent.append(p);
  }
}

/** A list starting at `lines[start]`; deeper-indented items become a nested list. */
function renderList(parent, lines, start, options) {
  const first = ITEM.exec(lines[start]);
  const indent = first[1].length;
  const ordered = first[3] !== undefined;
  const list = el(ordered ? 'ol' : 'ul');
  if (ordered && Number(first[3]) !== 1) list.start = Number(first[3]);
  let i = start;
  let item = null;
  while (i < lines.length) {
    const line = lines[i];
    const match = ITEM.exec(line);
    if (match && match[1].length === indent && (match[3] !== undefined) === ordered) {
      item = el('li');
      renderInline(item, match[4], options);
      list.append(item);
      i += 1;
    } else if (match && match[1].length > indent && item) {
      i = renderList(item, lines, i, options);
    } else if (line.trim() !== '' && /^\s+/.test(line) && item && !match) {
      item.append(' ');
      renderInline(item, line.trim(), options);
      i += 1;
    } else {
      break;
    }
  }
  parent.append(list);
  return i;
}

function cells(line) {
  return line.trim().replace(/^\|/, '').replace(/\|$/, '').split('|').map((c) => c.trim());
}

function renderTable(parent, lines, start, options) {
  const head = el('tr');
  for (const cell of cells(lines[start])) {
    const th = el('th', { scope: 'col' });
    renderInline(th, cell, options);
    head.append(th);
  }
  const body = el('tbody');
  let i = start + 2;
  while (i < lines.length && lines[i].includes('|') && lines[i].trim() !== '') {
    const row = el('tr');
    for (const cell of cells(lines[i])) {
      const td = el('td');
      renderInline(td, cell, options);
      row.append(td);
    }
    body.append(row);
    i += 1;
  }
  parent.append(el('div', { className: 'table-wrap' }, el('table', {}, el('thead', {}, head), body)));
  return i;
}

/** Only absolute http(s) and mailto URLs survive; anything else (javascript:, data:) is dropped. */
export function safeUrl(raw) {
  try {
    const url = new URL(raw);
    return ['http:', 'https:', 'mailto:'].includes(url.protocol) ? url.href : null;
  } catch {
    return null;
  }
}

const ESCAPABLE = /[\\`*_{}[\]()#+\-.!|>~]/;
const LINK = /^!?\[([^\]\n]+)\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/;
const CITATION = /^\[(\d{1,3})\]/;
const AUTOLINK = /^https?:\/\/[^\s<>()]+[^\s<>().,;:!?'"]/;

/** Code spans, links, citation markers, bold, italic, strikethrough and line breaks. */
function renderInline(parent, text, options) {
  let buffer = '';
  const flush = () => {
    if (buffer) parent.append(document.createTextNode(buffer));
    buffer = '';
  };
  let i = 0;
  while (i < text.length) {
    const ch = text[i];
    const rest = text.slice(i);
    if (ch === '\\' && i + 1 < text.length && ESCAPABLE.test(text[i + 1])) {
      buffer += text[i + 1];
      i += 2;
      continue;
    }
    if (ch === '\n') {
      flush();
      parent.append(el('br'));
      i += 1;
      continue;
    }
    if (ch === '`') {
      const ticks = /^`+/.exec(rest)[0];
      const end = text.indexOf(ticks, i + ticks.length);
      if (end > i) {
        flush();
        parent.append(el('code', {}, text.slice(i + ticks.length, end).trim() || ' '));
        i = end + ticks.length;
        continue;
      }
    }
    if (ch === '[' && options.citation) {
      const marker = CITATION.exec(rest);
      const node = marker ? options.citation(Number(marker[1])) : null;
      if (node) {
        flush();
        parent.append(node);
        i += marker[0].length;
        continue;
      }
    }
    if (ch === '[' || (ch === '!' && text[i + 1] === '[')) {
      const link = LINK.exec(rest);
      if (link) {
        flush();
        const href = ch === '!' ? null : safeUrl(link[2]);
        if (href) {
          const anchor = el('a', { href, target: '_blank', rel: 'noopener noreferrer nofollow' });
          renderInline(anchor, link[1], options);
          parent.append(anchor);
        } else {
          renderInline(parent, link[1], options);
        }
        i += link[0].length;
        continue;
      }
    }
    if (ch === 'h' && !/\w/.test(text[i - 1] || '')) {
      const url = AUTOLINK.exec(rest);
      if (url && safeUrl(url[0])) {
        flush();
        parent.append(el('a', { href: safeUrl(url[0]), target: '_blank', rel: 'noopener noreferrer nofollow' }, url[0]));
        i += url[0].length;
        continue;
      }
    }
    if (ch === '*' || ch === '_' || ch === '~') {
      const emphasis = matchEmphasis(text, i, ch);
      if (emphasis) {
        flush();
        const node = el(emphasis.tag);
        renderInline(node, emphasis.inner, options);
        parent.append(node);
        i = emphasis.end;
        continue;
      }
    }
    buffer += ch;
    i += 1;
  }
  flush();
}

/** `**bold**`, `*em*`, `__bold__`, `_em_`, `~~del~~` starting at `i`, or null. */
function matchEmphasis(text, i, ch) {
  const double = text[i + 1] === ch;
  if (ch === '~' && !double) return null;
  const marker = double ? ch + ch : ch;
  const open = i + marker.length;
  if (open >= text.length || /\s/.test(text[open])) return null;
  // Intraword underscores (snake_case) are not emphasis.
  if (ch === '_' && /\w/.test(text[i - 1] || '')) return null;
  let close = -1;
  for (let from = open + 1; ; from = close + 1) {
    close = text.indexOf(marker, from);
    if (close === -1) return null;
    const adjacent = !double && (text[close + 1] === ch || text[close - 1] === ch);
    if (!/\s/.test(text[close - 1]) && !adjacent) break;
  }
  if (ch === '_' && /\w/.test(text[close + marker.length] || '')) return null;
  const tag = ch === '~' ? 'del' : double ? 'strong' : 'em';
  return { tag, inner: text.slice(open, close), end: close + marker.length };
}
