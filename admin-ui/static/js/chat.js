// The chat view: rooms, a live room over protocol v1, threads, reactions,
// edits, typing, presence, read receipts and search.
//
// Nothing is lost across reconnects or reloads: every room remembers the last
// seq it applied (in sessionStorage, with a bounded cache of its messages),
// and on every (re)connect the client sends `sync {after: lastSeq}` and gets
// exactly what it missed. Sends wait in an outbox (also in sessionStorage)
// until acked; a resend reuses the ref, which the server deduplicates.

import { h, $, showError, fmtTime } from './dom.js';
import { seg } from './api.js';
import { newRef } from './conn.js';

const CACHE_MAX = 300; // messages kept per room in sessionStorage
const SYNC_LIMIT = 500;
const QUICK_REACTIONS = ['👍', '❤️', '😂', '🎉', '👀'];
const TYPING_SHOWN_MS = 5000;
const TYPING_EVERY = 2100; // the server passes one typing frame per session and room every 2 s
const EVENT_TYPES = new Set(['message', 'edited', 'deleted', 'reaction']);

class RoomState {
  constructor() {
    this.msgs = new Map(); // id → message
    // Every event with seq ≤ lastSeq has been applied (seqs are gap-free).
    // Events above it that came early (live while a sync replays older
    // ones) wait in ahead, so a reload never syncs past a hole.
    this.lastSeq = 0;
    this.ahead = new Set();
    this.loaded = false; // history fetched or restored from cache
    this.members = new Map(); // user id → {role, last_read}
    this.membersLoaded = false;
    this.typing = new Map(); // user id → until (ms)
    this.unread = 0;
    this.syncing = null;
  }
}

export class Chat {
  constructor(app) {
    this.app = app;
    this.api = app.api;
    this.conn = app.conn;
    this.reset();
    this.bindDom();
  }

  reset() {
    this.me = null;
    this.rooms = new Map(); // id → room view from the API
    this.states = new Map(); // id → RoomState
    this.users = new Map(); // id → {id, username, online}
    this.userFetches = new Map();
    this.current = null;
    this.panel = null; // {kind: 'thread'|'members'|'search', ...}
    this.outbox = [];
    this.ephemeral = []; // slash-command answers only we see; not stored anywhere
    this.items = new Map(); // message list: key → <li>
    this.lastTypingSent = 0;
    this.readSent = new Map(); // room → seq last sent in a read
    this.persistTimer = 0;
    this.dirty = new Set();
    this.renderQueued = false;
    this.typingTimer = 0;
    this.editing = null; // {room, id, text}: the message being edited and its draft
    this.learning = new Map(); // room id → pending fetch of a room we were added to
  }

  // ---- lifecycle ---------------------------------------------------------

  /** Starts a signed-in session of the chat; everything from a previous one is dropped. */
  async start(me) {
    this.reset();
    this.me = me;
    this.users.set(me.id, { id: me.id, username: me.username, online: true });
    // Sends in flight when the page went away are resent with their ref;
    // the server answers a repeat with the first ack, never a second message.
    this.outbox = (this.loadJSON(this.outboxKey()) || []).map((x) => ({ ...x, inflight: false }));
    const [users, rooms] = await Promise.all([
      this.api.get('/v1/users?limit=200').catch(() => ({ users: [] })),
      this.api.get('/v1/rooms'),
    ]);
    for (const u of users.users || []) this.users.set(u.id, u);
    for (const r of rooms.rooms || []) this.addRoom(r);
    this.renderRooms();
    this.onOpen = () => this.resync();
    this.onFrame = (ev) => this.frame(ev.detail);
    this.conn.addEventListener('open', this.onOpen);
    this.conn.addEventListener('frame', this.onFrame);
    this.flushHandler = () => this.flushPersist();
    window.addEventListener('pagehide', this.flushHandler);
    this.poll = setInterval(() => this.refreshRooms().catch(() => {}), 30000);
    this.typingTicker = setInterval(() => this.renderTyping(), 1000);
    this.conn.start();
  }

  /**
   * Ends the signed-in session. With forget, the tab's cached rooms and
   * outbox of this user are erased too (sign-out, revocation).
   */
  stop({ forget = false } = {}) {
    if (this.me && forget) {
      const mine = [`unhidra.room.${this.me.id}.`, this.outboxKey()];
      for (let i = sessionStorage.length - 1; i >= 0; i--) {
        const k = sessionStorage.key(i);
        if (mine.some((p) => k.startsWith(p))) sessionStorage.removeItem(k);
      }
      this.dirty.clear();
    } else if (this.me) {
      this.flushPersist();
    }
    clearTimeout(this.persistTimer);
    this.persistTimer = 0;
    clearInterval(this.poll);
    clearInterval(this.typingTicker);
    clearTimeout(this.typingTimer);
    if (this.onOpen) {
      this.conn.removeEventListener('open', this.onOpen);
      this.conn.removeEventListener('frame', this.onFrame);
      window.removeEventListener('pagehide', this.flushHandler);
      this.onOpen = null;
    }
    this.conn.stop();
    this.reset();
    $('#room-list').replaceChildren();
    $('#messages').replaceChildren();
    this.panel = null;
    this.renderPanel();
  }

  // ---- storage -----------------------------------------------------------

  roomKey(room) { return `unhidra.room.${this.me.id}.${room}`; }
  outboxKey() { return `unhidra.outbox.${this.me.id}`; }

  loadJSON(key) {
    try { return JSON.parse(sessionStorage.getItem(key) || 'null'); } catch { return null; }
  }

  saveJSON(key, v) {
    try {
      sessionStorage.setItem(key, JSON.stringify(v));
    } catch {
      // Storage full: the cache is only an optimisation; sync still works.
    }
  }

  persist(room) {
    this.dirty.add(room);
    if (!this.persistTimer) this.persistTimer = setTimeout(() => this.flushPersist(), 100);
  }

  flushPersist() {
    clearTimeout(this.persistTimer);
    this.persistTimer = 0;
    for (const room of this.dirty) {
      const st = this.states.get(room);
      if (!st || !st.loaded) continue;
      const msgs = [...st.msgs.values()].sort((a, b) => a.seq - b.seq).slice(-CACHE_MAX)
        .map(({ id, seq, from, text, thread, ts, edited_ts, deleted, reactions, tseq, rseq }) =>
          ({ id, seq, from, text, thread, ts, edited_ts, deleted, reactions, tseq, rseq }));
      this.saveJSON(this.roomKey(room), { lastSeq: st.lastSeq, msgs });
    }
    this.dirty.clear();
    if (this.me) this.saveJSON(this.outboxKey(), this.outbox.map(({ inflight, ...x }) => x));
  }

