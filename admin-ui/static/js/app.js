// Entry point: sign-in, routing between views (#/chat/<room>, #/people,
// #/plugins, #/security) and the connection status line.

import { Api } from './api.js';
import { Conn } from './conn.js';
import { Chat } from './chat.js';
import { People, Plugins } from './admin.js';
import { Account } from './account.js';
import { Security } from './security.js';
import { $, $$, showError, clearErrors } from './dom.js';

class App {
  constructor() {
    this.api = new Api();
    this.conn = new Conn(() => this.api.freshToken());
    this.me = null;
    this.registering = false;
    this.api.onSignedOut = (e) => this.signedOut(e);
    this.conn.addEventListener('state', (ev) => {
      const el = $('#conn-state');
      el.textContent = { online: 'connected', connecting: 'connecting…', offline: 'offline — reconnecting' }[ev.detail] || ev.detail;
      el.dataset.state = ev.detail;
    });
    this.conn.addEventListener('goodbye', (ev) => {
      if (ev.detail.reason === 'revoked') {
        showError({ code: 'unauthorized', message: 'this session was revoked; sign in again' }, 'Connection');
        this.signedOut();
      }
    });
    this.conn.addEventListener('close', (ev) => {
      // A handshake refused before it opened hides its 401 from scripts: ask
      // the REST API, which refreshes the token or reports that we are out
      // (revoked session, deactivated account).
      if (!ev.detail.opened && this.me) this.api.get('/v1/me').catch(() => {});
    });
    this.conn.addEventListener('servererror', (ev) => showError(ev.detail, 'Server'));
    this.conn.addEventListener('autherror', (ev) => {
      if (ev.detail && ev.detail.status === 401) this.signedOut(ev.detail);
    });
    this.chat = new Chat(this); // binds its DOM once; start/stop per sign-in
    this.people = new People(this);
    this.plugins = new Plugins(this);
    this.account = new Account(this);
    this.security = new Security(this);
    this.bindAuth();
    $('#logout').addEventListener('click', () => this.logout());
    window.addEventListener('hashchange', () => { if (!this.inviteLink()) this.route(); });
  }

  /** An invite link (#/join/<token>) opens the sign-up form with the code filled in. */
  inviteLink() {
    const invite = /^#\/join\/(.+)$/.exec(location.hash);
    if (!invite || this.api.signedIn) return false;
    clearErrors();
    this.showAuth();
    this.setRegistering(true);
    $('#auth-invite').value = decodeURIComponent(invite[1]);
    history.replaceState(null, '', location.pathname);
    return true;
  }

  async boot() {
    if (this.inviteLink()) return;
    if (this.api.signedIn) {
      try {
        await this.enter();
        return;
      } catch (e) {
        if (e.status !== 401) showError(e, 'Loading');
        this.api.clear();
      }
    }
    this.showAuth();
  }

  go(hash) {
    if (location.hash === hash) this.route();
    else location.hash = hash;
  }

  // ---- sign in / sign up ------------------------------------------------------

  bindAuth() {
    const form = $('#auth-form');
    $('#auth-toggle').addEventListener('click', () => this.setRegistering(!this.registering));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      clearErrors();
      const username = $('#auth-username').value.trim();
      const password = $('#auth-password').value;
      if (!username || !password) {
        showError({ code: 'bad_request', message: 'enter a username and a password' }, this.registering ? 'Sign up' : 'Log in');
        (username ? $('#auth-password') : $('#auth-username')).focus();
        return;
      }
      const btn = $('#auth-submit');
      btn.disabled = true;
      try {
        if (this.registering) await this.api.register(username, password, $('#auth-email').value.trim(), $('#auth-invite').value.trim());
        await this.api.login(username, password);
        form.reset();
        this.setRegistering(false, { focus: false });
        await this.enter();
      } catch (e) {
        showError(e, this.registering ? 'Sign up' : 'Log in');
        $('#auth-password').focus();
      } finally {
        btn.disabled = false;
      }
    });
  }

  setRegistering(on, { focus = true } = {}) {
    this.registering = on;
    $('#auth-title').textContent = on ? 'Create your Unhidra account' : 'Sign in to Unhidra';
    $('#auth-submit').textContent = on ? 'Sign up' : 'Log in';
    $('#auth-toggle').textContent = on ? 'I have an account' : 'Create an account';
    $('#auth-email-field').hidden = !on;
    $('#auth-invite-field').hidden = !on;
    $('#auth-username').labels[0].textContent = on ? 'Username' : 'Username or email';
    $('#auth-password').autocomplete = on ? 'new-password' : 'current-password';
    if (focus) $('#auth-username').focus();
  }

  showAuth() {
    this.show('auth');
    $('#nav').hidden = true;
    $('#search-form').hidden = true;
    $('#me-box').hidden = true;
    document.title = 'Unhidra';
    $('#auth-username').focus();
  }

  async enter() {
    this.me = await this.api.get('/v1/me');
    $('#me-name').textContent = this.me.username + (this.isAdmin ? ' (admin)' : '');
    $('#nav').hidden = false;
    $('#search-form').hidden = false;
    $('#me-box').hidden = false;
    for (const a of $$('[data-admin]')) a.hidden = !this.isAdmin;
    await this.chat.start(this.me);
    this.route();
  }

  get isAdmin() { return !!this.me && this.me.role === 'superadmin'; }

  signedOut() {
    this.chat.stop({ forget: true });
    this.api.clear();
    this.me = null;
    this.showAuth();
  }

  async logout() {
    this.chat.stop({ forget: true });
    await this.api.logout();
    this.me = null;
    location.hash = '';
    this.showAuth();
  }

  // ---- routing ---------------------------------------------------------------------

  show(view) {
    for (const v of $$('.view')) v.hidden = v.id !== 'view-' + view;
    for (const a of $$('#nav a')) {
      if (a.dataset.view === view) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
  }

  route() {
    if (!this.me) return;
    const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
    const view = parts[0] || 'chat';
    const pages = { people: [this.people, 'People', true], plugins: [this.plugins, 'Plugins', true], account: [this.account, 'Account', false],
      security: [this.security, 'Security', true] };
    const page = pages[view];
    if (page && (!page[2] || this.isAdmin)) {
      this.show(view);
      document.title = page[1] + ' · Unhidra';
      page[0].load();
      $('#main').focus();
      return;
    }
    this.show('chat');
    const room = parts[1];
    if (room) {
      this.chat.open(room);
    } else if (this.chat.current) {
      this.chat.open(this.chat.current);
    } else {
      const first = [...this.chat.rooms.values()].sort((a, b) => this.chat.roomName(a).localeCompare(this.chat.roomName(b)))[0];
      if (first) this.go('#/chat/' + encodeURIComponent(first.id));
      else { this.chat.showNoRoom(); document.title = 'Unhidra'; $('#new-room').focus(); }
    }
  }
}

const app = new App();
window.unhidra = app; // for debugging from the browser console
app.boot();
