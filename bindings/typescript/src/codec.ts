// MessagePack codec of the wire protocol, and the framing of messages on a
// byte stream. Written by hand.
//
// 64-bit integers: the daemon writes integers in their smallest encoding, so
// a value only arrives as uint64/int64 when it needs more than 32 bits. Such a
// value decodes to a number when it is a safe integer (below 2^53) and to a
// bigint beyond, so nothing is silently rounded; a bigint argument is written
// as a 64-bit integer, and so is a number that needs more than 32 bits (the
// stock encoder would write it as a float once bigints are enabled).

import { Decoder, Encoder } from "@msgpack/msgpack";
import { MessageTooLargeError, ProtocolErrorError } from "./gen/client.js";

export const DEFAULT_MAX_MESSAGE_SIZE = 16 << 20;

const decProto = Decoder.prototype as any;
const encProto = Encoder.prototype as any;
for (const [proto, name] of [
  [decProto, "readU64AsBigInt"],
  [decProto, "readI64AsBigInt"],
  [encProto, "encodeNumber"],
  [encProto, "encodeBigInt64"],
] as const) {
  if (typeof proto[name] !== "function") {
    throw new Error(`@msgpack/msgpack changed: ${name} is gone; the int64 handling in codec.ts needs updating`);
  }
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);

class WireDecoder extends Decoder {}
Object.defineProperties(WireDecoder.prototype, {
  readU64AsBigInt: {
    value(this: any) {
      const v: bigint = decProto.readU64AsBigInt.call(this);
      return v <= MAX_SAFE ? Number(v) : v;
    },
  },
  readI64AsBigInt: {
    value(this: any) {
      const v: bigint = decProto.readI64AsBigInt.call(this);
      return v <= MAX_SAFE && v >= MIN_SAFE ? Number(v) : v;
    },
  },
});

class WireEncoder extends Encoder {}
Object.defineProperty(WireEncoder.prototype, "encodeNumber", {
  value(this: any, x: number) {
    if (Number.isSafeInteger(x) && (x >= 0x100000000 || x < -0x80000000)) {
      return encProto.encodeBigInt64.call(this, BigInt(x));
    }
    return encProto.encodeNumber.call(this, x);
  },
});

const encoder = new WireEncoder({ useBigInt64: true, ignoreUndefined: true });
const decoder = new WireDecoder({ useBigInt64: true });

/** Encodes one value. */
export function encode(v: unknown): Uint8Array {
  return encoder.encode(v);
}

/** Decodes one whole message. */
export function decode(b: Uint8Array): unknown {
  return decoder.decode(b);
}

/**
 * Splits a byte stream into whole msgpack objects without decoding them,
 * never trusting a length header beyond the size limit. The scan resumes
 * where it stopped, so a large message that arrives in many chunks is walked
 * once.
 */
export class Splitter {
  private buf: Uint8Array = new Uint8Array(0);
  private start = 0; // where the current message begins in buf
  private pos = 0; // how far the current message has been walked
  private remaining = 1; // objects still to walk in the current message

  constructor(private readonly maxSize = DEFAULT_MAX_MESSAGE_SIZE) {}

  /** Adds bytes and returns every message they complete. */
  push(chunk: Uint8Array): Uint8Array[] {
    if (this.start === this.buf.length) {
      this.buf = chunk;
      this.pos -= this.start;
      this.start = 0;
    } else {
      const rest = this.buf.subarray(this.start);
      const b = new Uint8Array(rest.length + chunk.length);
      b.set(rest, 0);
      b.set(chunk, rest.length);
      this.pos -= this.start;
      this.start = 0;
      this.buf = b;
    }
    const out: Uint8Array[] = [];
    while (this.scan()) {
      out.push(this.buf.subarray(this.start, this.pos));
      this.start = this.pos;
      this.remaining = 1;
    }
    return out;
  }

  // Walks headers until the current message is complete (true) or the bytes
  // run out (false). Throws on a reserved byte or a message over the limit.
  private scan(): boolean {
    const b = this.buf;
    const end = b.length;
    if (this.start >= end) return false;
    while (this.remaining > 0) {
      let p = this.pos;
      if (p >= end) return false;
      const c = b[p];
      let head = 1;
      let size = 0;
      let children = 0;
      const need = (n: number) => p + 1 + n <= end;
      const be = (n: number) => {
        let v = 0;
        for (let i = 1; i <= n; i++) v = v * 256 + b[p + i];
        return v;
      };
      if (c <= 0x7f || c >= 0xe0 || c === 0xc0 || c === 0xc2 || c === 0xc3) {
        // fixint, nil, bool
      } else if (c >= 0x80 && c <= 0x8f) children = 2 * (c & 0x0f);
      else if (c >= 0x90 && c <= 0x9f) children = c & 0x0f;
      else if (c >= 0xa0 && c <= 0xbf) size = c & 0x1f;
      else {
        switch (c) {
          case 0xc4: case 0xd9: if (!need(1)) return false; head = 2; size = be(1); break;
          case 0xc5: case 0xda: if (!need(2)) return false; head = 3; size = be(2); break;
          case 0xc6: case 0xdb: if (!need(4)) return false; head = 5; size = be(4); break;
          case 0xc7: if (!need(1)) return false; head = 3; size = be(1); break;
          case 0xc8: if (!need(2)) return false; head = 4; size = be(2); break;
          case 0xc9: if (!need(4)) return false; head = 6; size = be(4); break;
          case 0xca: size = 4; break;
          case 0xcb: size = 8; break;
          case 0xcc: case 0xd0: size = 1; break;
          case 0xcd: case 0xd1: size = 2; break;
          case 0xce: case 0xd2: size = 4; break;
          case 0xcf: case 0xd3: size = 8; break;
          case 0xd4: size = 2; break;
          case 0xd5: size = 3; break;
          case 0xd6: size = 5; break;
          case 0xd7: size = 9; break;
          case 0xd8: size = 17; break;
          case 0xdc: if (!need(2)) return false; head = 3; children = be(2); break;
          case 0xdd: if (!need(4)) return false; head = 5; children = be(4); break;
          case 0xde: if (!need(2)) return false; head = 3; children = 2 * be(2); break;
          case 0xdf: if (!need(4)) return false; head = 5; children = 2 * be(4); break;
          default:
            throw new ProtocolErrorError(`reserved type code 0x${c.toString(16)}`);
        }
      }
      // Every announced element costs at least one byte, so a header can
      // never promise more than the limit holds.
      if (p + head + size + this.remaining + children - 1 - this.start > this.maxSize) {
        throw new MessageTooLargeError(`a message from the daemon exceeds the ${this.maxSize} byte limit`);
      }
      if (p + head + size > end) return false;
      this.pos = p + head + size;
      this.remaining += children - 1;
    }
    return true;
  }
}