  state(room) {
    let st = this.states.get(room);
    if (!st) {
      st = new RoomState();
      const cached = this.loadJSON(this.roomKey(room));
      if (cached && Array.isArray(cached.msgs)) {
        for (const m of cached.msgs) st.msgs.set(m.id, { ...m, reactions: m.reactions || {}, ver: 1 });
        st.lastSeq = cached.lastSeq || 0;
        st.loaded = true;
      }
      this.states.set(room, st);
    }
    return st;
  }

  // ---- users and rooms -----------------------------------------------------

  name(uid) {
    const u = this.users.get(uid);
    if (u) return u.username;
    if (uid && !this.userFetches.has(uid)) {
      this.userFetches.set(uid, this.api.get('/v1/users/' + seg(uid)).then((u2) => {
        this.users.set(u2.id, u2);
        this.renderAll();
      }).catch(() => {}));
    }
    return uid ? uid.slice(0, 8) : '?';
  }

  addRoom(r) {
    this.rooms.set(r.id, r);
    const st = this.state(r.id);
    if ((r.kind === 'direct' || r.kind === 'group') && !r.name) this.loadMembers(r.id).catch(() => {});
    return st;
  }

  roomName(r) {
    if (!r) return '';
    if (r.name) return r.name;
    const st = this.states.get(r.id);
    const others = st ? [...st.members.keys()].filter((u) => u !== this.me.id).map((u) => this.name(u)) : [];
    if (others.length) return others.join(', ');
    return r.kind === 'direct' ? 'Direct message' : 'Group';
  }

  async refreshRooms() {
    const res = await this.api.get('/v1/rooms');
    const seen = new Set();
    for (const r of res.rooms || []) {
      seen.add(r.id);
      if (!this.rooms.has(r.id)) {
        this.addRoom(r);
        if (this.conn.online) this.syncRoom(r.id);
      } else {
        this.rooms.set(r.id, r);
      }
    }
    for (const id of [...this.rooms.keys()]) if (!seen.has(id)) this.dropRoom(id);
    this.renderRooms();
  }

  /** Fetches and lists a room we did not know; concurrent calls share one request. */
  learnRoom(id) {
    if (this.rooms.has(id)) return Promise.resolve();
    if (!this.learning.has(id)) {
      const me = this.me;
      this.learning.set(id, this.api.get('/v1/rooms/' + seg(id)).then((r) => {
        if (this.me !== me) return; // signed out meanwhile
        this.addRoom(r);
        this.renderRooms();
      }).catch(() => { /* not visible to us */ }).finally(() => this.learning.delete(id)));
    }
    return this.learning.get(id);
  }

  dropRoom(id) {
    this.rooms.delete(id);
    this.states.delete(id);
    sessionStorage.removeItem(this.roomKey(id));
    if (this.current === id) {
      this.current = null;
      this.app.go('#/chat');
    }
    this.renderRooms();
  }

  async loadMembers(room) {
    const res = await this.api.get(`/v1/rooms/${seg(room)}/members`);
    const st = this.state(room);
    st.members.clear();
    for (const m of res.members || []) {
      st.members.set(m.user, { role: m.role, last_read: m.last_read });
      const u = this.users.get(m.user);
      if (u) u.online = m.online;
      else this.users.set(m.user, { id: m.user, username: this.name(m.user), online: m.online });
    }
    st.membersLoaded = true;
    this.renderAll();
  }

  // ---- sync ----------------------------------------------------------------

  /** After every (re)connect: catch up on each loaded room, then resend the outbox. */
  resync() {
    for (const [id, st] of this.states) if (st.loaded && this.rooms.has(id)) this.syncRoom(id);
    this.refreshRooms().catch(() => {});
    for (const item of this.outbox) this.trySend(item);
  }

  syncRoom(room) {
    const st = this.state(room);
    if (!st.loaded || st.syncing) return st.syncing;
    st.syncing = (async () => {
      try {
        for (;;) {
          const f = await this.conn.request({ type: 'sync', room, after: st.lastSeq, limit: SYNC_LIMIT });
          // Everything up to upto has now been replayed (or was here already).
          if (f.upto > st.lastSeq) st.lastSeq = f.upto;
          advance(st);
          this.settle(room);
          this.persist(room);
          if (!f.more) break;
        }
        if (room === this.current) this.markRead();
      } catch (e) {
        if (e.code === 'not_found' || e.code === 'forbidden') {
          this.dropRoom(room);
        } else if (e.code === 'bad_request') {
          // Our seq is ahead of the server (a reset database): start over.
          st.msgs.clear();
          st.lastSeq = 0;
          st.ahead.clear();
          st.loaded = false;
          sessionStorage.removeItem(this.roomKey(room));
          if (room === this.current) this.loadRoom(room).catch((e2) => showError(e2, 'Loading room'));
        } else if (e.code !== 'unavailable') {
          showError(e, 'Sync');
        }
      } finally {
        st.syncing = null;
      }
    })();
    return st.syncing;
  }

  /** First visit of a room in this tab: history over REST, then sync the rest. */
  async loadRoom(room) {
    const st = this.state(room);
    if (!st.loaded) {
      const r = await this.api.get('/v1/rooms/' + seg(room));
      this.rooms.set(r.id, { ...this.rooms.get(r.id), ...r });
      const hist = await this.api.get(`/v1/rooms/${seg(room)}/messages?limit=100`);
      for (const m of hist.messages || []) {
        st.msgs.set(m.id, { id: m.id, seq: m.seq, from: m.from, text: m.text, thread: m.thread || '', ts: m.ts,
          edited_ts: m.edited_ts || 0, deleted: !!m.deleted, reactions: m.reactions || {}, ver: 1 });
      }
      // Events after r.last_seq come by sync; history already reflects those before it.
      st.lastSeq = Math.max(st.lastSeq, r.last_seq || 0);
      advance(st);
      st.loaded = true;
      this.settle(room);
      this.persist(room);
    }
    if (this.conn.online) this.syncRoom(room);
  }

