import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import * as C from "../src/node.js";
import { Client, connectUnix } from "../src/node.js";
import { badCalls, Daemon } from "./daemon.js";

let d: Daemon;
let c: Client;

before(async () => {
  d = await new Daemon().start();
  c = await Client.connect({ socketPath: d.socket });
});
after(async () => {
  await c?.close();
  await d?.dispose();
});

test("generated surface: group/name-with-dashes becomes client.group.nameWithDashes", () => {
  for (const m of C.METHODS) {
    if (m.kind !== "request") continue;
    const [group, name] = m.name.split("/");
    const camel = name.replace(/-([a-z])/g, (_, x: string) => x.toUpperCase());
    assert.equal(typeof (c as any)[group][camel], "function", m.name);
  }
  for (const { code } of C.CATALOGUE) {
    const e = C.errorFromWire({ code, message: "m" });
    assert.equal(e.code, code);
    assert.equal(e.message, `${code}: m`);
    assert.equal(e.detail, "m");
    assert.ok(e instanceof C.ContinuumError);
    assert.notEqual(e.constructor, C.ContinuumError, code);
    assert.equal((e.constructor as any).code, code);
  }
});

test("ping and info are typed results", async () => {
  const p = await c.kernel.ping();
  assert.ok(Number(p.ts) > 1.6e12);
  const info = await c.kernel.info();
  assert.equal(info.protocol, C.PROTOCOL);
  const names = new Set(info.methods!.map((m) => m.name));
  for (const m of C.METHODS) assert.ok(names.has(m.name), m.name);
});

test("classes", async () => {
  const cfg = await c.events.declareClass({ name: "ts:test:room", schemaVersion: "v1", broadcast: true, channel: C.ChannelStrategy.ByRoomId });
  assert.equal(cfg.channel, "byRoomId");
  assert.equal(cfg.onUnknownSchema, "fail");
  assert.deepEqual(await c.events.getClass({ name: "ts:test:room" }), cfg);
  assert.equal(await c.events.getClass({ name: "ts:test:none" }), null);
  assert.ok((await c.events.listClasses()).some((x) => x.name === "ts:test:room"));
  assert.equal((await c.events.resolveChannel({ name: "ts:test:room", payload: { roomId: "r9" } })).channel, "r9");
});

test("subscribe and emit; big integers survive", async () => {
  const other = await Client.connect({ socketPath: d.socket });
  try {
    const sub = await c.events.subscribe({ pattern: "ts:chat:*" });
    assert.ok(sub.id);
    const r = await other.events.emit({ name: "ts:chat:posted", payload: { text: "hi", big: 2n ** 63n + 1n, mid: 2 ** 40 }, headers: { h: "v" } });
    const ev = await sub.nextEvent(5000);
    assert.ok(ev);
    assert.equal(ev.id, r.id);
    assert.equal(ev.class, "ts:chat:posted");
    assert.deepEqual(ev.payload, { text: "hi", big: 2n ** 63n + 1n, mid: 2 ** 40 });
    assert.deepEqual(ev.headers, { h: "v" });
    let n = 0;
    const loop = (async () => {
      for await (const e of sub) {
        assert.equal(e.class, "ts:chat:posted");
        if (++n === 3) break; // breaking out unsubscribes
      }
    })();
    for (let i = 0; i < 3; i++) await other.events.emit({ name: "ts:chat:posted", payload: i });
    await loop;
    assert.equal(n, 3);
    await assert.rejects(c.events.unsubscribe({ subscription: sub.id }), C.NotFoundError);
  } finally {
    await other.close();
  }
});

test("events that race the subscribe reply reach their subscription", async () => {
  const em = await Client.connect({ socketPath: d.socket });
  let stop = false;
  const flood = (async () => {
    let i = 0;
    while (!stop) await Promise.all(Array.from({ length: 8 }, () => em.events.emit({ name: "ts:race:tick", payload: i++ })));
  })();
  try {
    const subs = await Promise.all(Array.from({ length: 20 }, () => c.events.subscribe({ pattern: "ts:race:*" })));
    for (const s of subs) assert.equal((await s.nextEvent(5000))?.class, "ts:race:tick");
    await Promise.all(subs.map((s) => s.close()));
  } finally {
    stop = true;
    await flood;
    await em.close();
  }
});

test("command provider answers callers, errors keep their code", async () => {
  const seen: string[] = [];
  const prov = await c.commands.provide(
    "tstest/add-numbers",
    (p, inv) => {
      seen.push(inv.caller);
      if (p.fail) throw new C.NotFoundError("no such thing", { k: 1 });
      if (p.crash) throw new Error("boom");
      return { sum: BigInt(p.a) + BigInt(p.b) };
    },
    { description: "adds" },
  );
  const caller = await Client.connect({ socketPath: d.socket });
  try {
    assert.deepEqual(await caller.commands.execute({ command: "tstest/add-numbers", params: { a: 2n ** 62n, b: 2n ** 62n } }), { sum: 2n ** 63n });
    const e = await caller.commands.execute({ command: "tstest/add-numbers", params: { fail: true } }).catch((x) => x);
    assert.ok(e instanceof C.NotFoundError);
    assert.equal(e.code, "not_found");
    assert.deepEqual(e.data, { k: 1 });
    await assert.rejects(caller.commands.execute({ command: "tstest/add-numbers", params: { crash: true } }), C.InternalError);
    const listed = (await caller.commands.list()).find((x) => x.name === "tstest/add-numbers");
    assert.equal(listed?.naturalScope, "environment");
    assert.ok(seen.length > 0);
    await prov.close();
    await assert.rejects(caller.commands.execute({ command: "tstest/add-numbers", params: {} }), C.UnknownMethodError);
  } finally {
    await caller.close();
  }
});

