// TypeScript and Python clients on one daemon: a TS provider answers a Python
// caller, a Python provider answers a TS caller, a Python emitter reaches a TS
// subscriber and back, and both see the same error codes for the same bad calls.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import * as C from "../src/node.js";
import { Client } from "../src/node.js";
import { badCalls, Daemon, REPO } from "./daemon.js";
import { Peer, pythonMissing, runPeer } from "./python.js";

const skip = pythonMissing();
let d: Daemon;
let c: Client;

before(async () => {
  if (skip) return;
  d = await new Daemon().start();
  c = await Client.connect({ socketPath: d.socket });
});
after(async () => {
  await c?.close();
  await d?.dispose();
});

test("a TypeScript provider answers a Python caller", { skip }, async () => {
  const prov = await c.commands.provide("interop/shout", (p: any, inv) => ({ shout: String(p.text).toUpperCase(), big: BigInt(p.big) + 1n, caller: inv.caller }));
  try {
    const [r] = await runPeer(d.socket, "call", "interop/shout", JSON.stringify({ text: "hi" }).replace("}", `,"big":9223372036854775807}`));
    assert.equal(r.result.shout, "HI");
    assert.match(r.repr, /'big': 9223372036854775808\b/); // int64 max + 1, exact in Python
    assert.ok(r.result.caller);
    const [bad] = await runPeer(d.socket, "call", "interop/nobody", "{}");
    assert.deepEqual(bad, { error: "unknown_method", class: "UnknownMethodError" });
  } finally {
    await prov.close();
  }
  // a bigint a TS handler returns reaches Python exactly (uint64 max)
  const prov2 = await c.commands.provide("interop/big", () => 2n ** 64n - 1n);
  try {
    const [out] = await runPeer(d.socket, "call", "interop/big", "{}");
    assert.equal(out.repr, "18446744073709551615");
  } finally {
    await prov2.close();
  }
});

test("a Python provider answers a TypeScript caller", { skip }, async () => {
  const peer = new Peer(d.socket, "provide", "interop/greet");
  try {
    await peer.ready();
    const r = await c.commands.execute({ command: "interop/greet", params: { name: "ts" } });
    assert.equal(r.greeting, "hello ts");
    assert.equal(r.from, "python");
    assert.equal(r.big, 2n ** 63n + 11n);
    await assert.rejects(c.commands.execute({ command: "interop/greet", params: {} }), C.InvalidArgumentError);
  } finally {
    await peer.stop();
  }
});

test("a Python emitter reaches a TypeScript subscriber, and back", { skip }, async () => {
  const sub = await c.events.subscribe({ pattern: "interop:*" });
  await runPeer(d.socket, "emit", "interop:from-python", JSON.stringify({ n: 1, text: "hé" }));
  const ev = await sub.nextEvent(5000);
  assert.equal(ev?.class, "interop:from-python");
  assert.deepEqual(ev?.payload, { n: 1, text: "hé" });
  await sub.close();

  const py = new Peer(d.socket, "subscribe", "interop:*", "1");
  try {
    await py.ready();
    await c.events.emit({ name: "interop:from-ts", payload: { list: [1, 2], nested: { ok: true } } });
    const got = JSON.parse(await py.next());
    assert.deepEqual(got.class, "interop:from-ts");
    assert.deepEqual(got.payload, { list: [1, 2], nested: { ok: true } });
  } finally {
    await py.stop();
  }
});

test("both clients see the same error codes for the same bad calls", { skip }, async () => {
  const cases = badCalls();
  const ts: Array<string | null> = [];
  for (const b of cases) {
    for (const x of b.before ?? []) await c.call(x.method, x.params);
    ts.push(await c.call(b.method, b.params).then(() => null, (e: C.ContinuumError) => e.code));
  }
  const [py] = await runPeer(d.socket, "bad-calls", join(REPO, "bindings", "interop", "bad-calls.json"));
  assert.deepEqual(ts, cases.map((b) => b.code));
  assert.deepEqual(py, ts);
});