  // ---- frames --------------------------------------------------------------

  frame(f) {
    if (EVENT_TYPES.has(f.type)) {
      if (!this.rooms.has(f.room)) {
        // A room we were added to: list it; its history (with this event)
        // loads on first visit.
        this.learnRoom(f.room).then(() => {
          const st = this.states.get(f.room);
          if (st && f.type === 'message' && f.from !== this.me.id) {
            st.unread += 1;
            this.renderRooms();
          }
        });
        return;
      }
      const st = this.state(f.room);
      if (!st.loaded) {
        // History on first visit will include it; until then, count it.
        if (f.type === 'message' && f.from !== this.me.id && f.room !== this.current) {
          st.unread += 1;
          this.renderRooms();
        }
        return;
      }
      // An event can come both live and replayed by a sync: apply each seq once.
      if (f.seq <= st.lastSeq || st.ahead.has(f.seq)) return;
      this.applyEvent(st, f);
      st.ahead.add(f.seq);
      advance(st);
      this.settle(f.room);
      this.persist(f.room);
      if (f.room === this.current) {
        this.queueRender();
        if (f.type === 'message') this.markRead();
      } else if (f.type === 'message' && f.from !== this.me.id) {
        st.unread += 1;
        this.renderRooms();
      }
      return;
    }
    switch (f.type) {
      case 'typing': {
        if (f.user === this.me.id) return;
        this.state(f.room).typing.set(f.user, Date.now() + TYPING_SHOWN_MS);
        if (f.room === this.current) this.renderTyping();
        break;
      }
      case 'receipt': {
        const st = this.state(f.room);
        const m = st.members.get(f.user) || { role: 'member', last_read: 0 };
        m.last_read = Math.max(m.last_read || 0, f.seq);
        st.members.set(f.user, m);
        if (f.room === this.current) this.queueRender();
        break;
      }
      case 'presence': {
        const u = this.users.get(f.user) || { id: f.user, username: this.name(f.user) };
        u.online = f.status === 'online';
        this.users.set(f.user, u);
        this.renderPanel();
        this.renderHeader();
        break;
      }
      case 'joined': {
        if (f.user === this.me.id && !this.rooms.has(f.room)) { this.learnRoom(f.room); break; }
        const st = this.state(f.room);
        if (!st.members.has(f.user)) st.members.set(f.user, { role: 'member', last_read: 0 });
        this.name(f.user);
        if (f.room === this.current) this.renderPanel();
        break;
      }
      case 'left': {
        if (f.user === this.me.id) { this.dropRoom(f.room); break; }
        this.state(f.room).members.delete(f.user);
        if (f.room === this.current) this.renderPanel();
        break;
      }
      default:
        break;
    }
  }

  applyEvent(st, f) {
    switch (f.type) {
      case 'message': {
        if (st.msgs.has(f.id)) return;
        st.typing.delete(f.from); // they sent what they were typing
        st.msgs.set(f.id, { id: f.id, seq: f.seq, from: f.from, text: f.text || '', thread: f.thread || '', ts: f.ts,
          edited_ts: 0, deleted: false, reactions: {}, ver: 1, tseq: f.seq });
        if (f.thread && this.panel && this.panel.kind === 'thread' && this.panel.id === f.thread) this.renderPanel();
        break;
      }
      case 'edited': {
        const m = st.msgs.get(f.id);
        if (!m || f.seq <= (m.tseq || 0)) return; // an older edit replayed after a newer one
        m.text = f.text || '';
        m.edited_ts = f.ts;
        m.tseq = f.seq;
        m.ver += 1;
        break;
      }
      case 'deleted': {
        const m = st.msgs.get(f.id);
        if (!m) return;
        m.deleted = true;
        m.text = '';
        m.ver += 1;
        break;
      }
      case 'reaction': {
        const m = st.msgs.get(f.id);
        if (!m) return;
        // The latest reaction event per user and emoji wins, whatever order they came in.
        m.rseq = m.rseq || {};
        const key = f.emoji + ' ' + f.user;
        if (f.seq <= (m.rseq[key] || 0)) return;
        m.rseq[key] = f.seq;
        const users = new Set(m.reactions[f.emoji] || []);
        if (f.on) users.add(f.user); else users.delete(f.user);
        if (users.size) m.reactions[f.emoji] = [...users]; else delete m.reactions[f.emoji];
        m.ver += 1;
        break;
      }
      default:
        return;
    }
    if (this.panel && this.panel.kind === 'thread') this.renderPanel();
  }

  // ---- actions ---------------------------------------------------------------

  send(room, text, thread = '') {
    const item = { ref: newRef(), room, text, thread, ts: Date.now(), state: 'sending' };
    this.outbox.push(item);
    this.persist(room);
    this.trySend(item);
    this.queueRender();
    if (thread) this.renderPanel();
  }

  trySend(item) {
    if (item.state === 'failed' || item.state === 'acked' || item.inflight) return;
    if (!this.conn.online) return; // resent on the next 'open'
    item.inflight = true;
    const frame = { type: 'send', ref: item.ref, room: item.room, text: item.text };
    if (item.thread) frame.thread = item.thread;
    this.conn.request(frame).then((ack) => {
      item.inflight = false;
      if (ack.seq) {
        // Durable. The message frame follows on this socket (or a sync
        // brings it); until then the item stays, marked sent. The text is
        // not copied from the draft: a plugin may have changed it, and a
        // slash command's reply comes from the plugin's bot.
        item.state = 'acked';
        item.seq = ack.seq;
        item.id = ack.id;
      } else {
        this.outbox = this.outbox.filter((x) => x !== item);
      }
      if (typeof ack.text === 'string' && !ack.seq) {
        // A slash command answered only to us (nothing was stored).
        this.ephemeral.push({ key: newRef(), room: item.room, thread: item.thread || '', command: item.text, text: ack.text, ts: Date.now() });
      }
      this.settle(item.room);
      this.persist(item.room);
      this.queueRender();
      if (item.thread) this.renderPanel();
    }).catch((e) => {
      item.inflight = false;
      if (e.code === 'unavailable' && !this.conn.online) return; // kept; resent after reconnect
      item.state = 'failed';
      item.error = `${e.code}: ${e.message}`;
      this.persist(item.room);
      showError(e, 'Send');
      this.queueRender();
      if (item.thread) this.renderPanel();
    });
  }

