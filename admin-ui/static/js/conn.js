// Protocol v1 over WebSocket: one connection per tab, requests matched to
// replies by ref, transparent reconnects with backoff. The chat layer keeps
// the last seq per room and syncs from it whenever 'open' fires.

const SUBPROTOCOL = 'unhidra.v1';

/** A protocol error frame turned into an exception. */
export class FrameError extends Error {
  constructor(f) {
    super(f.message || f.code);
    this.code = f.code || 'internal';
    this.retryAfterMs = f.retry_after_ms || 0;
  }
  toString() { return `${this.code}: ${this.message}`; }
}

let counter = 0;
/** A fresh client ref; random so that refs stay unique across reloads. */
export function newRef() {
  counter += 1;
  const rnd = (crypto.randomUUID ? crypto.randomUUID() : Math.random().toString(36).slice(2));
  return `${rnd}-${counter}`;
}

export class Conn extends EventTarget {
  /**
   * @param {() => Promise<string>} token returns a fresh access token
   */
  constructor(token) {
    super();
    this.token = token;
    this.ws = null;
    this.state = 'offline';
    this.pending = new Map(); // ref → {resolve, reject, frame}
    this.attempt = 0;
    this.timer = 0;
    this.stopped = true;
    this.reconnectHint = 0;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close(1000, 'bye');
    this.ws = null;
    this.setState('offline');
  }

  setState(s) {
    if (this.state === s) return;
    this.state = s;
    this.dispatchEvent(new CustomEvent('state', { detail: s }));
  }

  async connect() {
    clearTimeout(this.timer);
    if (this.stopped) return;
    this.setState('connecting');
    let tok;
    try {
      tok = await this.token();
    } catch (e) {
      this.dispatchEvent(new CustomEvent('autherror', { detail: e }));
      this.retry();
      return;
    }
    if (this.stopped) return;
    const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/v1/ws';
    let ws;
    try {
      ws = new WebSocket(url, [SUBPROTOCOL, 'bearer.' + tok]);
    } catch (e) {
      this.retry();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      this.reconnectHint = 0;
      this.setState('online');
      this.dispatchEvent(new Event('open'));
    };
    ws.onmessage = (ev) => {
      let f;
      try { f = JSON.parse(ev.data); } catch { return; }
      this.onFrame(f);
    };
    let opened = false;
    ws.addEventListener('open', () => { opened = true; });
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      // Requests in flight lose their socket; callers that must survive a
      // reconnect (sends) keep their own outbox and resend with the same ref.
      for (const [, p] of this.pending) p.reject(new FrameError({ code: 'unavailable', message: 'connection closed' }));
      this.pending.clear();
      this.setState('offline');
      this.dispatchEvent(new CustomEvent('close', { detail: { code: ev.code, reason: ev.reason, opened } }));
      this.retry();
    };
  }

  retry() {
    if (this.stopped) return;
    this.attempt += 1;
    const base = this.reconnectHint || Math.min(30000, 500 * 2 ** Math.min(this.attempt - 1, 6));
    const wait = base * (0.75 + Math.random() * 0.5);
    this.reconnectHint = 0;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), wait);
  }

  onFrame(f) {
    if (f.type === 'goodbye') {
      this.reconnectHint = f.reconnect_after_ms || 0;
      this.dispatchEvent(new CustomEvent('goodbye', { detail: f }));
      return;
    }
    if (f.ref && this.pending.has(f.ref)) {
      const p = this.pending.get(f.ref);
      if (f.type === 'error') {
        this.pending.delete(f.ref);
        p.reject(new FrameError(f));
        return;
      }
      if (f.type === 'ack' || f.type === 'synced' || f.type === 'pong') {
        this.pending.delete(f.ref);
        p.resolve(f);
        return;
      }
    }
    if (f.type === 'error' && !f.ref) {
      this.dispatchEvent(new CustomEvent('servererror', { detail: new FrameError(f) }));
      return;
    }
    this.dispatchEvent(new CustomEvent('frame', { detail: f }));
  }

  get online() { return !!this.ws && this.ws.readyState === WebSocket.OPEN; }

  /** Sends a frame without waiting for a reply; false when offline. */
  cast(frame) {
    if (!this.online) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  /** Sends a frame and resolves with its ack/synced/pong, or rejects with its error. */
  request(frame) {
    if (!frame.ref) frame.ref = newRef();
    return new Promise((resolve, reject) => {
      if (!this.online) {
        reject(new FrameError({ code: 'unavailable', message: 'not connected' }));
        return;
      }
      this.pending.set(frame.ref, { resolve, reject });
      this.ws.send(JSON.stringify(frame));
    });
  }
}
