// REST client for /v1 with access-token refresh. Tokens live in
// sessionStorage: a reload keeps you signed in, while each browser tab or
// window can be a different user (handy for trying chat between two windows).

const AUTH_KEY = 'unhidra.auth';
const DEVICE_KEY = 'unhidra.device.'; // + login name → device id (this browser)
const MFA_KEY = 'unhidra.mfa'; // the login waiting for a second factor in this tab
const NEW_DEVICE = { name: 'Web console', platform: 'web' };

/** An error answered by the server, with its protocol error code. */
export class ApiError extends Error {
  constructor(status, code, message, retryAfterMs, body) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfterMs = retryAfterMs || 0;
    this.body = body || null; // the whole error body
  }
  /** The second-factor challenge of a login that needs one ({challenge, factors, …}), or null. */
  get mfa() {
    return this.body && this.body.mfa_required ? this.body : null;
  }
  /** True when the route does not exist on this server (feature not installed). */
  get missingRoute() {
    return this.status === 404 && /^no route /.test(this.message);
  }
  toString() { return `${this.code}: ${this.message}`; }
}

export class Api {
  constructor(storage = sessionStorage) {
    this.storage = storage;
    this.auth = null; // {access_token, refresh_token, expires_at (ms)}
    this.refreshing = null;
    this.timer = 0;
    this.onSignedOut = () => {};
    try {
      this.auth = JSON.parse(storage.getItem(AUTH_KEY) || 'null');
    } catch { this.auth = null; }
    if (this.auth) this.schedule();
  }

  get signedIn() { return !!this.auth; }
  get token() { return this.auth ? this.auth.access_token : ''; }

  setTokens(t) {
    this.auth = {
      access_token: t.access_token,
      refresh_token: t.refresh_token,
      expires_at: Date.now() + (t.expires_in || 900) * 1000,
    };
    this.storage.setItem(AUTH_KEY, JSON.stringify(this.auth));
    this.schedule();
  }

  clear() {
    clearTimeout(this.timer);
    this.auth = null;
    this.storage.removeItem(AUTH_KEY);
  }

  // Refresh at 80% of the token's life so that requests and WebSocket
  // handshakes never carry an expired token.
  schedule() {
    clearTimeout(this.timer);
    if (!this.auth) return;
    const life = this.auth.expires_at - Date.now();
    const wait = Math.max(1000, life * 0.8 - 5000);
    this.timer = setTimeout(() => this.refresh().catch(() => {}), Math.min(wait, 2 ** 31 - 1));
  }

  /** Refreshes the access token once, however many callers ask at the same time. */
  refresh() {
    if (!this.auth) return Promise.reject(new ApiError(401, 'unauthorized', 'not signed in'));
    if (!this.refreshing) {
      const rt = this.auth.refresh_token;
      this.refreshing = this.raw('POST', '/v1/auth/refresh', { refresh_token: rt })
        .then((t) => { this.setTokens(t); })
        .catch((e) => {
          if (e instanceof ApiError && [400, 401, 403].includes(e.status)) {
            this.clear();
            this.onSignedOut(e);
          }
          throw e;
        })
        .finally(() => { this.refreshing = null; });
    }
    return this.refreshing;
  }

  /** Returns a token valid for at least a few seconds more. */
  async freshToken() {
    if (this.auth && this.auth.expires_at - Date.now() < 10000) await this.refresh();
    return this.token;
  }

