// Small DOM helpers: element construction without innerHTML (so no text the
// server or another user sent is ever parsed as markup) and the error area.

/**
 * h('button', {type: 'button', onclick: f, class: 'x'}, 'Label', child…)
 * Attributes whose value is false/null/undefined are left out.
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === false || v === null || v === undefined) continue;
      if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k === 'class') el.className = v;
      else if (k === 'dataset') {
        for (const [dk, dv] of Object.entries(v)) if (dv !== false && dv !== null && dv !== undefined) el.dataset[dk] = dv;
      }
      else if (v === true) el.setAttribute(k, '');
      else el.setAttribute(k, String(v));
    }
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

/** Shows an error (ApiError, FrameError or Error) with its code in the alert area. */
export function showError(err, context) {
  const box = document.getElementById('errors');
  const code = err && err.code ? err.code : 'error';
  const msg = err && err.message ? err.message : String(err);
  const retry = err && err.retryAfterMs ? ` (retry in ${Math.ceil(err.retryAfterMs / 1000)} s)` : '';
  const item = h('div', { class: 'error', dataset: { code } },
    h('strong', null, context ? `${context}: ` : ''),
    h('code', null, code), ' ', msg + retry,
    h('button', { type: 'button', class: 'link', 'aria-label': 'Dismiss error', onclick: () => item.remove() }, '✕'));
  box.append(item);
  while (box.children.length > 4) box.firstElementChild.remove();
  setTimeout(() => item.remove(), 15000);
  if (err && !err.code) console.error(err);
}

export function clearErrors() {
  document.getElementById('errors').replaceChildren();
}

export function fmtTime(ms) {
  if (!ms) return '';
  const d = new Date(ms);
  const now = new Date();
  const sameDay = d.toDateString() === now.toDateString();
  return sameDay ? d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })
    : d.toLocaleString([], { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}

/**
 * Replaces el's content with the result of build(), keeping keyboard focus
 * on the equivalent element (same data-focus key) when it was inside.
 */
export function rebuild(el, ...nodes) {
  const active = document.activeElement;
  const key = active && el.contains(active) ? active.dataset.focus : null;
  el.replaceChildren(...nodes);
  if (key) {
    const again = el.querySelector(`[data-focus="${CSS.escape(key)}"]`);
    if (again) again.focus();
  }
}
