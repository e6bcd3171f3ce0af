// Security view (admins): the security event stream, newest first, with
// filters by type and actor and paging to older events
// (GET /v1/admin/security-events, docs/protocol.md).

import { h, $, showError } from './dom.js';

export const SECURITY_EVENTS = (q) => '/v1/admin/security-events?' + new URLSearchParams(q).toString();

const PAGE = 50;

function when(ms) {
  const d = new Date(ms);
  return d.toLocaleString([], { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

export class Security {
  constructor(app) {
    this.app = app;
    this.oldestShown = 0;
    $('#sec-filter').addEventListener('submit', (ev) => { ev.preventDefault(); this.load(); });
    $('#sec-older').addEventListener('click', () => this.load({ more: true }));
  }

  get api() { return this.app.api; }

  query(before) {
    const q = { limit: String(PAGE) };
    const type = $('#sec-type').value;
    const actor = $('#sec-actor').value.trim();
    if (type) q.type = type;
    if (actor) q.actor = actor;
    if (before) q.before = String(before);
    return q;
  }

  async load({ more = false } = {}) {
    const body = $('#sec-table tbody');
    try {
      const res = await this.api.get(SECURITY_EVENTS(this.query(more ? this.oldestShown : 0)));
      this.fillTypes(res.types || []);
      const rows = (res.events || []).map((e) => this.row(e));
      if (more) body.append(...rows);
      else body.replaceChildren(...rows);
      if (!more && !rows.length) body.replaceChildren(h('tr', null, h('td', { colspan: 7, class: 'hint' }, 'No events match.')));
      const evs = res.events || [];
      if (evs.length) this.oldestShown = evs[evs.length - 1].id;
      $('#sec-older').hidden = evs.length < PAGE || this.oldestShown <= (res.oldest || 0);
      $('#sec-window').textContent = res.last
        ? `The server keeps events ${res.oldest || res.last} to ${res.last} (at most ${Number(res.max).toLocaleString()}).`
        : 'No security events yet.';
    } catch (e) {
      showError(e, 'Security events');
    }
  }

  fillTypes(types) {
    const sel = $('#sec-type');
    if (sel.options.length > 1 || !types.length) return;
    sel.append(...types.map((t) => h('option', { value: t }, t)));
  }

  row(e) {
    const details = Object.entries(e.details || {}).map(([k, v]) => `${k}=${v}`).join(' ');
    const target = e.target ? (e.target_kind ? `${e.target_kind} ${e.target}` : e.target) : '';
    return h('tr', { dataset: { id: e.id, type: e.type } },
      h('td', { class: 'num' }, String(e.id)),
      h('td', null, h('time', { datetime: new Date(e.at).toISOString() }, when(e.at))),
      h('td', null, h('code', null, e.type)),
      h('td', { class: e.outcome === 'success' ? 'good' : 'bad' }, e.outcome),
      h('td', null, e.actor || h('span', { class: 'hint' }, 'unknown')),
      h('td', null, target),
      h('td', null, e.client_addr || '', e.user_agent ? h('span', { class: 'hint sub', title: e.user_agent }, e.user_agent) : null,
        details ? h('span', { class: 'sub' }, details) : null));
  }
}
