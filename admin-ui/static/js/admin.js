// Admin views: People (users, their sessions and devices, deactivation,
// revocation) and Plugins (state, hooks and counters, enable/disable/reload,
// effective config with secrets masked).
//
// Every endpoint the console calls is listed in ENDPOINTS, so that the
// console and the API documentation can be compared in one place. A route
// the server does not have (a feature not installed yet) shows a note
// instead of an error.

import { h, $, showError, fmtTime } from './dom.js';
import { seg } from './api.js';

export const ENDPOINTS = {
  users: (q) => '/v1/users?limit=200' + (q ? '&q=' + encodeURIComponent(q) : ''),
  sessions: (uid) => `/v1/admin/users/${seg(uid)}/sessions`,
  revokeSession: (uid, sid) => `/v1/admin/sessions/${seg(sid)}`,
  revokeAllSessions: (uid) => `/v1/admin/users/${seg(uid)}/revoke-sessions`,
  devices: (uid) => `/v1/admin/users/${seg(uid)}/devices`,
  revokeDevice: (uid, did) => `/v1/admin/users/${seg(uid)}/devices/${seg(did)}`,
  deactivate: (uid) => `/v1/admin/users/${seg(uid)}/deactivate`,
  reactivate: (uid) => `/v1/admin/users/${seg(uid)}/reactivate`,
  invites: () => '/v1/admin/invites', // GET → {invites}; POST {max_uses, expires_in, note} → {token, …}
  revokeInvite: (id) => `/v1/admin/invites/${seg(id)}`,
  plugins: () => '/v1/admin/plugins', // → {file, loaded_at, plugins: [status]}
  // Not in the plugin host's API yet, which toggles plugins only by editing
  // plugins.yaml and reloading: enable/disable one plugin from the console.
  enable: (id) => `/v1/admin/plugins/${seg(id)}/enable`,
  disable: (id) => `/v1/admin/plugins/${seg(id)}/disable`,
  reload: () => '/v1/admin/plugins/reload', // → {started, stopped, swapped, reconfigured}
  // Roles (core/authz, docs/authorization.md).
  assignments: (subject) => '/v1/admin/assignments?subject=' + encodeURIComponent(subject), // → {assignments: [{subject, role, scope}]}
  assign: () => '/v1/admin/assignments', // PUT/DELETE {subject, role, scope}
  roles: () => '/v1/admin/roles', // → {roles: [{name, inherits, builtin}]}
  clearance: (uid) => `/v1/admin/users/${seg(uid)}/clearance`, // PUT {clearance}
  orgs: () => '/v1/orgs', // → {orgs: [{id, name}]}
  spaces: (org) => '/v1/spaces?org=' + encodeURIComponent(org), // → {spaces: [{id, org, name}]}
  rooms: () => '/v1/rooms', // the admin's own rooms → {rooms: [{id, name}]}
};

/** Scope types of the role form: the value's prefix and the label. */
const SCOPE_KINDS = [['sys', 'System'], ['org', 'Organization'], ['space', 'Space'], ['room', 'Room']];

/** Where each built-in role may be assigned (docs/authorization.md); custom roles go anywhere. */
const ROLE_LEVEL = { superadmin: 'sys', orgadmin: 'org', spaceadmin: 'space', roomadmin: 'room' };

const SECRET_KEY = /secret|token|password|passwd|private|credential|api[_-]?key|^key$/i;

/** Masks values under secret-looking keys; the server masks too, this is a second fence. */
export function mask(v, key = '') {
  if (SECRET_KEY.test(key) && v !== null && v !== undefined && v !== '') return '••••••';
  if (Array.isArray(v)) return v.map((x) => mask(x));
  if (v && typeof v === 'object') {
    const out = {};
    for (const [k, x] of Object.entries(v)) out[k] = mask(x, k);
    return out;
  }
  return v;
}

function note(el, text) {
  el.hidden = !text;
  el.textContent = text || '';
}

