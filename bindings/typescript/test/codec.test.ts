import { test } from "node:test";
import assert from "node:assert/strict";
import { decode, encode, Splitter, MessageTooLargeError, ProtocolErrorError } from "../src/node.js";

test("64-bit integers keep their value", () => {
  const values = [0, 1, -1, 2 ** 32, 2 ** 40, -(2 ** 40), Number.MAX_SAFE_INTEGER, 2n ** 63n + 5n, 2n ** 64n - 1n, -(2n ** 63n)];
  for (const v of values) {
    const back = decode(encode(v));
    assert.equal(typeof back, typeof v, `type of ${v}`);
    assert.equal(back, v);
  }
  // a safe integer beyond 32 bits is written as an integer, not a float
  assert.equal(encode(2 ** 40)[0], 0xcf);
  assert.equal(encode(-(2 ** 40))[0], 0xd3);
  // a small bigint comes back as a number
  assert.equal(decode(encode(5n)), 5);
});

test("splitter finds message boundaries however the bytes are cut", () => {
  const msgs = [[0, 1, "kernel/ping", []], [2, "events/event", [{ subscription: "s1", event: { payload: "x".repeat(70000), n: 2n ** 60n } }]], [1, 7, null, { ok: true, list: [1, 2, 3] }]];
  const bytes = Buffer.concat(msgs.map((m) => Buffer.from(encode(m))));
  for (const step of [1, 3, 7, 4096, bytes.length]) {
    const s = new Splitter();
    const out: unknown[] = [];
    for (let i = 0; i < bytes.length; i += step) {
      for (const m of s.push(new Uint8Array(bytes.subarray(i, i + step)))) out.push(decode(m));
    }
    assert.deepEqual(out, msgs, `step ${step}`);
  }
});

test("splitter refuses a header that promises more than the limit", () => {
  const s = new Splitter(1024);
  // str32 claiming 1 GiB
  assert.throws(() => s.push(new Uint8Array([0xdb, 0x40, 0, 0, 0])), MessageTooLargeError);
  // array32 announcing 2^31 elements
  assert.throws(() => new Splitter(1024).push(new Uint8Array([0xdd, 0x80, 0, 0, 0])), MessageTooLargeError);
  assert.throws(() => new Splitter().push(new Uint8Array([0xc1])), ProtocolErrorError);
});
