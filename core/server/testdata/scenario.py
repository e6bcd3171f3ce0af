#!/usr/bin/python3
"""Independent protocol v1 client: Debian's python3-websockets drives the
send/sync scenario of TestSendSyncScenario against a real Unhidra server.

  scenario.py http://127.0.0.1:PORT

A sends, B receives; B disconnects; A sends 100; B reconnects, syncs from the
last seq it saw and must get exactly those 100, in order. Prints one JSON line
with the result; exits non-zero on any deviation.
"""
import asyncio
import json
import sys
import urllib.request

import websockets

BASE = sys.argv[1].rstrip("/")
WS = BASE.replace("http", "ws", 1) + "/v1/ws"
TIMEOUT = 10


def rest(method, path, body=None, token=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(BASE + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(req, timeout=TIMEOUT) as r:
        return json.loads(r.read() or b"null")


def account(name):
    rest("POST", "/v1/auth/register", {"username": name, "password": "password-" + name})
    return rest("POST", "/v1/auth/login", {"username": name, "password": "password-" + name})["access_token"]


def fail(msg):
    print(json.dumps({"ok": False, "error": msg}))
    sys.exit(1)


async def connect(token):
    ws = await websockets.connect(WS, subprotocols=["unhidra.v1"],
                                  extra_headers={"Authorization": "Bearer " + token})
    if ws.subprotocol != "unhidra.v1":
        fail("server selected subprotocol %r" % ws.subprotocol)
    return ws


async def next_frame(ws, want, ref=None):
    """Returns the next frame of type want (and ref, if given); an error
    frame for ref fails the scenario."""
    while True:
        f = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        if f.get("type") == "error" and (ref is None or f.get("ref") == ref):
            fail("error frame: %r" % f)
        if f.get("type") == want and (ref is None or f.get("ref") == ref):
            return f


async def call(ws, frame, want):
    await ws.send(json.dumps(frame))
    return await next_frame(ws, want, frame["ref"])


async def main():
    ta, tb = account("py_alice"), account("py_bob")
    room = rest("POST", "/v1/rooms", {"name": "python", "kind": "public"}, ta)["id"]

    a, b = await connect(ta), await connect(tb)
    await call(b, {"type": "join", "room": room, "ref": "j1"}, "ack")
    ack = await call(a, {"type": "send", "room": room, "text": "hello from python", "ref": "s0"}, "ack")
    if ack.get("seq") != 1 or not ack.get("id") or ack.get("room") != room:
        fail("first ack %r" % ack)
    m = await next_frame(b, "message")
    if m.get("id") != ack["id"] or m.get("text") != "hello from python" or m.get("seq") != 1:
        fail("B received %r" % m)
    last = m["seq"]
    await b.close()

    # A sends 100 while B is away; refs make them idempotent.
    want = []
    for i in range(100):
        ack = await call(a, {"type": "send", "room": room, "text": "missed %d" % i, "ref": "m%d" % i}, "ack")
        want.append((ack["id"], ack["seq"], "missed %d" % i))

    b = await connect(tb)
    got, after, page = [], last, 0
    while True:
        page += 1
        ref = "sync%d" % page
        await b.send(json.dumps({"type": "sync", "room": room, "after": after, "limit": 30, "ref": ref}))
        while True:
            f = json.loads(await asyncio.wait_for(b.recv(), TIMEOUT))
            if f.get("type") == "error":
                fail("sync error %r" % f)
            if f.get("type") == "message" and f.get("room") == room and f.get("seq", 0) > after:
                got.append((f["id"], f["seq"], f["text"]))
            if f.get("type") == "synced" and f.get("ref") == ref:
                break
        if not f.get("more"):
            break
        after = f["upto"]
    if got != want:
        fail("sync returned %d events; first mismatch at %r" % (
            len(got), next((i for i, (x, y) in enumerate(zip(got, want)) if x != y), min(len(got), len(want)))))
    await a.close()
    await b.close()
    print(json.dumps({"ok": True, "synced": len(got), "pages": page, "websockets": websockets.__version__}))


asyncio.run(main())