function table(caption, head, rows) {
  return h('table', { class: 'grid' }, h('caption', null, caption),
    h('thead', null, h('tr', null, head.map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', null, rows.length ? rows : h('tr', null, h('td', { colspan: head.length, class: 'hint' }, 'None.'))));
}

export class People {
  constructor(app) {
    this.app = app;
    this.selected = null;
    $('#people-filter').addEventListener('submit', (ev) => { ev.preventDefault(); this.load(); });
    $('#invite-form').addEventListener('submit', (ev) => { ev.preventDefault(); this.createInvite(); });
    $('#invite-copy').addEventListener('click', async () => {
      const input = $('#invite-link');
      input.select();
      try { await navigator.clipboard.writeText(input.value); $('#invite-copy').textContent = 'Copied'; } catch { /* selected for a manual copy */ }
    });
  }

  async createInvite() {
    const body = {
      max_uses: Number($('#invite-uses').value) || 1,
      expires_in: Math.round((Number($('#invite-days').value) || 7) * 86400),
    };
    const note = $('#invite-note').value.trim();
    if (note) body.note = note;
    try {
      const inv = await this.api.post(ENDPOINTS.invites(), body);
      $('#invite-new').hidden = false;
      $('#invite-copy').textContent = 'Copy';
      const link = $('#invite-link');
      link.value = `${location.origin}/#/join/${encodeURIComponent(inv.token)}`;
      link.focus();
      link.select();
      $('#invite-note').value = '';
      await this.loadInvites();
    } catch (e) {
      showError(e, 'Create invite');
    }
  }

  async loadInvites() {
    const box = $('#invite-list');
    try {
      const res = await this.api.get(ENDPOINTS.invites());
      const list = (res && res.invites) || [];
      box.replaceChildren(table('Invites', ['Note', 'Uses', 'Created', 'Expires', ''], list.map((i) => h('tr', { dataset: { invite: i.id } },
        h('td', null, i.note || h('span', { class: 'hint' }, '—')),
        h('td', { class: 'num' }, `${i.uses} of ${i.max_uses}`),
        h('td', null, fmtTime(i.created_at)),
        h('td', null, fmtTime(i.expires_at)),
        h('td', null, i.revoked_at ? 'revoked' : i.uses >= i.max_uses ? 'used up' : i.expires_at < Date.now() ? 'expired'
          : h('button', { type: 'button', 'aria-label': `Revoke invite ${i.note || i.id.slice(0, 8)}`, onclick: async () => {
            try { await this.api.del(ENDPOINTS.revokeInvite(i.id)); await this.loadInvites(); } catch (e) { showError(e, 'Revoke invite'); }
          } }, 'Revoke'))))));
    } catch (e) {
      if (e.missingRoute) $('#invites').hidden = true; // a server without invites
      else showError(e, 'Invites');
    }
  }

  get api() { return this.app.api; }

  async load() {
    this.loadInvites();
    const tbody = $('#people-table tbody');
    try {
      const res = await this.api.get(ENDPOINTS.users($('#people-q').value.trim()));
      const users = res.users || [];
      tbody.replaceChildren(...users.map((u) => h('tr', { dataset: { user: u.username } },
        h('th', { scope: 'row' }, u.username),
        h('td', null, u.role),
        h('td', null, !u.active ? h('span', { class: 'badge bad' }, 'deactivated') : u.online ? h('span', { class: 'badge good' }, 'online') : 'offline'),
        h('td', null, fmtTime(u.created_at)),
        h('td', null, h('button', { type: 'button', 'aria-label': `Manage ${u.username}`, onclick: () => this.select(u) }, 'Manage')))));
      if (!users.length) tbody.replaceChildren(h('tr', null, h('td', { colspan: 5, class: 'hint' }, 'No users match.')));
    } catch (e) {
      showError(e, 'Users');
    }
  }

  async select(u) {
    this.selected = u;
    const box = $('#person');
    box.hidden = false;
    const title = $('#person-title');
    title.textContent = `${u.username} — ${u.active ? 'active' : 'deactivated'}`;
    title.tabIndex = -1;
    const body = $('#person-body');
    body.replaceChildren(h('p', { class: 'hint', role: 'status' }, 'Loading…'));
    const [sessions, devices] = await Promise.all([this.fetch(ENDPOINTS.sessions(u.id), 'sessions'), this.fetch(ENDPOINTS.devices(u.id), 'devices')]);
    const parts = [];
    const missing = [];
    if (sessions.missing) missing.push('sessions');
    else if (sessions.error) parts.push(h('p', { class: 'form-error' }, `${sessions.error.code}: ${sessions.error.message}`));
    else {
      const deviceName = (id) => {
        const d = (devices.list || []).find((x) => x.id === id);
        return d ? d.name : id ? String(id).slice(0, 8) : '';
      };
      parts.push(table('Sessions', ['Session', 'Device', 'Client', 'Started', 'Last seen', 'Expires', ''], sessions.list.map((s) => h('tr', { dataset: { session: s.id } },
        h('td', null, h('code', { title: s.id }, String(s.id || '').slice(0, 8))),
        h('td', null, deviceName(s.device)),
        h('td', { class: 'clip', title: s.user_agent || '' }, [s.ip, shortAgent(s.user_agent)].filter(Boolean).join(' · ')),
        h('td', null, fmtTime(s.created_at)),
        h('td', null, fmtTime(s.last_seen_at || s.last_used_at)),
        h('td', null, fmtTime(s.expires_at)),
        h('td', null, s.revoked_at ? `revoked (${s.revoke_reason || 'yes'})` : h('button', { type: 'button', 'aria-label': `Revoke session ${String(s.id).slice(0, 8)}`,
          onclick: () => confirm(`Revoke this session of ${u.username}? It is signed out at once.`) && this.run('DELETE', ENDPOINTS.revokeSession(u.id, s.id), 'Revoke session') }, 'Revoke'))))));
      if (sessions.list.some((s) => !s.revoked_at)) {
        parts.push(h('p', null, h('button', { type: 'button', class: 'danger',
          onclick: () => confirm(`Sign ${u.username} out everywhere?`) && this.run('POST', ENDPOINTS.revokeAllSessions(u.id), 'Revoke all sessions', {}) },
        'Revoke all sessions')));
      }
    }
    if (devices.missing) missing.push("another user's devices");
    else if (devices.error) parts.push(h('p', { class: 'form-error' }, `${devices.error.code}: ${devices.error.message}`));
    else {
      parts.push(table('Devices', ['Device', 'Platform', 'Last seen', ''], devices.list.map((d) => h('tr', { dataset: { device: d.id } },
        h('td', null, d.name || d.id),
        h('td', null, d.platform || ''),
        h('td', null, fmtTime(d.last_seen_at || d.last_seen)),
        h('td', null, d.revoked || d.revoked_at ? 'revoked' : h('button', { type: 'button', 'aria-label': `Revoke device ${d.name || d.id}`,
          onclick: () => confirm(`Revoke ${d.name || 'this device'}? Every session on it ends at once.`) && this.run('DELETE', ENDPOINTS.revokeDevice(u.id, d.id), 'Revoke device') }, 'Revoke'))))));
    }
    if (missing.length) {
      parts.push(h('p', { class: 'note' }, `This server's API does not list ${missing.join(' or ')} for admins yet.`));
    }
    const roles = h('section', { id: 'person-roles', class: 'roles', 'aria-labelledby': 'person-roles-title' },
      h('h3', { id: 'person-roles-title' }, 'Roles'), h('p', { class: 'hint', role: 'status' }, 'Loading…'));
    parts.push(roles);
    const self = this.app.me && this.app.me.id === u.id;
    parts.push(h('div', { class: 'actions' },
      u.active
        ? h('button', { type: 'button', class: 'danger', disabled: self, title: self ? 'You cannot deactivate yourself' : false,
          onclick: () => confirm(`Deactivate ${u.username}? Their live sessions end at once.`) && this.run('POST', ENDPOINTS.deactivate(u.id), 'Deactivate', {}) }, 'Deactivate account')
        : h('button', { type: 'button', onclick: () => this.run('POST', ENDPOINTS.reactivate(u.id), 'Reactivate', {}) }, 'Reactivate account'),
      h('button', { type: 'button', onclick: () => { box.hidden = true; this.selected = null; } }, 'Close')));
    body.replaceChildren(...parts);
    title.focus();
    await this.loadRoles(u, roles);
  }

  /**
   * Fills the Roles section of a user: their assignments with scope names,
   * a form to assign a role in a scope, and their clearance. Scope names
   * come from the lists the admin may read (orgs, their spaces, the admin's
   * rooms); a scope not among them shows its id.
   */
  async loadRoles(u, box) {
    const subject = 'user:' + u.id;
    let list, roleNames;
    try {
      const [as, rs] = await Promise.all([this.api.get(ENDPOINTS.assignments(subject)), this.api.get(ENDPOINTS.roles())]);
      list = (as && as.assignments) || [];
      roleNames = ((rs && rs.roles) || []).map((r) => r.name).filter((n) => n !== 'authenticated');
    } catch (e) {
      if (e.missingRoute) box.replaceChildren(box.firstChild, h('p', { class: 'note' }, 'This server has no role administration API.'));
      else box.replaceChildren(box.firstChild, h('p', { class: 'form-error' }, `${e.code}: ${e.message}`));
      return;
    }
    const scopes = await this.scopes();
    const name = (scope) => {
      if (scope === 'sys') return 'System';
      const s = scopes.byId[scope];
      const kind = (SCOPE_KINDS.find(([k]) => scope.startsWith(k + ':')) || [, 'Scope'])[1];
      return s ? `${kind} ${s}` : `${kind} ${scope.slice(scope.indexOf(':') + 1)}`;
    };
    const rows = list.filter((a) => a.subject === subject).map((a) => h('tr', { dataset: { role: a.role, scope: a.scope } },
      h('td', null, a.role),
      h('td', null, name(a.scope), ' ', h('code', { class: 'hint' }, a.scope)),
      h('td', null, h('button', { type: 'button', 'aria-label': `Remove ${a.role} in ${name(a.scope)}`,
        onclick: () => confirm(`Take role ${a.role} in ${name(a.scope)} away from ${u.username}?`)
          && this.changeRole('DELETE', { subject, role: a.role, scope: a.scope }, u, box, 'Remove role') }, 'Remove'))));

    const role = h('select', { id: 'assign-role', required: true },
      roleNames.map((n) => h('option', { value: n }, n)));
    const kind = h('select', { id: 'assign-kind' }, SCOPE_KINDS.map(([k, label]) => h('option', { value: k }, label)));
    const target = h('select', { id: 'assign-target' });
    const targetLabel = h('label', { for: 'assign-target' }, 'In');
    const fillTargets = () => {
      const opts = scopes.lists[kind.value] || [];
      target.replaceChildren(...opts.map(([id, label]) => h('option', { value: `${kind.value}:${id}` }, label)));
      target.hidden = targetLabel.hidden = kind.value === 'sys';
      target.disabled = kind.value === 'sys';
    };
    // Choosing a built-in role moves the scope type to the level it is assigned at.
    role.addEventListener('change', () => { const lvl = ROLE_LEVEL[role.value]; if (lvl) { kind.value = lvl; fillTargets(); } });
    kind.addEventListener('change', fillTargets);
    // After an assignment the form keeps what was picked, for the next one.
    const last = this.lastAssign || {};
    if (last.role && roleNames.includes(last.role)) role.value = last.role;
    if (last.kind) kind.value = last.kind;
    fillTargets();
    if (last.scope && [...target.options].some((o) => o.value === last.scope)) target.value = last.scope;
    const form = h('form', { class: 'inline wrap', id: 'assign-form', 'aria-label': `Assign a role to ${u.username}`, onsubmit: (ev) => {
      ev.preventDefault();
      const scope = kind.value === 'sys' ? 'sys' : target.value;
      if (!scope) { showError({ code: 'bad_request', message: `there is no ${kind.selectedOptions[0].textContent.toLowerCase()} to choose` }, 'Assign role'); return; }
      this.lastAssign = { role: role.value, kind: kind.value, scope };
      this.changeRole('PUT', { subject, role: role.value, scope }, u, box, 'Assign role');
    } },
    h('label', { for: 'assign-role' }, 'Role'), role,
    h('label', { for: 'assign-kind' }, 'Scope'), kind,
    targetLabel, target,
    h('button', { type: 'submit' }, 'Assign'));

    const level = h('input', { id: 'clearance', type: 'number', min: 0, max: 100, class: 'narrow', required: true, value: u.clearance ?? '' });
    const status = h('span', { id: 'clearance-status', class: 'hint', role: 'status' });
    const clearance = h('form', { class: 'inline', id: 'clearance-form', onsubmit: async (ev) => {
      ev.preventDefault();
      status.textContent = '';
      try {
        const res = await this.api.put(ENDPOINTS.clearance(u.id), { clearance: Number(level.value) });
        u.clearance = res.clearance;
        status.textContent = `Clearance set to ${res.clearance}.`;
      } catch (e) {
        showError(e, 'Set clearance');
      }
    } },
    h('label', { for: 'clearance' }, 'Clearance (0–100)'), level,
    h('button', { type: 'submit' }, 'Set clearance'), status);

    box.replaceChildren(box.firstChild,
      table(`Role assignments of ${u.username}`, ['Role', 'Scope', ''], rows),
      form,
      h('p', { class: 'hint' }, 'Rooms classified above a user\'s clearance are closed to them whatever their role.'),
      clearance);
  }

  async changeRole(method, body, u, box, what) {
    try {
      await this.api.request(method, ENDPOINTS.assign(), body);
      await this.loadRoles(u, box);
      const row = box.querySelector(`tr[data-role="${CSS.escape(body.role)}"][data-scope="${CSS.escape(body.scope)}"] button`);
      (row || box.querySelector('#assign-role')).focus();
    } catch (e) {
      showError(e, what);
    }
  }

  /** Names of the scopes the admin can see: {byId: {"org:x": "Acme"}, lists: {org: [[id, label]]}}. */
  async scopes() {
    const byId = {};
    const lists = { sys: [], org: [], space: [], room: [] };
    const get = async (path, key) => { try { return ((await this.api.get(path)) || {})[key] || []; } catch { return []; } };
    const [orgs, rooms] = await Promise.all([get(ENDPOINTS.orgs(), 'orgs'), get(ENDPOINTS.rooms(), 'rooms')]);
    for (const o of orgs) { byId['org:' + o.id] = o.name; lists.org.push([o.id, o.name]); }
    const spaces = (await Promise.all(orgs.map((o) => get(ENDPOINTS.spaces(o.id), 'spaces')))).flat();
    const orgName = (id) => byId['org:' + id] || id;
    for (const s of spaces) { byId['space:' + s.id] = s.name; lists.space.push([s.id, orgs.length > 1 ? `${s.name} (${orgName(s.org)})` : s.name]); }
    for (const r of rooms) {
      const label = r.name || r.topic || r.id;
      byId['room:' + r.id] = label;
      lists.room.push([r.id, label]);
    }
    return { byId, lists };
  }

  async fetch(path, key) {
    try {
      const res = await this.api.get(path);
      return { list: (res && (res[key] || res.items)) || [] };
    } catch (e) {
      if (e.missingRoute) return { missing: true };
      return { error: e };
    }
  }

  async run(method, path, what, body) {
    try {
      await this.api.request(method, path, body);
      await this.load();
      if (this.selected) {
        const res = await this.api.get(ENDPOINTS.users(this.selected.username));
        const u = (res.users || []).find((x) => x.id === this.selected.id) || this.selected;
        await this.select(u);
      }
    } catch (e) {
      if (e.missingRoute) showError({ code: e.code, message: `${what} is not available on this server yet (${e.message})` }, what);
      else showError(e, what);
    }
  }
}

/** "Mozilla/5.0 (X11; Linux x86_64) … Chrome/120 …" → "Chrome 120". */
function shortAgent(ua) {
  if (!ua) return '';
  const m = /(Firefox|Edg|Chrome|Safari)\/(\d+)/.exec(ua);
  return m ? `${m[1] === 'Edg' ? 'Edge' : m[1]} ${m[2]}` : ua.slice(0, 40);
}

/** Normalises a plugin's hooks to [{name, calls, errors, timeouts, latency, breaker}]. */
export function hooksOf(p) {
  const raw = p.hooks || [];
  const stats = {};
  for (const s of p.hook_stats || []) stats[s.hook] = s; // the plugin host's per-hook counters
  const list = Array.isArray(raw) ? [...raw] : Object.entries(raw).map(([name, v]) => ({ name, ...v }));
  for (const name of Object.keys(stats)) if (!list.some((x) => (typeof x === 'string' ? x : x.name) === name)) list.push(name);
  return list.map((x) => {
    const o = typeof x === 'string' ? { name: x } : { ...x };
    o.name = o.name || o.hook;
    const s = stats[o.name] || {};
    const get = (...ks) => { for (const k of ks) { if (o[k] !== undefined) return o[k]; if (s[k] !== undefined) return s[k]; } return undefined; };
    const lat = get('latency_p50_ms', 'p50_ms', 'avg_ms', 'latency_ms', 'mean_ms');
    const p99 = get('latency_p99_ms', 'p99_ms');
    return {
      name: o.name,
      calls: get('calls') ?? 0,
      errors: get('errors') ?? 0,
      timeouts: get('timeouts') ?? 0,
      latency: lat === undefined || (!Number(lat) && !get('calls')) ? '' : `${Number(lat).toFixed(2)} ms` + (p99 === undefined ? '' : ` (p99 ${Number(p99).toFixed(2)} ms)`),
      breaker: get('breaker', 'breaker_state') || '',
      policy: get('failure', 'policy', 'failure_policy') || '',
      timeoutMs: get('timeout_ms'),
    };
  });
}

export class Plugins {
  constructor(app) {
    this.app = app;
    $('#plugins-refresh').addEventListener('click', () => this.load());
    $('#plugins-reload').addEventListener('click', () => this.action(ENDPOINTS.reload(), 'Reload plugins.yaml'));
  }

  get api() { return this.app.api; }

  async load() {
    const list = $('#plugins-list');
    const status = $('#plugins-status');
    try {
      const res = await this.api.get(ENDPOINTS.plugins());
      note($('#plugins-note'), '');
      const plugins = (res && (res.plugins || res.items)) || [];
      const from = res && res.file ? ` from ${res.file}` : '';
      const at = res && res.loaded_at ? `, loaded ${fmtTime(res.loaded_at)}` : '';
      $('#plugins-source').textContent = `${plugins.length} plugin${plugins.length === 1 ? '' : 's'}${from}${at}`;
      const focusKey = list.contains(document.activeElement) ? document.activeElement.dataset.focus : null;
      list.replaceChildren(...(plugins.length ? plugins.map((p) => this.card(p)) : [h('p', { class: 'hint' }, 'No plugins are configured in plugins.yaml.')]));
      if (focusKey) { const el = list.querySelector(`[data-focus="${CSS.escape(focusKey)}"]`); if (el) el.focus(); }
    } catch (e) {
      list.replaceChildren();
      $('#plugins-source').textContent = '';
      if (e.missingRoute) {
        note($('#plugins-note'), 'This server has no plugin admin API yet (GET /v1/admin/plugins comes with the process-plugin host). Plugins will show here once it is in.');
      } else {
        showError(e, 'Plugins');
      }
    }
  }

  card(p) {
    const id = p.id || p.name;
    const enabled = p.enabled !== undefined ? !!p.enabled : p.state !== 'disabled';
    const state = p.state || (enabled ? 'enabled' : 'disabled');
    const hooks = hooksOf(p);
    const cfg = mask(p.config || p.effective_config || {});
    const stateClass = /crash|fail|error|restart/.test(state) ? 'bad' : /running|healthy/.test(state) ? 'good' : '';
    return h('article', { class: 'card plugin', dataset: { plugin: id }, 'aria-labelledby': 'plugin-' + id },
      h('header', null,
        h('h2', { id: 'plugin-' + id }, id),
        h('span', { class: 'badge' }, p.kind || 'process'),
        h('span', { class: 'badge state ' + stateClass, dataset: { state } }, state),
        hooks.some((k) => k.breaker && k.breaker !== 'closed') ? h('span', { class: 'badge bad' }, 'breaker open') : null,
        p.version ? h('span', { class: 'hint' }, 'v' + p.version) : null,
        h('span', { class: 'spacer' }),
        enabled
          ? h('button', { type: 'button', dataset: { focus: 'toggle:' + id }, 'aria-label': `Disable ${id}`, onclick: () => this.action(ENDPOINTS.disable(id), `Disable ${id}`) }, 'Disable')
          : h('button', { type: 'button', class: 'primary', dataset: { focus: 'toggle:' + id }, 'aria-label': `Enable ${id}`, onclick: () => this.action(ENDPOINTS.enable(id), `Enable ${id}`) }, 'Enable')),
      p.error || p.last_error ? h('p', { class: 'form-error' }, 'Last error: ' + (p.error || p.last_error)) : null,
      h('p', { class: 'facts' }, [
        p.pid ? `pid ${p.pid}` : null,
        p.sdk ? `SDK ${p.sdk}` : null,
        p.contract_version ? `contract v${p.contract_version}` : null,
        p.starts !== undefined ? `${p.starts} start${p.starts === 1 ? '' : 's'}` : null,
        p.restarts ? `${p.restarts} restart${p.restarts === 1 ? '' : 's'}` : null,
        p.recent_crashes ? `${p.recent_crashes} recent crash${p.recent_crashes === 1 ? '' : 'es'}` : null,
      ].filter(Boolean).join(' · ')),
      p.wasm ? h('p', { class: 'facts' }, 'WASM sandbox: ' + ['instantiations', 'discards', 'traps', 'timeouts', 'malformed', 'denied']
        .map((k) => `${p.wasm[k] || 0} ${k}`).join(' · ')) : null,
      table(`Hooks of ${id}`, ['Hook', 'Calls', 'Errors', 'Timeouts', 'Avg latency', 'Breaker'], hooks.map((k) => h('tr', null,
        h('th', { scope: 'row' }, k.name, k.policy || k.timeoutMs ? h('span', { class: 'hint sub' },
          [k.policy ? `fails ${k.policy}` : '', k.timeoutMs ? `${k.timeoutMs} ms deadline` : ''].filter(Boolean).join(' · ')) : null),
        h('td', { class: 'num' }, String(k.calls)), h('td', { class: 'num' }, String(k.errors)), h('td', { class: 'num' }, String(k.timeouts)),
        h('td', { class: 'num' }, k.latency || h('span', { class: 'hint', title: 'not reported by this server' }, '—')), h('td', { class: k.breaker && k.breaker !== 'closed' ? 'bad' : '' }, k.breaker)))),
      p.commands && p.commands.length ? h('p', null, 'Commands: ', p.commands.map((c) => h('code', { class: 'grant' }, '/' + c.replace(/^\//, '')))) : null,
      p.grants && p.grants.length ? h('p', null, 'Grants: ', p.grants.map((g) => h('code', { class: 'grant' }, g))) : null,
      h('details', null, h('summary', null, 'Effective configuration'),
        p.config === undefined && p.effective_config === undefined
          ? h('p', { class: 'hint' }, 'The server does not report this plugin\'s configuration.')
          : h('pre', { class: 'config' }, JSON.stringify(cfg, null, 2))));
  }

  async action(path, what) {
    const status = $('#plugins-status');
    status.textContent = `${what}…`;
    try {
      const res = await this.api.post(path, {});
      await this.load();
      status.textContent = `${what}: ${summary(res)}`;
    } catch (e) {
      status.textContent = '';
      if (e.missingRoute && path !== ENDPOINTS.reload()) {
        note($('#plugins-note'), `This server turns plugins on and off through plugins.yaml only: set "enabled: true" or "enabled: false" on the plugin there, then press "Reload plugins.yaml". (${e.code}: ${e.message})`);
        $('#plugins-reload').focus();
      } else if (e.missingRoute) {
        showError({ code: e.code, message: `not available on this server yet (${e.message})` }, what);
      } else {
        showError(e, what);
      }
    }
  }
}

/** "started hello; stopped audit" from a reload result; "done" otherwise. */
function summary(res) {
  if (!res || typeof res !== 'object') return 'done';
  const parts = [];
  for (const k of ['started', 'stopped', 'swapped', 'reconfigured']) {
    if (Array.isArray(res[k]) && res[k].length) parts.push(`${k} ${res[k].join(', ')}`);
  }
  return parts.length ? parts.join('; ') : 'done, nothing changed';
}
