// Entry point: sign-in, routing between views (#/chat/<room>, #/people,
// #/plugins, #/security) and the connection status line.

import { Api } from './api.js';
import { Conn } from './conn.js';
import { Chat } from './chat.js';
import { People, Plugins } from './admin.js';
import { Account } from './account.js';
import { Security } from './security.js';
import { $, $$, h, showError, clearErrors } from './dom.js';

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
    window.addEventListener('hashchange', () => { if (!this.loginLink() && !this.inviteLink()) this.route(); });
  }

  /**
   * An identity plugin's page sends the browser back with #/login/code/<code>
   * (a one-time code to exchange for tokens) or, after a second factor,
   * #/login/mfa/<challenge>. Either finishes signing in here.
   */
  loginLink() {
    const m = /^#\/login\/(code|mfa)\/(.+)$/.exec(location.hash);
    if (!m) return false;
    // Out of the address bar and the history at once.
    history.replaceState(null, '', location.pathname);
    const value = decodeURIComponent(m[2]);
    const step = m[1] === 'code' ? () => this.api.exchange(value) : () => this.api.completeMFA(value);
    this.finishSignIn(step);
    return true;
  }

  async finishSignIn(step) {
    clearErrors();
    if (this.me) this.signedOut();
    else this.showAuth();
    try {
      await step();
      await this.enter();
    } catch (e) {
      if (!this.showFactors(e)) showError(e, 'Sign in');
    }
  }

  /** Shows the factors of a login that needs a second one; false when e is another error. */
  showFactors(e) {
    const mfa = e && e.mfa ? e.mfa : null;
    if (!mfa) return false;
    this.renderFactors(mfa.challenge, mfa.factors || []);
    return true;
  }

  renderFactors(challenge, factors) {
    $('#auth-form').hidden = true;
    $('#auth-methods').hidden = true;
    $('#auth-mfa').hidden = false;
    $('#auth-title').textContent = 'Confirm it is you';
    $('#auth-factor-list').replaceChildren(...factors.map((f) => h('li', null,
      h('a', { class: 'button primary', href: f.url + (f.url.includes('?') ? '&' : '?') + 'challenge=' + encodeURIComponent(challenge),
        dataset: { plugin: f.plugin, factor: f.id } }, f.label))));
    const first = $('#auth-factor-list a');
    if (first) first.focus();
  }

  /** Back from the second-factor step to the sign-in form. */
  cancelFactors() {
    this.api.dropMFA();
    $('#auth-mfa').hidden = true;
    $('#auth-form').hidden = false;
    this.setRegistering(this.registering);
    this.loadMethods();
  }

  /** The sign-in buttons of identity plugins, one per method they registered. */
  async loadMethods() {
    let ms = [];
    try {
      ms = ((await this.api.methods()).methods || []).filter((m) => m.kind === 'plugin');
    } catch (e) {
      if (!e.missingRoute) showError(e, 'Sign-in methods');
    }
    $('#auth-method-list').replaceChildren(...ms.map((m) => h('li', null,
      h('a', { class: 'button', href: m.url, dataset: { plugin: m.plugin, method: m.id } }, m.label))));
    $('#auth-methods').hidden = ms.length === 0 || !$('#auth-mfa').hidden;
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
    if (this.loginLink() || this.inviteLink()) return;
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
    $('#auth-mfa-cancel').addEventListener('click', () => this.cancelFactors());
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
        if (this.showFactors(e)) {
          form.reset();
          return;
        }
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
    $('#auth-mfa').hidden = true;
    $('#auth-form').hidden = false;
    $('#auth-title').textContent = this.registering ? 'Create your Unhidra account' : 'Sign in to Unhidra';
    document.title = 'Unhidra';
    $('#auth-username').focus();
    this.loadMethods();
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