  /** Drops acked outbox items whose message the room has caught up with. */
  settle(room) {
    const st = this.states.get(room);
    if (!st || !st.loaded) return;
    const before = this.outbox.length;
    this.outbox = this.outbox.filter((x) => !(x.room === room && x.state === 'acked' && (st.msgs.has(x.id) || st.lastSeq >= x.seq)));
    if (this.outbox.length !== before) this.persist(room);
  }

  retrySend(ref) {
    const item = this.outbox.find((x) => x.ref === ref);
    if (!item) return;
    item.state = 'sending';
    item.error = '';
    this.trySend(item);
    this.queueRender();
  }

  discard(ref) {
    this.outbox = this.outbox.filter((x) => x.ref !== ref);
    this.persist(this.current);
    this.queueRender();
    this.renderPanel();
  }

  async act(frame, what) {
    try {
      await this.conn.request(frame);
    } catch (e) {
      showError(e, what);
      throw e;
    }
  }

  react(room, id, emoji, on) {
    return this.act({ type: 'react', room, id, emoji, on }, 'Reaction').catch(() => {});
  }

  markRead() {
    const room = this.current;
    if (!room || document.visibilityState === 'hidden') return;
    const st = this.states.get(room);
    if (!st || !st.lastSeq) return;
    if ((this.readSent.get(room) || 0) >= st.lastSeq) return;
    this.readSent.set(room, st.lastSeq);
    const mine = st.members.get(this.me.id);
    if (mine) mine.last_read = st.lastSeq;
    this.conn.request({ type: 'read', room, seq: st.lastSeq }).catch((e) => {
      this.readSent.delete(room);
      // Over the per-user action rate the next message sends the receipt again.
      if (e.code !== 'unavailable' && e.code !== 'rate_limited') showError(e, 'Read receipt');
    });
  }

  /**
   * Tells the room we are typing, at most once per TYPING_EVERY (the server
   * drops more). A keystroke inside that window schedules one trailing
   * notice, so a short burst right after sending a message still shows.
   */
  typing() {
    if (!this.current || this.typingTimer) return;
    const wait = this.lastTypingSent + TYPING_EVERY - Date.now();
    const fire = () => {
      this.typingTimer = 0;
      const box = this.panel && this.panel.kind === 'thread' && document.activeElement === $('#thread-text') ? $('#thread-text') : $('#composer-text');
      if (!this.current || !box.value.trim()) return;
      this.lastTypingSent = Date.now();
      this.conn.cast({ type: 'typing', room: this.current });
    };
    if (wait <= 0) fire();
    else this.typingTimer = setTimeout(fire, wait);
  }

  // ---- opening rooms ---------------------------------------------------------

  async open(room, { focus = true } = {}) {
    if (!this.rooms.has(room)) {
      // Reached by a link: one of our rooms we have not heard of yet, or a
      // public room we could join.
      await this.refreshRooms().catch(() => {});
      if (!this.rooms.has(room)) {
        try {
          this.showJoin(await this.api.get('/v1/rooms/' + seg(room)));
        } catch (e) {
          showError(e, 'Open room');
          this.showNoRoom();
        }
        return;
      }
    }
    if (this.current !== room) {
      this.current = room;
      this.editing = null;
      this.items.clear();
      $('#messages').replaceChildren();
      if (this.panel && this.panel.kind !== 'search') this.closePanel();
    }
    const st = this.state(room);
    st.unread = 0;
    this.renderRooms();
    this.renderHeader();
    $('#room-empty').hidden = true;
    $('#messages').hidden = false;
    $('#composer').hidden = false;
    this.queueRender(true); // a room opens at its newest message
    if (focus) $('#composer-text').focus();
    try {
      await this.loadRoom(room);
      if (!st.membersLoaded) await this.loadMembers(room);
    } catch (e) {
      showError(e, 'Loading room');
    }
    if (this.current === room) {
      // Not forced: the reader may have scrolled up meanwhile (the room shows
      // as soon as history or a sync arrives); pulling them to the end would
      // move what they were about to click.
      this.queueRender();
      this.markRead();
    }
  }

  /** Fetches the page of history before the oldest message we hold. */
  async loadOlder(room) {
    const st = this.state(room);
    if (st.loadingOlder) return;
    const oldest = Math.min(...[...st.msgs.values()].map((m) => m.seq));
    st.loadingOlder = true;
    this.queueRender();
    const list = $('#messages');
    try {
      const res = await this.api.get(`/v1/rooms/${seg(room)}/messages?before=${oldest}&limit=100`);
      const ms = res.messages || [];
      for (const m of ms) {
        if (!st.msgs.has(m.id)) {
          st.msgs.set(m.id, { id: m.id, seq: m.seq, from: m.from, text: m.text, thread: m.thread || '', ts: m.ts,
            edited_ts: m.edited_ts || 0, deleted: !!m.deleted, reactions: m.reactions || {}, ver: 1 });
        }
      }
      if (ms.length < 100) st.older = false;
    } catch (e) {
      showError(e, 'Older messages');
    } finally {
      st.loadingOlder = false;
    }
    if (room !== this.current) return;
    // Keep the reader's place while older messages go in above.
    const fromEnd = list.scrollHeight - list.scrollTop;
    this.renderMessages();
    list.scrollTop = list.scrollHeight - fromEnd;
  }

  showNoRoom(message) {
    this.current = null;
    this.items.clear();
    $('#messages').replaceChildren();
    $('#messages').hidden = true;
    $('#composer').hidden = true;
    const empty = $('#room-empty');
    empty.hidden = false;
    empty.replaceChildren(message || 'Pick a room on the left, create one, or browse public rooms.');
    this.renderHeader();
    this.renderRooms();
  }

  /** A public room we are not in: say so and offer to join. */
  showJoin(r) {
    this.showNoRoom(h('span', null, `You are not in ${r.name} yet. `,
      h('button', { type: 'button', class: 'primary', id: 'join-room', onclick: async () => {
        try {
          await this.api.post(`/v1/rooms/${seg(r.id)}/join`);
          this.addRoom(r);
          this.renderRooms();
          this.open(r.id);
        } catch (e) { showError(e, 'Join room'); }
      } }, `Join ${r.name}`)));
    $('#room-title').textContent = r.name;
    $('#room-kind').textContent = r.kind;
    $('#join-room').focus();
  }

