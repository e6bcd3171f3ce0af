// The Account view: everyone's own sessions and devices (sign one out,
// forget a device), password change, and who may add them to rooms (blocks),
// over /v1/sessions, /v1/devices, /v1/auth/password and /v1/me/blocks.

import { h, $, showError, fmtTime } from './dom.js';
import { seg } from './api.js';

function table(caption, head, rows) {
  return h('table', { class: 'grid' }, h('caption', null, caption),
    h('thead', null, h('tr', null, head.map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', null, rows.length ? rows : h('tr', null, h('td', { colspan: head.length, class: 'hint' }, 'None.'))));
}

export class Account {
  constructor(app) {
    this.app = app;
    $('#pw-form').addEventListener('submit', (ev) => { ev.preventDefault(); this.changePassword(); });
    $('#block-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const who = $('#block-user').value.trim();
      if (!who) {
        showError({ code: 'bad_request', message: 'enter the username to block' }, 'Block');
        $('#block-user').focus();
        return;
      }
      this.run('PUT', '/v1/me/blocks/' + seg(who), 'Block').then((ok) => { if (ok) $('#block-user').value = ''; });
    });
    $('#block-all').addEventListener('change', (ev) => {
      this.run(ev.target.checked ? 'PUT' : 'DELETE', '/v1/me/blocks/*', 'Block everyone');
    });
  }

  get api() { return this.app.api; }

  async changePassword() {
    const cur = $('#pw-current');
    const nw = $('#pw-new');
    const status = $('#pw-status');
    status.textContent = '';
    if (!cur.value || !nw.value) {
      showError({ code: 'bad_request', message: 'enter your current and your new password' }, 'Change password');
      (cur.value ? nw : cur).focus();
      return;
    }
    try {
      const res = await this.api.post('/v1/auth/password', { current_password: cur.value, new_password: nw.value });
      cur.value = '';
      nw.value = '';
      const n = (res && res.revoked_sessions) || 0;
      status.textContent = `Password changed; ${n} other session${n === 1 ? '' : 's'} signed out.`;
      await this.load();
    } catch (e) {
      showError(e, 'Change password');
      cur.focus();
    }
  }

  async load() {
    $('#pw-username').value = this.app.me ? this.app.me.username : '';
    let sessions = [];
    let devices = [];
    let blocks = [];
    try {
      [sessions, devices, blocks] = await Promise.all([
        this.api.get('/v1/sessions').then((r) => r.sessions || []),
        this.api.get('/v1/devices').then((r) => r.devices || []),
        this.api.get('/v1/me/blocks').then((r) => r.blocks || []),
      ]);
    } catch (e) {
      showError(e, 'Account');
      return;
    }
    const people = blocks.filter((b) => b.user !== '*');
    const names = await Promise.all(people.map((b) => this.api.get('/v1/users/' + seg(b.user)).then((u) => u.username, () => b.user)));
    const everyone = blocks.some((b) => b.user === '*');
    $('#block-all').checked = everyone;
    $('#my-blocks').dataset.everyone = everyone ? '1' : '0'; // the server's answer, not the click
    $('#my-blocks').replaceChildren(table('Blocked people', ['Person', 'Since', ''], people.map((b, i) => h('tr', { dataset: { block: b.user } },
      h('td', null, names[i]),
      h('td', null, fmtTime(b.created_at)),
      h('td', null, h('button', {
        type: 'button', 'aria-label': `Unblock ${names[i]}`,
        onclick: () => this.run('DELETE', '/v1/me/blocks/' + seg(b.user), 'Unblock'),
      }, 'Unblock'))))));
    const name = (id) => (devices.find((d) => d.id === id) || {}).name || (id ? String(id).slice(0, 8) : '');
    $('#my-sessions').replaceChildren(table('Sessions', ['Device', 'Client', 'Started', 'Last seen', ''], sessions.map((s) => h('tr', { dataset: { session: s.id, current: s.current ? '1' : false } },
      h('td', null, name(s.device), s.current ? h('span', { class: 'badge good' }, ' this session') : null),
      h('td', { class: 'clip', title: s.user_agent || '' }, s.ip || ''),
      h('td', null, fmtTime(s.created_at)),
      h('td', null, fmtTime(s.last_seen_at)),
      h('td', null, s.current ? h('span', { class: 'hint' }, 'use Log out') : h('button', {
        type: 'button', 'aria-label': `Sign out session on ${name(s.device)} started ${fmtTime(s.created_at)}`,
        onclick: () => this.run('DELETE', '/v1/sessions/' + seg(s.id), 'Sign out session'),
      }, 'Sign out'))))));
    $('#my-devices').replaceChildren(table('Devices', ['Device', 'Platform', 'Last seen', ''], devices.map((d) => h('tr', { dataset: { device: d.id } },
      h('td', null, d.name, d.current ? h('span', { class: 'badge good' }, ' this device') : null),
      h('td', null, d.platform || ''),
      h('td', null, fmtTime(d.last_seen_at)),
      h('td', null, h('button', {
        type: 'button', 'aria-label': `Forget device ${d.name}`,
        onclick: () => confirm(`Forget ${d.name}? Its sessions are signed out${d.current ? ', this one too' : ''}.`) &&
          this.run('DELETE', '/v1/devices/' + seg(d.id), 'Forget device'),
      }, 'Forget'))))));
  }

  /** Runs one change and shows the result; false (after an error) when it was refused. */
  async run(method, path, what) {
    try {
      await this.api.request(method, path);
      await this.load();
      return true;
    } catch (e) {
      showError(e, what);
      await this.load(); // show what is true, e.g. the checkbox after a refusal
      return false;
    }
  }
}