test("bad calls fail with the catalogue's codes", async () => {
  for (const b of badCalls()) {
    for (const x of b.before ?? []) await c.call(x.method, x.params);
    const e = await c.call(b.method, b.params).then(
      () => assert.fail(`${b.what}: no error`),
      (x) => x,
    );
    assert.ok(e instanceof C.ContinuumError, b.what);
    assert.equal(e.code, b.code, b.what);
    assert.equal(e.constructor, C.ERRORS[b.code], b.what);
  }
});

test("an unreachable daemon is a typed error", async () => {
  await assert.rejects(Client.connect({ socketPath: d.root + "/nobody.sock" }), C.UnavailableError);
  // The CLI's hint, and the code in the message as Python's str(err) has it.
  await assert.rejects(Client.connect({ socketPath: d.root + "/nobody.sock", reconnect: false }), (e: any) => {
    assert.ok(e instanceof C.UnavailableError);
    assert.match(e.message, /^unavailable: cannot connect to continuumd at .*nobody\.sock: .*is continuumd running\?/);
    assert.ok(!e.detail.startsWith("unavailable:"), e.detail);
    return true;
  });
});

/** Pings k until it answers (it reconnected); only unavailable may come meanwhile. */
async function waitReconnected(k: Client, why: () => string): Promise<void> {
  const deadline = Date.now() + 10000;
  for (;;) {
    try {
      await k.kernel.ping();
      return;
    } catch (e) {
      assert.ok(e instanceof C.UnavailableError);
      assert.ok(Date.now() < deadline, why());
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

test("reconnects, provides its commands again and resumes subscriptions", async () => {
  const own = await new Daemon().start();
  const k = await Client.connect({ socketPath: own.socket, backoffMs: { max: 200 } });
  try {
    await k.commands.provide("tstest/still-here", () => "yes");
    const sub = await k.events.subscribe({ pattern: "ts:after:*" });
    await own.stop();
    await assert.rejects(k.kernel.ping({}), C.UnavailableError);
    await own.start();
    await waitReconnected(k, () => "no reconnect");
    const o = await Client.connect({ socketPath: own.socket });
    try {
      for (let i = 0; i < 100 && !(await o.commands.list()).some((x) => x.name === "tstest/still-here"); i++) await new Promise((r) => setTimeout(r, 50));
      assert.equal(await o.commands.execute({ command: "tstest/still-here" }), "yes");
      for (let i = 0; i < 100 && !(k as any).subs.has(sub.id); i++) await new Promise((r) => setTimeout(r, 50));
      await o.events.emit({ name: "ts:after:restart", payload: 1 });
      assert.equal((await sub.nextEvent(5000))?.payload, 1);
    } finally {
      await o.close();
    }
  } finally {
    await k.close();
    await own.dispose();
  }
});

test("a connection lost again while restoring is retried, not left down", async () => {
  const own = await new Daemon().start();
  let dials = 0;
  // The first reconnection drops as soon as the client sends its first
  // message (the commands/register of restore); later ones are whole.
  const connector = async () => {
    const t = await connectUnix(own.socket);
    if (++dials !== 2) return t;
    const send = t.send.bind(t);
    t.send = (m: Uint8Array) => {
      send(m);
      t.close();
    };
    return t;
  };
  const k = await Client.connect({ connector, backoffMs: { initial: 20, max: 100 } });
  try {
    await k.commands.provide("tstest/restored", () => "yes");
    const sub = await k.events.subscribe({ pattern: "ts:restored:*" });
    await own.stop();
    await own.start();
    await waitReconnected(k, () => `no reconnect after ${dials} dials`);
    assert.ok(dials >= 3, `dials: ${dials}`);
    const o = await Client.connect({ socketPath: own.socket });
    try {
      for (let i = 0; i < 100 && !(k as any).subs.has(sub.id); i++) await new Promise((r) => setTimeout(r, 50));
      for (let i = 0; i < 100 && !(await o.commands.list()).some((x) => x.name === "tstest/restored"); i++) await new Promise((r) => setTimeout(r, 50));
      assert.equal(await o.commands.execute({ command: "tstest/restored" }), "yes");
      await o.events.emit({ name: "ts:restored:after", payload: 2 });
      assert.equal((await sub.nextEvent(5000))?.payload, 2);
    } finally {
      await o.close();
    }
  } finally {
    await k.close();
    await own.dispose();
  }
});