  // ---- rendering ---------------------------------------------------------------

  renderAll() {
    this.renderRooms();
    this.renderHeader();
    this.queueRender();
    this.renderPanel();
  }

  renderRooms() {
    const list = $('#room-list');
    const rooms = [...this.rooms.values()].sort((a, b) => this.roomName(a).localeCompare(this.roomName(b)));
    const items = rooms.map((r) => {
      const st = this.states.get(r.id);
      const unread = st && st.unread ? st.unread : 0;
      const current = r.id === this.current;
      return h('li', null, h('a', {
        href: '#/chat/' + encodeURIComponent(r.id), class: current ? 'current' : '', 'aria-current': current ? 'page' : false,
        dataset: { room: r.id, focus: 'room:' + r.id },
      }, h('span', { class: 'kind', 'aria-hidden': 'true' }, kindGlyph(r.kind)), h('span', { class: 'rname' }, this.roomName(r)),
      h('span', { class: 'sr-only' }, ` (${r.kind} room)`),
      unread ? h('span', { class: 'unread', 'aria-label': `${unread} unread` }, String(unread)) : null));
    });
    if (!items.length) items.push(h('li', { class: 'hint' }, 'No rooms yet.'));
    const active = document.activeElement && list.contains(document.activeElement) ? document.activeElement.dataset.focus : null;
    list.replaceChildren(...items);
    if (active) { const el = list.querySelector(`[data-focus="${CSS.escape(active)}"]`); if (el) el.focus(); }
  }

  renderHeader() {
    const r = this.rooms.get(this.current);
    $('#room-title').textContent = r ? this.roomName(r) : 'No room selected';
    $('#room-kind').textContent = r ? r.kind : '';
    $('#toggle-members').hidden = !r;
    $('#leave-room').hidden = !r || r.kind === 'direct';
    $('#toggle-members').setAttribute('aria-expanded', String(!!(this.panel && this.panel.kind === 'members')));
    if (r) document.title = `${this.roomName(r)} · Unhidra`;
  }

  queueRender(scrollToEnd = false) {
    if (scrollToEnd) this.forceScroll = true;
    if (this.renderQueued) return;
    this.renderQueued = true;
    requestAnimationFrame(() => {
      this.renderQueued = false;
      this.renderMessages();
    });
  }

  /** "Seen by" names per message id for the current room. */
  seenBy(st, shown) {
    const out = new Map();
    for (const [uid, m] of st.members) {
      if (uid === this.me.id || !m.last_read) continue;
      let last = null;
      for (const msg of shown) if (msg.seq && msg.seq <= m.last_read) last = msg; else if (msg.seq > m.last_read) break;
      if (!last) continue;
      if (!out.has(last.id)) out.set(last.id, []);
      out.get(last.id).push(this.name(uid));
    }
    return out;
  }

  renderMessages() {
    const room = this.current;
    const list = $('#messages');
    if (!room) return;
    const st = this.state(room);
    const top = [...st.msgs.values()].filter((m) => !m.thread || !st.msgs.has(m.thread)).sort((a, b) => a.seq - b.seq);
    const replies = new Map();
    for (const m of st.msgs.values()) if (m.thread) replies.set(m.thread, (replies.get(m.thread) || 0) + 1);
    const pending = this.outbox.filter((x) => x.room === room && !x.thread);
    const notes = this.ephemeral.filter((x) => x.room === room && !x.thread);
    const seen = this.seenBy(st, top);
    const nearEnd = list.scrollHeight - list.scrollTop - list.clientHeight < 80;

    const keys = [];
    const oldest = Math.min(...[...st.msgs.values()].map((m) => m.seq));
    if (st.loaded && st.msgs.size && oldest > 1 && st.older !== false) {
      keys.push(['older', String(!!st.loadingOlder), () => h('li', { class: 'older' }, h('button', {
        type: 'button', class: 'link', dataset: { focus: 'older' }, disabled: !!st.loadingOlder,
        onclick: () => this.loadOlder(room),
      }, st.loadingOlder ? 'Loading…' : 'Load older messages'))]);
    }
    for (const m of top) {
      const sig = `${m.ver}|${(seen.get(m.id) || []).join(',')}|${replies.get(m.id) || 0}|${this.editing && this.editing.id === m.id}`;
      keys.push(['m:' + m.id, sig, () => this.messageItem(room, m, { seen: seen.get(m.id), replies: replies.get(m.id) || 0 })]);
    }
    for (const p of pending) keys.push(['p:' + p.ref, p.state + (p.error || ''), () => this.pendingItem(p)]);
    for (const n of notes) keys.push(['e:' + n.key, '', () => this.ephemeralItem(n)]);

    const want = new Set(keys.map((k) => k[0]));
    for (const [k, li] of this.items) if (!want.has(k)) { li.remove(); this.items.delete(k); }
    let prev = null;
    for (const [k, sig, build] of keys) {
      let li = this.items.get(k);
      if (!li || li.dataset.sig !== sig) {
        const fresh = build();
        fresh.dataset.sig = sig;
        if (li) {
          const focusKey = li.contains(document.activeElement) ? document.activeElement.dataset.focus : null;
          li.replaceWith(fresh);
          if (focusKey) { const el = fresh.querySelector(`[data-focus="${CSS.escape(focusKey)}"]`); if (el) el.focus(); }
        }
        li = fresh;
        this.items.set(k, li);
      }
      const expected = prev ? prev.nextSibling : list.firstChild;
      if (expected !== li) list.insertBefore(li, expected);
      prev = li;
    }
    if (!keys.length && !list.querySelector('.empty-room')) {
      list.append(h('li', { class: 'empty-room hint' }, 'No messages yet. Say hello!'));
    } else if (keys.length) {
      const e = list.querySelector('.empty-room');
      if (e) e.remove();
    }
    if (nearEnd || this.forceScroll) list.scrollTop = list.scrollHeight;
    this.forceScroll = false;
    this.renderTyping();
  }