  async raw(method, path, body, token) {
    const headers = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (token) headers.Authorization = 'Bearer ' + token;
    let res;
    try {
      res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (e) {
      throw new ApiError(0, 'unavailable', 'cannot reach the server: ' + e.message);
    }
    if (res.status === 204) return null;
    let data = null;
    const text = await res.text();
    if (text) {
      try { data = JSON.parse(text); } catch { data = null; }
    }
    if (!res.ok) {
      const code = (data && data.code) || 'internal';
      const msg = (data && data.message) || `HTTP ${res.status}`;
      throw new ApiError(res.status, code, msg, data && data.retry_after_ms, data);
    }
    return data;
  }

  /** An authenticated request; one 401 triggers a refresh and a retry. */
  async request(method, path, body) {
    const tok = await this.freshToken();
    try {
      return await this.raw(method, path, body, tok);
    } catch (e) {
      if (e instanceof ApiError && e.status === 401 && this.auth) {
        await this.refresh();
        return this.raw(method, path, body, this.token);
      }
      throw e;
    }
  }

  get(path) { return this.request('GET', path); }
  post(path, body = {}) { return this.request('POST', path, body); }
  put(path, body) { return this.request('PUT', path, body); }
  patch(path, body) { return this.request('PATCH', path, body); }
  del(path) { return this.request('DELETE', path); }

  register(username, password, email, invite) {
    const body = { username, password };
    if (email) body.email = email;
    if (invite) body.invite = invite;
    return this.raw('POST', '/v1/auth/register', body);
  }

  /**
   * Logs in as this browser's device: the first login creates a device
   * named "Web console", later ones reuse it (its id is kept in
   * localStorage), so an admin sees one device per browser, not one per
   * login. A device that was revoked meanwhile is replaced by a new one.
   * A login that needs a second factor throws an ApiError whose mfa holds
   * the challenge (kept for completeMFA).
   */
  async login(username, password) {
    const key = DEVICE_KEY + username.toLowerCase();
    const known = localStorage.getItem(key);
    let t = null;
    const attempt = async (device) => {
      try {
        return await this.raw('POST', '/v1/auth/login', { username, password, device });
      } catch (e) {
        if (e instanceof ApiError && e.mfa) this.keepMFA(e.mfa, key);
        throw e;
      }
    };
    if (known) {
      try {
        t = await attempt({ id: known });
      } catch (e) {
        if (!(e instanceof ApiError && e.code === 'bad_request' && /device/.test(e.message))) throw e;
        localStorage.removeItem(key);
      }
    }
    if (!t) t = await attempt(NEW_DEVICE);
    if (t.device_id) localStorage.setItem(key, t.device_id);
    this.setTokens(t);
  }

  /** The sign-in methods: the password and every plugin's button. */
  methods() { return this.raw('GET', '/v1/auth/methods'); }

  /**
   * Redeems an identity plugin's one-time code (from #/login/code/<code>)
   * for tokens, or throws an ApiError with mfa when a second factor is due.
   */
  async exchange(code) {
    let t;
    try {
      t = await this.raw('POST', '/v1/auth/exchange', { code, device: NEW_DEVICE });
    } catch (e) {
      if (e instanceof ApiError && e.mfa) this.keepMFA(e.mfa, '');
      throw e;
    }
    this.setTokens(t);
  }

  // The challenge's secret stays in this tab's sessionStorage: only this
  // tab can complete the login, whatever URL the challenge id travels in.
  keepMFA(mfa, deviceKey) {
    this.storage.setItem(MFA_KEY, JSON.stringify({ challenge: mfa.challenge, secret: mfa.secret, factors: mfa.factors, deviceKey }));
  }

  /** The login of this tab waiting for a second factor, or null. */
  pendingMFA() {
    try { return JSON.parse(this.storage.getItem(MFA_KEY) || 'null'); } catch { return null; }
  }

  dropMFA() { this.storage.removeItem(MFA_KEY); }

  /** Completes a login whose second factor a plugin confirmed (#/login/mfa/<challenge>). */
  async completeMFA(challenge) {
    const p = this.pendingMFA();
    if (!p || p.challenge !== challenge) {
      throw new ApiError(401, 'unauthorized', 'this login was not started in this browser tab; sign in again');
    }
    const t = await this.raw('POST', '/v1/auth/mfa/complete', { challenge, secret: p.secret });
    this.dropMFA();
    if (t.device_id && p.deviceKey) localStorage.setItem(p.deviceKey, t.device_id);
    this.setTokens(t);
  }

  async logout() {
    const rt = this.auth && this.auth.refresh_token;
    this.clear();
    if (rt) {
      try { await this.raw('POST', '/v1/auth/logout', { refresh_token: rt }); } catch { /* signed out locally anyway */ }
    }
  }
}

/** Encodes one path segment. */
export const seg = (s) => encodeURIComponent(s);