  messageItem(room, m, { seen, replies, inThread = false } = {}) {
    const mine = m.from === this.me.id;
    const actions = [];
    if (!m.deleted) {
      for (const e of QUICK_REACTIONS) {
        const on = (m.reactions[e] || []).includes(this.me.id);
        actions.push(h('button', { type: 'button', class: 'icon', 'aria-label': `${on ? 'Remove' : 'React with'} ${e}`,
          dataset: { focus: `q:${m.id}:${e}` }, onclick: () => this.react(room, m.id, e, !on) }, e));
      }
      if (!inThread) {
        actions.push(h('button', { type: 'button', dataset: { focus: `t:${m.id}` }, onclick: () => this.openThread(m.id) }, 'Reply in thread'));
      }
      if (mine) {
        actions.push(h('button', { type: 'button', dataset: { focus: `e:${m.id}` }, onclick: () => this.startEdit(room, m) }, 'Edit'));
        actions.push(h('button', { type: 'button', dataset: { focus: `d:${m.id}` }, onclick: () => {
          if (confirm('Delete this message?')) this.act({ type: 'delete', room, id: m.id }, 'Delete').catch(() => {});
        } }, 'Delete'));
      }
    }
    const chips = Object.entries(m.reactions || {}).filter(([, us]) => us.length).map(([e, us]) => {
      const on = us.includes(this.me.id);
      const names = us.map((u) => this.name(u)).join(', ');
      return h('button', { type: 'button', class: 'chip' + (on ? ' on' : ''), 'aria-pressed': String(on),
        title: names, 'aria-label': `${e} ${us.length}, by ${names}`, dataset: { focus: `r:${m.id}:${e}` },
        onclick: () => this.react(room, m.id, e, !on) }, `${e} ${us.length}`);
    });
    return h('li', { class: 'msg' + (mine ? ' mine' : ''), id: 'msg-' + m.id, dataset: { id: m.id, seq: m.seq } },
      h('div', { class: 'meta' },
        h('span', { class: 'from' }, this.name(m.from)), ' ',
        h('time', { datetime: new Date(m.ts).toISOString() }, fmtTime(m.ts)),
        m.edited_ts && !m.deleted ? h('span', { class: 'edited' }, ' (edited)') : null),
      m.deleted ? h('p', { class: 'text deleted' }, 'Message deleted')
        : this.editing && this.editing.id === m.id && !inThread ? this.editForm(room, m) : h('p', { class: 'text' }, m.text),
      chips.length ? h('div', { class: 'reactions' }, chips) : null,
      !inThread && replies ? h('button', { type: 'button', class: 'link replies', dataset: { focus: `n:${m.id}` },
        onclick: () => this.openThread(m.id) }, replies === 1 ? '1 reply' : `${replies} replies`) : null,
      actions.length ? h('div', { class: 'actions', role: 'group', 'aria-label': 'Message actions' }, actions) : null,
      seen && seen.length ? h('p', { class: 'seen' }, 'Seen by ' + seen.join(', ')) : null);
  }

  ephemeralItem(n) {
    return h('li', { class: 'msg ephemeral' },
      h('div', { class: 'meta' }, h('span', { class: 'from' }, n.command.split(/\s/)[0]), ' ',
        h('time', { datetime: new Date(n.ts).toISOString() }, fmtTime(n.ts)), h('span', { class: 'hint' }, ' · only you can see this')),
      h('p', { class: 'text' }, n.text),
      h('div', { class: 'actions visible' }, h('button', { type: 'button', class: 'link', onclick: () => {
        this.ephemeral = this.ephemeral.filter((x) => x !== n);
        this.queueRender();
        $('#composer-text').focus();
      } }, 'Dismiss')));
  }

  pendingItem(p) {
    return h('li', { class: 'msg mine pending' + (p.state === 'failed' ? ' failed' : ''), dataset: { ref: p.ref } },
      h('div', { class: 'meta' }, h('span', { class: 'from' }, this.me.username), ' ',
        h('span', { class: 'status' }, p.state === 'failed' ? `not sent — ${p.error}` : p.state === 'acked' ? 'sent' : 'sending…')),
      h('p', { class: 'text' }, p.text),
      p.state === 'failed' ? h('div', { class: 'actions visible' },
        h('button', { type: 'button', dataset: { focus: 'retry:' + p.ref }, onclick: () => this.retrySend(p.ref) }, 'Retry'),
        h('button', { type: 'button', dataset: { focus: 'discard:' + p.ref }, onclick: () => this.discard(p.ref) }, 'Discard')) : null);
  }

  /**
   * Edits a message in place. The draft lives in this.editing, not only in
   * the DOM, so a redraw of the message (a receipt, a reaction) keeps it.
   */
  startEdit(room, m) {
    if (this.editing) this.stopEdit();
    this.editing = { room, id: m.id, text: m.text };
    m.ver += 1;
    this.renderMessages();
    const input = document.getElementById('edit-' + m.id);
    if (input) {
      input.focus();
      input.setSelectionRange(input.value.length, input.value.length);
    }
  }

  stopEdit({ focusComposer = false } = {}) {
    const e = this.editing;
    if (!e) return;
    this.editing = null;
    const m = this.states.get(e.room) && this.states.get(e.room).msgs.get(e.id);
    if (m) m.ver += 1;
    this.renderMessages();
    if (focusComposer) $('#composer-text').focus();
  }

  editForm(room, m) {
    const input = h('textarea', { id: 'edit-' + m.id, rows: 2, maxlength: 16000, dataset: { focus: 'edit:' + m.id } });
    input.value = this.editing.text;
    input.addEventListener('input', () => { if (this.editing) this.editing.text = input.value; });
    const form = h('form', { class: 'edit-form' },
      h('label', { for: 'edit-' + m.id, class: 'sr-only' }, 'Edit message'), input,
      h('button', { type: 'submit', class: 'primary' }, 'Save'),
      h('button', { type: 'button', onclick: () => this.stopEdit({ focusComposer: true }) }, 'Cancel'));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const text = trimLines(input.value);
      if (!text.trim() || text === m.text) { this.stopEdit({ focusComposer: true }); return; }
      try {
        await this.act({ type: 'edit', room, id: m.id, text }, 'Edit');
        this.stopEdit({ focusComposer: true });
      } catch { input.focus(); }
    });
    input.addEventListener('keydown', (ev) => {
      if (ev.key === 'Escape') { ev.preventDefault(); ev.stopPropagation(); this.stopEdit({ focusComposer: true }); }
      if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); form.requestSubmit(); }
    });
    input.addEventListener('keypress', (ev) => { if (ev.key === 'Enter' && !ev.shiftKey) ev.preventDefault(); });
    return form;
  }


  renderTyping() {
    const el = $('#typing');
    const st = this.current && this.states.get(this.current);
    if (!st) { el.textContent = ''; return; }
    const now = Date.now();
    const who = [];
    for (const [u, until] of st.typing) if (until > now) who.push(this.name(u)); else st.typing.delete(u);
    const text = who.length === 0 ? '' : who.length === 1 ? `${who[0]} is typing…` : `${who.join(', ')} are typing…`;
    if (el.textContent !== text) el.textContent = text;
  }

  // ---- side panel: thread, members, search ----------------------------------------

  openThread(id) {
    this.panel = { kind: 'thread', id, room: this.current };
    this.renderPanel();
    $('#thread-text').focus();
  }

  toggleMembers() {
    if (this.panel && this.panel.kind === 'members') { this.closePanel(); return; }
    this.panel = { kind: 'members', room: this.current };
    this.renderPanel();
    this.renderHeader();
    $('#panel-title').focus();
  }

  async search(q) {
    this.panel = { kind: 'search', q, results: null };
    this.renderPanel();
    try {
      const res = await this.api.get('/v1/search?q=' + encodeURIComponent(q) + '&limit=50');
      if (this.panel && this.panel.kind === 'search' && this.panel.q === q) {
        this.panel.results = res.messages || [];
        this.renderPanel();
        $('#panel-title').focus();
      }
    } catch (e) {
      showError(e, 'Search');
      this.panel.results = [];
      this.renderPanel();
    }
  }

  closePanel() {
    const wasMembers = this.panel && this.panel.kind === 'members';
    const threadId = this.panel && this.panel.kind === 'thread' ? this.panel.id : null;
    this.panel = null;
    this.renderPanel();
    this.renderHeader();
    // Return focus to what opened the panel.
    const back = threadId ? document.querySelector(`[data-focus="t:${CSS.escape(threadId)}"]`)
      : wasMembers ? $('#toggle-members') : null;
    (back || $('#composer-text')).focus();
  }

  renderPanel() {
    const panel = $('#side-panel');
    const p = this.panel;
    panel.hidden = !p;
    $('#thread-composer').hidden = !p || p.kind !== 'thread';
    if (!p) return;
    const title = $('#panel-title');
    title.tabIndex = -1;
    const body = $('#panel-body');
    if (p.kind === 'thread') {
      const st = this.state(p.room);
      const parent = st.msgs.get(p.id);
      const replies = [...st.msgs.values()].filter((m) => m.thread === p.id).sort((a, b) => a.seq - b.seq);
      const pend = this.outbox.filter((x) => x.room === p.room && x.thread === p.id);
      const notes = this.ephemeral.filter((x) => x.room === p.room && x.thread === p.id);
      title.textContent = 'Thread';
      const list = h('ol', { class: 'messages thread', 'aria-label': 'Thread replies', role: 'log', 'aria-live': 'polite' },
        parent ? this.messageItem(p.room, parent, { inThread: true }) : h('li', { class: 'hint' }, 'The first message is not loaded.'),
        replies.map((m) => this.messageItem(p.room, m, { inThread: true })),
        pend.map((x) => this.pendingItem(x)), notes.map((x) => this.ephemeralItem(x)));
      const focusKey = body.contains(document.activeElement) ? document.activeElement.dataset.focus : null;
      body.replaceChildren(list);
      if (focusKey) { const el = body.querySelector(`[data-focus="${CSS.escape(focusKey)}"]`); if (el) el.focus(); }
      list.scrollTop = list.scrollHeight;
    } else if (p.kind === 'members') {
      const st = this.state(p.room);
      const r = this.rooms.get(p.room);
      title.textContent = 'Members';
      const items = [...st.members.entries()].sort((a, b) => this.name(a[0]).localeCompare(this.name(b[0]))).map(([uid, m]) => {
        const u = this.users.get(uid);
        const online = u && u.online;
        return h('li', { class: 'member' },
          h('span', { class: 'dot' + (online ? ' online' : ''), 'aria-hidden': 'true' }),
          h('span', null, this.name(uid)), h('span', { class: 'sr-only' }, online ? ' (online)' : ' (offline)'),
          m.role === 'owner' ? h('span', { class: 'badge' }, 'owner') : null);
      });
      const add = r && r.kind !== 'direct' ? this.addMemberForm(p.room) : null;
      body.replaceChildren(h('ul', { class: 'members', 'aria-label': 'Room members' }, items), add);
    } else if (p.kind === 'search') {
      title.textContent = `Search: ${p.q}`;
      if (p.results === null) { body.replaceChildren(h('p', { class: 'hint', role: 'status' }, 'Searching…')); return; }
      if (!p.results.length) { body.replaceChildren(h('p', { class: 'hint', role: 'status' }, 'No messages found.')); return; }
      body.replaceChildren(h('p', { class: 'hint', role: 'status' }, `${p.results.length} found`),
        h('ul', { class: 'results' }, p.results.map((m) => h('li', null,
          h('button', { type: 'button', class: 'result', onclick: () => this.jumpTo(m) },
            h('span', { class: 'meta' }, `${this.roomName(this.rooms.get(m.room)) || 'room'} · ${this.name(m.from)} · ${fmtTime(m.ts)}`),
            h('span', { class: 'text' }, m.text))))));
    }
  }

  addMemberForm(room) {
    const input = h('input', { id: 'add-member', autocomplete: 'off', maxlength: 64 });
    const form = h('form', { class: 'inline' }, h('label', { for: 'add-member' }, 'Add member'), input,
      h('button', { type: 'submit' }, 'Add'));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const user = input.value.trim();
      if (!user) return;
      try {
        await this.api.post(`/v1/rooms/${seg(room)}/members`, { user });
        input.value = '';
        await this.loadMembers(room);
      } catch (e) { showError(e, 'Add member'); input.focus(); }
    });
    return form;
  }

  async jumpTo(m) {
    await this.open(m.room, { focus: false });
    const target = m.thread ? null : document.getElementById('msg-' + m.id);
    if (m.thread) { this.openThread(m.thread); return; }
    if (target) {
      target.classList.add('highlight');
      target.tabIndex = -1;
      target.scrollIntoView({ block: 'center' });
      target.focus();
      setTimeout(() => target.classList.remove('highlight'), 3000);
    }
  }

  // ---- dialogs and DOM wiring ---------------------------------------------------

  bindDom() {
    const composer = $('#composer');
    const text = $('#composer-text');
    composer.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const t = trimLines(text.value);
      if (!t.trim() || !this.current) return;
      this.send(this.current, t);
      text.value = '';
      text.focus();
    });
    text.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); composer.requestSubmit(); }
      if (ev.key === 'ArrowUp' && !text.value) { // edit your last message, as in most chat apps
        const st = this.current && this.states.get(this.current);
        if (!st) return;
        const mine = [...st.msgs.values()].filter((m) => m.from === this.me.id && !m.deleted && !m.thread).sort((a, b) => b.seq - a.seq)[0];
        if (mine) { ev.preventDefault(); this.startEdit(this.current, mine); }
      }
    });
    text.addEventListener('input', () => this.typing());
    // Some input methods (and synthetic keyboards) send Enter's character
    // separately from its keydown: never let the Enter that sent a message
    // leave a newline behind.
    const noEnterChar = (ev) => { if (ev.key === 'Enter' && !ev.shiftKey) ev.preventDefault(); };
    text.addEventListener('keypress', noEnterChar);

    const tc = $('#thread-composer');
    const tt = $('#thread-text');
    tc.addEventListener('submit', (ev) => {
      ev.preventDefault();
      if (!tt.value.trim() || !this.panel || this.panel.kind !== 'thread') return;
      this.send(this.panel.room, trimLines(tt.value), this.panel.id);
      tt.value = '';
      tt.focus();
    });
    tt.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); tc.requestSubmit(); }
    });
    tt.addEventListener('input', () => this.typing());
    tt.addEventListener('keypress', noEnterChar);

    $('#panel-close').addEventListener('click', () => this.closePanel());
    $('#side-panel').addEventListener('keydown', (ev) => { if (ev.key === 'Escape') this.closePanel(); });
    $('#toggle-members').addEventListener('click', () => this.toggleMembers());
    $('#leave-room').addEventListener('click', async () => {
      const r = this.rooms.get(this.current);
      if (!r || !confirm(`Leave ${this.roomName(r)}?`)) return;
      try {
        await this.api.post(`/v1/rooms/${seg(r.id)}/leave`);
        this.dropRoom(r.id);
      } catch (e) { showError(e, 'Leave room'); }
    });
    $('#search-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const q = $('#search-q').value.trim();
      if (q) { this.app.go('#/chat' + (this.current ? '/' + encodeURIComponent(this.current) : '')); this.search(q); }
    });

    // New room dialog.
    const dlg = $('#dlg-new-room');
    const form = $('#new-room-form');
    const kind = $('#nr-kind');
    const syncKind = () => {
      const k = kind.value;
      $('#nr-name').required = k === 'public' || k === 'private';
      $('#nr-name').closest('.field').querySelector('label').textContent =
        k === 'public' || k === 'private' ? 'Name' : 'Name (optional)';
    };
    kind.addEventListener('change', syncKind);
    $('#new-room').addEventListener('click', () => {
      form.reset();
      syncKind();
      $('#new-room-error').textContent = '';
      dlg.showModal();
      $('#nr-name').focus();
    });
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const body = { kind: kind.value, name: $('#nr-name').value.trim() };
      const topic = $('#nr-topic').value.trim();
      if (topic) body.topic = topic;
      const members = $('#nr-members').value.split(',').map((s) => s.trim()).filter(Boolean);
      if (members.length) body.members = members;
      try {
        const r = await this.api.post('/v1/rooms', body);
        dlg.close();
        this.addRoom(r);
        this.renderRooms();
        this.app.go('#/chat/' + encodeURIComponent(r.id));
      } catch (e) {
        $('#new-room-error').textContent = `${e.code}: ${e.message}`;
        $('#nr-name').focus();
      }
    });

    // Browse public rooms.
    const browse = $('#dlg-browse');
    $('#browse-rooms').addEventListener('click', async () => {
      $('#browse-error').textContent = '';
      $('#public-rooms').replaceChildren(h('li', { class: 'hint' }, 'Loading…'));
      browse.showModal();
      try {
        const res = await this.api.get('/v1/rooms?public=1');
        const rooms = res.rooms || [];
        $('#public-rooms').replaceChildren(...(rooms.length ? rooms.map((r) => {
          const joined = this.rooms.has(r.id);
          return h('li', null, h('span', { class: 'rname' }, r.name), r.topic ? h('span', { class: 'hint' }, ' — ' + r.topic) : null, ' ',
            h('button', { type: 'button', 'aria-label': `${joined ? 'Open' : 'Join'} ${r.name}`, onclick: async () => {
              try {
                if (!joined) await this.api.post(`/v1/rooms/${seg(r.id)}/join`);
                browse.close();
                this.addRoom(r);
                this.renderRooms();
                this.app.go('#/chat/' + encodeURIComponent(r.id));
              } catch (e) { $('#browse-error').textContent = `${e.code}: ${e.message}`; }
            } }, joined ? 'Open' : 'Join'));
        }) : [h('li', { class: 'hint' }, 'No public rooms yet — create one.')]));
        const first = $('#public-rooms button');
        if (first) first.focus();
      } catch (e) {
        $('#browse-error').textContent = `${e.code}: ${e.message}`;
      }
    });
    for (const b of document.querySelectorAll('dialog [data-close]')) {
      b.addEventListener('click', () => b.closest('dialog').close());
    }
    document.addEventListener('visibilitychange', () => this.markRead());
  }
}

/** Moves the room's watermark over the early events that now join it. */
function advance(st) {
  for (const s of st.ahead) if (s <= st.lastSeq) st.ahead.delete(s);
  while (st.ahead.has(st.lastSeq + 1)) {
    st.lastSeq += 1;
    st.ahead.delete(st.lastSeq);
  }
}

/** Drops blank lines around a message; indentation inside it is kept. */
function trimLines(t) {
  return t.replace(/^\s*\n/, '').replace(/\n\s*$/, '');
}

function kindGlyph(kind) {
  return { public: '#', private: '🔒', direct: '@', group: '👥' }[kind] || '#';
}
