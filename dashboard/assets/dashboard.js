// bindings/typescript/node_modules/@msgpack/msgpack/dist.esm/utils/utf8.mjs
function utf8Count(str) {
  const strLength = str.length;
  let byteLength = 0;
  let pos = 0;
  while (pos < strLength) {
    let value = str.charCodeAt(pos++);
    if ((value & 4294967168) === 0) {
      byteLength++;
      continue;
    } else if ((value & 4294965248) === 0) {
      byteLength += 2;
    } else {
      if (value >= 55296 && value <= 56319) {
        if (pos < strLength) {
          const extra = str.charCodeAt(pos);
          if ((extra & 64512) === 56320) {
            ++pos;
            value = ((value & 1023) << 10) + (extra & 1023) + 65536;
          }
        }
      }
      if ((value & 4294901760) === 0) {
        byteLength += 3;
      } else {
        byteLength += 4;
      }
    }
  }
  return byteLength;
}
function utf8EncodeJs(str, output, outputOffset) {
  const strLength = str.length;
  let offset = outputOffset;
  let pos = 0;
  while (pos < strLength) {
    let value = str.charCodeAt(pos++);
    if ((value & 4294967168) === 0) {
      output[offset++] = value;
      continue;
    } else if ((value & 4294965248) === 0) {
      output[offset++] = value >> 6 & 31 | 192;
    } else {
      if (value >= 55296 && value <= 56319) {
        if (pos < strLength) {
          const extra = str.charCodeAt(pos);
          if ((extra & 64512) === 56320) {
            ++pos;
            value = ((value & 1023) << 10) + (extra & 1023) + 65536;
          }
        }
      }
      if ((value & 4294901760) === 0) {
        output[offset++] = value >> 12 & 15 | 224;
        output[offset++] = value >> 6 & 63 | 128;
      } else {
        output[offset++] = value >> 18 & 7 | 240;
        output[offset++] = value >> 12 & 63 | 128;
        output[offset++] = value >> 6 & 63 | 128;
      }
    }
    output[offset++] = value & 63 | 128;
  }
}
var sharedTextEncoder = new TextEncoder();
var TEXT_ENCODER_THRESHOLD = 50;
function utf8EncodeTE(str, output, outputOffset) {
  sharedTextEncoder.encodeInto(str, output.subarray(outputOffset));
}
function utf8Encode(str, output, outputOffset) {
  if (str.length > TEXT_ENCODER_THRESHOLD) {
    utf8EncodeTE(str, output, outputOffset);
  } else {
    utf8EncodeJs(str, output, outputOffset);
  }
}
var CHUNK_SIZE = 4096;
function utf8DecodeJs(bytes2, inputOffset, byteLength) {
  let offset = inputOffset;
  const end = offset + byteLength;
  const units = [];
  let result = "";
  while (offset < end) {
    const byte1 = bytes2[offset++];
    if ((byte1 & 128) === 0) {
      units.push(byte1);
    } else if ((byte1 & 224) === 192) {
      const byte2 = bytes2[offset++] & 63;
      units.push((byte1 & 31) << 6 | byte2);
    } else if ((byte1 & 240) === 224) {
      const byte2 = bytes2[offset++] & 63;
      const byte3 = bytes2[offset++] & 63;
      units.push((byte1 & 31) << 12 | byte2 << 6 | byte3);
    } else if ((byte1 & 248) === 240) {
      const byte2 = bytes2[offset++] & 63;
      const byte3 = bytes2[offset++] & 63;
      const byte4 = bytes2[offset++] & 63;
      let unit = (byte1 & 7) << 18 | byte2 << 12 | byte3 << 6 | byte4;
      if (unit > 65535) {
        unit -= 65536;
        units.push(unit >>> 10 & 1023 | 55296);
        unit = 56320 | unit & 1023;
      }
      units.push(unit);
    } else {
      units.push(byte1);
    }
    if (units.length >= CHUNK_SIZE) {
      result += String.fromCharCode(...units);
      units.length = 0;
    }
  }
  if (units.length > 0) {
    result += String.fromCharCode(...units);
  }
  return result;
}
var sharedTextDecoder = new TextDecoder();
var TEXT_DECODER_THRESHOLD = 200;
function utf8DecodeTD(bytes2, inputOffset, byteLength) {
  const stringBytes = bytes2.subarray(inputOffset, inputOffset + byteLength);
  return sharedTextDecoder.decode(stringBytes);
}
function utf8Decode(bytes2, inputOffset, byteLength) {
  if (byteLength > TEXT_DECODER_THRESHOLD) {
    return utf8DecodeTD(bytes2, inputOffset, byteLength);
  } else {
    return utf8DecodeJs(bytes2, inputOffset, byteLength);
  }
}

// bindings/typescript/node_modules/@msgpack/msgpack/dist.esm/ExtData.mjs
var ExtData = class {
  type;
  data;
  constructor(type, data) {
    this.type = type;
    this.data = data;
  }
};

// bindings/typescript/node_modules/@msgpack/msgpack/dist.esm/DecodeError.mjs
var DecodeError = class _DecodeError extends Error {
  constructor(message) {
    super(message);
    const proto = Object.create(_DecodeError.prototype);
    Object.setPrototypeOf(this, proto);
    Object.defineProperty(this, "name", {
      configurable: true,
      enumerable: false,
      value: _DecodeError.name
    });
  }
};

// bindings/typescript/node_modules/@msgpack/msgpack/dist.esm/utils/int.mjs
var UINT32_MAX = 4294967295;
function setUint64(view, offset, value) {
  const high = value / 4294967296;
  const low = value;
  view.setUint32(offset, high);
  view.setUint32(offset + 4, low);
}
function setInt64(view, offset, value) {
  const high = Math.floor(value / 4294967296);
  const low = value;
  view.setUint32(offset, high);
  view.setUint32(offset + 4, low);
}
function getInt64(view, offset) {
  const high = view.getInt32(offset);
  const low = view.getUint32(offset + 4);
  return high * 4294967296 + low;
}
function getUint64(view, offset) {
  const high = view.getUint32(offset);
  const low = view.getUint32(offset + 4);
  return high * 4294967296 + low;
}

// bindings/typescript/node_modules/@msgpack/msgpack/dist.esm/timestamp.mjs
var EXT_TIMESTAMP = -1;
var TIMESTAMP32_MAX_SEC = 4294967296 - 1;
var TIMESTAMP64_MAX_SEC = 17179869184 - 1;
function encodeTimeSpecToTimestamp({ sec, nsec }) {
  if (sec >= 0 && nsec >= 0 && sec <= TIMESTAMP64_MAX_SEC) {
    if (nsec === 0 && sec <= TIMESTAMP32_MAX_SEC) {
      const rv = new Uint8Array(4);
      const view = new DataView(rv.buffer);
      view.setUint32(0, sec);
      return rv;
    } else {
      const secHigh = sec / 4294967296;
      const secLow = sec & 4294967295;
      const rv = new Uint8Array(8);
      const view = new DataView(rv.buffer);
      view.setUint32(0, nsec << 2 | secHigh & 3);
      view.setUint32(4, secLow);
      return rv;
    }
  } else {
    const rv = new Uint8Array(12);
    const view = new DataView(rv.buffer);
    view.setUint32(0, nsec);
    setInt64(view, 4, sec);
    return rv;
  }
}
function encodeDateToTimeSpec(date) {
  const msec = date.getTime();
  const sec = Math.floor(msec / 1e3);
  const nsec = (msec - sec * 1e3) * 1e6;
  const nsecInSec = Math.floor(nsec / 1e9);
  return {
    sec: sec + nsecInSec,
    nsec: nsec - nsecInSec * 1e9
  };
}
function encodeTimestampExtension(object) {
  if (object instanceof Date) {
    const timeSpec = encodeDateToTimeSpec(object);
    return encodeTimeSpecToTimestamp(timeSpec);
  } else {
    return null;
  }
}
function decodeTimestampToTimeSpec(data) {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  switch (data.byteLength) {
    case 4: {
      const sec = view.getUint32(0);
      const nsec = 0;
      return { sec, nsec };
    }
    case 8: {
      const nsec30AndSecHigh2 = view.getUint32(0);
      const secLow32 = view.getUint32(4);
      const sec = (nsec30AndSecHigh2 & 3) * 4294967296 + secLow32;
      const nsec = nsec30AndSecHigh2 >>> 2;
      return { sec, nsec };
    }
    case 12: {
      const sec = getInt64(view, 4);
      const nsec = view.getUint32(0);
      return { sec, nsec };
    }
    default:
      throw new DecodeError(`Unrecognized data size for timestamp (expected 4, 8, or 12): ${data.length}`);
  }
}
function decodeTimestampExtension(data) {
  const timeSpec = decodeTimestampToTimeSpec(data);
  return new Date(timeSpec.sec * 1e3 + timeSpec.nsec / 1e6);
}
var timestampExtension = {
  type: EXT_TIMESTAMP,
  encode: encodeTimestampExtension,
  decode: decodeTimestampExtension
};

// bindings/typescript/node_modules/@msgpack/msgpack/dist.esm/ExtensionCodec.mjs
var ExtensionCodec = class _ExtensionCodec {
  static defaultCodec = new _ExtensionCodec();
  // ensures ExtensionCodecType<X> matches ExtensionCodec<X>
  // this will make type errors a lot more clear
  // eslint-disable-next-line @typescript-eslint/naming-convention
  __brand;
  // built-in extensions
  builtInEncoders = [];
  builtInDecoders = [];
  // custom extensions
  encoders = [];
  decoders = [];
  constructor() {
    this.register(timestampExtension);
  }
  register({ type, encode: encode2, decode: decode2 }) {
    if (type >= 0) {
      this.encoders[type] = encode2;
      this.decoders[type] = decode2;
    } else {
      const index = -1 - type;
      this.builtInEncoders[index] = encode2;
      this.builtInDecoders[index] = decode2;
    }
  }
  tryToEncode(object, context) {
    for (let i = 0; i < this.builtInEncoders.length; i++) {
      const encodeExt = this.builtInEncoders[i];
      if (encodeExt != null) {
        const data = encodeExt(object, context);
        if (data != null) {
          const type = -1 - i;
          return new ExtData(type, data);
        }
      }
    }
    for (let i = 0; i < this.encoders.length; i++) {
      const encodeExt = this.encoders[i];
      if (encodeExt != null) {
        const data = encodeExt(object, context);
        if (data != null) {
          const type = i;
          return new ExtData(type, data);
        }
      }
    }
    if (object instanceof ExtData) {
      return object;
    }
    return null;
  }
  decode(data, type, context) {
    const decodeExt = type < 0 ? this.builtInDecoders[-1 - type] : this.decoders[type];
    if (decodeExt) {
      return decodeExt(data, type, context);
    } else {
      return new ExtData(type, data);
    }
  }
};

// bindings/typescript/node_modules/@msgpack/msgpack/dist.esm/utils/typedArrays.mjs
function isArrayBufferLike(buffer) {
  return buffer instanceof ArrayBuffer || typeof SharedArrayBuffer !== "undefined" && buffer instanceof SharedArrayBuffer;
}
function ensureUint8Array(buffer) {
  if (buffer instanceof Uint8Array) {
    return buffer;
  } else if (ArrayBuffer.isView(buffer)) {
    return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  } else if (isArrayBufferLike(buffer)) {
    return new Uint8Array(buffer);
  } else {
    return Uint8Array.from(buffer);
  }
}

// bindings/typescript/node_modules/@msgpack/msgpack/dist.esm/Encoder.mjs
var DEFAULT_MAX_DEPTH = 100;
var DEFAULT_INITIAL_BUFFER_SIZE = 2048;
var Encoder = class _Encoder {
  extensionCodec;
  context;
  useBigInt64;
  maxDepth;
  initialBufferSize;
  sortKeys;
  forceFloat32;
  ignoreUndefined;
  forceIntegerToFloat;
  pos;
  view;
  bytes;
  entered = false;
  constructor(options) {
    this.extensionCodec = options?.extensionCodec ?? ExtensionCodec.defaultCodec;
    this.context = options?.context;
    this.useBigInt64 = options?.useBigInt64 ?? false;
    this.maxDepth = options?.maxDepth ?? DEFAULT_MAX_DEPTH;
    this.initialBufferSize = options?.initialBufferSize ?? DEFAULT_INITIAL_BUFFER_SIZE;
    this.sortKeys = options?.sortKeys ?? false;
    this.forceFloat32 = options?.forceFloat32 ?? false;
    this.ignoreUndefined = options?.ignoreUndefined ?? false;
    this.forceIntegerToFloat = options?.forceIntegerToFloat ?? false;
    this.pos = 0;
    this.view = new DataView(new ArrayBuffer(this.initialBufferSize));
    this.bytes = new Uint8Array(this.view.buffer);
  }
  clone() {
    return new _Encoder({
      extensionCodec: this.extensionCodec,
      context: this.context,
      useBigInt64: this.useBigInt64,
      maxDepth: this.maxDepth,
      initialBufferSize: this.initialBufferSize,
      sortKeys: this.sortKeys,
      forceFloat32: this.forceFloat32,
      ignoreUndefined: this.ignoreUndefined,
      forceIntegerToFloat: this.forceIntegerToFloat
    });
  }
  reinitializeState() {
    this.pos = 0;
  }
  /**
   * This is almost equivalent to {@link Encoder#encode}, but it returns an reference of the encoder's internal buffer and thus much faster than {@link Encoder#encode}.
   *
   * @returns Encodes the object and returns a shared reference the encoder's internal buffer.
   */
  encodeSharedRef(object) {
    if (this.entered) {
      const instance = this.clone();
      return instance.encodeSharedRef(object);
    }
    try {
      this.entered = true;
      this.reinitializeState();
      this.doEncode(object, 1);
      return this.bytes.subarray(0, this.pos);
    } finally {
      this.entered = false;
    }
  }
  /**
   * @returns Encodes the object and returns a copy of the encoder's internal buffer.
   */
  encode(object) {
    if (this.entered) {
      const instance = this.clone();
      return instance.encode(object);
    }
    try {
      this.entered = true;
      this.reinitializeState();
      this.doEncode(object, 1);
      return this.bytes.slice(0, this.pos);
    } finally {
      this.entered = false;
    }
  }
  doEncode(object, depth) {
    if (depth > this.maxDepth) {
      throw new Error(`Too deep objects in depth ${depth}`);
    }
    if (object == null) {
      this.encodeNil();
    } else if (typeof object === "boolean") {
      this.encodeBoolean(object);
    } else if (typeof object === "number") {
      if (!this.forceIntegerToFloat) {
        this.encodeNumber(object);
      } else {
        this.encodeNumberAsFloat(object);
      }
    } else if (typeof object === "string") {
      this.encodeString(object);
    } else if (this.useBigInt64 && typeof object === "bigint") {
      this.encodeBigInt64(object);
    } else {
      this.encodeObject(object, depth);
    }
  }
  ensureBufferSizeToWrite(sizeToWrite) {
    const requiredSize = this.pos + sizeToWrite;
    if (this.view.byteLength < requiredSize) {
      this.resizeBuffer(requiredSize * 2);
    }
  }
  resizeBuffer(newSize) {
    const newBuffer = new ArrayBuffer(newSize);
    const newBytes = new Uint8Array(newBuffer);
    const newView = new DataView(newBuffer);
    newBytes.set(this.bytes);
    this.view = newView;
    this.bytes = newBytes;
  }
  encodeNil() {
    this.writeU8(192);
  }
  encodeBoolean(object) {
    if (object === false) {
      this.writeU8(194);
    } else {
      this.writeU8(195);
    }
  }
  encodeNumber(object) {
    if (!this.forceIntegerToFloat && Number.isSafeInteger(object)) {
      if (object >= 0) {
        if (object < 128) {
          this.writeU8(object);
        } else if (object < 256) {
          this.writeU8(204);
          this.writeU8(object);
        } else if (object < 65536) {
          this.writeU8(205);
          this.writeU16(object);
        } else if (object < 4294967296) {
          this.writeU8(206);
          this.writeU32(object);
        } else if (!this.useBigInt64) {
          this.writeU8(207);
          this.writeU64(object);
        } else {
          this.encodeNumberAsFloat(object);
        }
      } else {
        if (object >= -32) {
          this.writeU8(224 | object + 32);
        } else if (object >= -128) {
          this.writeU8(208);
          this.writeI8(object);
        } else if (object >= -32768) {
          this.writeU8(209);
          this.writeI16(object);
        } else if (object >= -2147483648) {
          this.writeU8(210);
          this.writeI32(object);
        } else if (!this.useBigInt64) {
          this.writeU8(211);
          this.writeI64(object);
        } else {
          this.encodeNumberAsFloat(object);
        }
      }
    } else {
      this.encodeNumberAsFloat(object);
    }
  }
  encodeNumberAsFloat(object) {
    if (this.forceFloat32) {
      this.writeU8(202);
      this.writeF32(object);
    } else {
      this.writeU8(203);
      this.writeF64(object);
    }
  }
  encodeBigInt64(object) {
    if (object >= BigInt(0)) {
      this.writeU8(207);
      this.writeBigUint64(object);
    } else {
      this.writeU8(211);
      this.writeBigInt64(object);
    }
  }
  writeStringHeader(byteLength) {
    if (byteLength < 32) {
      this.writeU8(160 + byteLength);
    } else if (byteLength < 256) {
      this.writeU8(217);
      this.writeU8(byteLength);
    } else if (byteLength < 65536) {
      this.writeU8(218);
      this.writeU16(byteLength);
    } else if (byteLength < 4294967296) {
      this.writeU8(219);
      this.writeU32(byteLength);
    } else {
      throw new Error(`Too long string: ${byteLength} bytes in UTF-8`);
    }
  }
  encodeString(object) {
    const maxHeaderSize = 1 + 4;
    const byteLength = utf8Count(object);
    this.ensureBufferSizeToWrite(maxHeaderSize + byteLength);
    this.writeStringHeader(byteLength);
    utf8Encode(object, this.bytes, this.pos);
    this.pos += byteLength;
  }
  encodeObject(object, depth) {
    const ext = this.extensionCodec.tryToEncode(object, this.context);
    if (ext != null) {
      this.encodeExtension(ext);
    } else if (Array.isArray(object)) {
      this.encodeArray(object, depth);
    } else if (ArrayBuffer.isView(object)) {
      this.encodeBinary(object);
    } else if (typeof object === "object") {
      this.encodeMap(object, depth);
    } else {
      throw new Error(`Unrecognized object: ${Object.prototype.toString.apply(object)}`);
    }
  }
  encodeBinary(object) {
    const size = object.byteLength;
    if (size < 256) {
      this.writeU8(196);
      this.writeU8(size);
    } else if (size < 65536) {
      this.writeU8(197);
      this.writeU16(size);
    } else if (size < 4294967296) {
      this.writeU8(198);
      this.writeU32(size);
    } else {
      throw new Error(`Too large binary: ${size}`);
    }
    const bytes2 = ensureUint8Array(object);
    this.writeU8a(bytes2);
  }
  encodeArray(object, depth) {
    const size = object.length;
    if (size < 16) {
      this.writeU8(144 + size);
    } else if (size < 65536) {
      this.writeU8(220);
      this.writeU16(size);
    } else if (size < 4294967296) {
      this.writeU8(221);
      this.writeU32(size);
    } else {
      throw new Error(`Too large array: ${size}`);
    }
    for (const item of object) {
      this.doEncode(item, depth + 1);
    }
  }
  countWithoutUndefined(object, keys) {
    let count = 0;
    for (const key of keys) {
      if (object[key] !== void 0) {
        count++;
      }
    }
    return count;
  }
  encodeMap(object, depth) {
    const keys = Object.keys(object);
    if (this.sortKeys) {
      keys.sort();
    }
    const size = this.ignoreUndefined ? this.countWithoutUndefined(object, keys) : keys.length;
    if (size < 16) {
      this.writeU8(128 + size);
    } else if (size < 65536) {
      this.writeU8(222);
      this.writeU16(size);
    } else if (size < 4294967296) {
      this.writeU8(223);
      this.writeU32(size);
    } else {
      throw new Error(`Too large map object: ${size}`);
    }
    for (const key of keys) {
      const value = object[key];
      if (!(this.ignoreUndefined && value === void 0)) {
        this.encodeString(key);
        this.doEncode(value, depth + 1);
      }
    }
  }
  encodeExtension(ext) {
    if (typeof ext.data === "function") {
      const data = ext.data(this.pos + 6);
      const size2 = data.length;
      if (size2 >= 4294967296) {
        throw new Error(`Too large extension object: ${size2}`);
      }
      this.writeU8(201);
      this.writeU32(size2);
      this.writeI8(ext.type);
      this.writeU8a(data);
      return;
    }
    const size = ext.data.length;
    if (size === 1) {
      this.writeU8(212);
    } else if (size === 2) {
      this.writeU8(213);
    } else if (size === 4) {
      this.writeU8(214);
    } else if (size === 8) {
      this.writeU8(215);
    } else if (size === 16) {
      this.writeU8(216);
    } else if (size < 256) {
      this.writeU8(199);
      this.writeU8(size);
    } else if (size < 65536) {
      this.writeU8(200);
      this.writeU16(size);
    } else if (size < 4294967296) {
      this.writeU8(201);
      this.writeU32(size);
    } else {
      throw new Error(`Too large extension object: ${size}`);
    }
    this.writeI8(ext.type);
    this.writeU8a(ext.data);
  }
  writeU8(value) {
    this.ensureBufferSizeToWrite(1);
    this.view.setUint8(this.pos, value);
    this.pos++;
  }
  writeU8a(values) {
    const size = values.length;
    this.ensureBufferSizeToWrite(size);
    this.bytes.set(values, this.pos);
    this.pos += size;
  }
  writeI8(value) {
    this.ensureBufferSizeToWrite(1);
    this.view.setInt8(this.pos, value);
    this.pos++;
  }
  writeU16(value) {
    this.ensureBufferSizeToWrite(2);
    this.view.setUint16(this.pos, value);
    this.pos += 2;
  }
  writeI16(value) {
    this.ensureBufferSizeToWrite(2);
    this.view.setInt16(this.pos, value);
    this.pos += 2;
  }
  writeU32(value) {
    this.ensureBufferSizeToWrite(4);
    this.view.setUint32(this.pos, value);
    this.pos += 4;
  }
  writeI32(value) {
    this.ensureBufferSizeToWrite(4);
    this.view.setInt32(this.pos, value);
    this.pos += 4;
  }
  writeF32(value) {
    this.ensureBufferSizeToWrite(4);
    this.view.setFloat32(this.pos, value);
    this.pos += 4;
  }
  writeF64(value) {
    this.ensureBufferSizeToWrite(8);
    this.view.setFloat64(this.pos, value);
    this.pos += 8;
  }
  writeU64(value) {
    this.ensureBufferSizeToWrite(8);
    setUint64(this.view, this.pos, value);
    this.pos += 8;
  }
  writeI64(value) {
    this.ensureBufferSizeToWrite(8);
    setInt64(this.view, this.pos, value);
    this.pos += 8;
  }
  writeBigUint64(value) {
    this.ensureBufferSizeToWrite(8);
    this.view.setBigUint64(this.pos, value);
    this.pos += 8;
  }
  writeBigInt64(value) {
    this.ensureBufferSizeToWrite(8);
    this.view.setBigInt64(this.pos, value);
    this.pos += 8;
  }
};

// bindings/typescript/node_modules/@msgpack/msgpack/dist.esm/utils/prettyByte.mjs
function prettyByte(byte) {
  return `${byte < 0 ? "-" : ""}0x${Math.abs(byte).toString(16).padStart(2, "0")}`;
}

// bindings/typescript/node_modules/@msgpack/msgpack/dist.esm/CachedKeyDecoder.mjs
var DEFAULT_MAX_KEY_LENGTH = 16;
var DEFAULT_MAX_LENGTH_PER_KEY = 16;
var CachedKeyDecoder = class {
  hit = 0;
  miss = 0;
  caches;
  maxKeyLength;
  maxLengthPerKey;
  constructor(maxKeyLength = DEFAULT_MAX_KEY_LENGTH, maxLengthPerKey = DEFAULT_MAX_LENGTH_PER_KEY) {
    this.maxKeyLength = maxKeyLength;
    this.maxLengthPerKey = maxLengthPerKey;
    this.caches = [];
    for (let i = 0; i < this.maxKeyLength; i++) {
      this.caches.push([]);
    }
  }
  canBeCached(byteLength) {
    return byteLength > 0 && byteLength <= this.maxKeyLength;
  }
  find(bytes2, inputOffset, byteLength) {
    const records = this.caches[byteLength - 1];
    FIND_CHUNK: for (const record of records) {
      const recordBytes = record.bytes;
      for (let j = 0; j < byteLength; j++) {
        if (recordBytes[j] !== bytes2[inputOffset + j]) {
          continue FIND_CHUNK;
        }
      }
      return record.str;
    }
    return null;
  }
  store(bytes2, value) {
    const records = this.caches[bytes2.length - 1];
    const record = { bytes: bytes2, str: value };
    if (records.length >= this.maxLengthPerKey) {
      records[Math.random() * records.length | 0] = record;
    } else {
      records.push(record);
    }
  }
  decode(bytes2, inputOffset, byteLength) {
    const cachedValue = this.find(bytes2, inputOffset, byteLength);
    if (cachedValue != null) {
      this.hit++;
      return cachedValue;
    }
    this.miss++;
    const str = utf8DecodeJs(bytes2, inputOffset, byteLength);
    const slicedCopyOfBytes = Uint8Array.prototype.slice.call(bytes2, inputOffset, inputOffset + byteLength);
    this.store(slicedCopyOfBytes, str);
    return str;
  }
};

// bindings/typescript/node_modules/@msgpack/msgpack/dist.esm/Decoder.mjs
var STATE_ARRAY = "array";
var STATE_MAP_KEY = "map_key";
var STATE_MAP_VALUE = "map_value";
var mapKeyConverter = (key) => {
  if (typeof key === "string" || typeof key === "number") {
    return key;
  }
  throw new DecodeError("The type of key must be string or number but " + typeof key);
};
var StackPool = class {
  stack = [];
  stackHeadPosition = -1;
  get length() {
    return this.stackHeadPosition + 1;
  }
  top() {
    return this.stack[this.stackHeadPosition];
  }
  pushArrayState(size) {
    const state = this.getUninitializedStateFromPool();
    state.type = STATE_ARRAY;
    state.position = 0;
    state.size = size;
    state.array = new Array(size);
  }
  pushMapState(size) {
    const state = this.getUninitializedStateFromPool();
    state.type = STATE_MAP_KEY;
    state.readCount = 0;
    state.size = size;
    state.map = {};
  }
  getUninitializedStateFromPool() {
    this.stackHeadPosition++;
    if (this.stackHeadPosition === this.stack.length) {
      const partialState = {
        type: void 0,
        size: 0,
        array: void 0,
        position: 0,
        readCount: 0,
        map: void 0,
        key: null
      };
      this.stack.push(partialState);
    }
    return this.stack[this.stackHeadPosition];
  }
  release(state) {
    const topStackState = this.stack[this.stackHeadPosition];
    if (topStackState !== state) {
      throw new Error("Invalid stack state. Released state is not on top of the stack.");
    }
    if (state.type === STATE_ARRAY) {
      const partialState = state;
      partialState.size = 0;
      partialState.array = void 0;
      partialState.position = 0;
      partialState.type = void 0;
    }
    if (state.type === STATE_MAP_KEY || state.type === STATE_MAP_VALUE) {
      const partialState = state;
      partialState.size = 0;
      partialState.map = void 0;
      partialState.readCount = 0;
      partialState.type = void 0;
    }
    this.stackHeadPosition--;
  }
  reset() {
    this.stack.length = 0;
    this.stackHeadPosition = -1;
  }
};
var HEAD_BYTE_REQUIRED = -1;
var EMPTY_VIEW = new DataView(new ArrayBuffer(0));
var EMPTY_BYTES = new Uint8Array(EMPTY_VIEW.buffer);
try {
  EMPTY_VIEW.getInt8(0);
} catch (e) {
  if (!(e instanceof RangeError)) {
    throw new Error("This module is not supported in the current JavaScript engine because DataView does not throw RangeError on out-of-bounds access");
  }
}
var MORE_DATA = new RangeError("Insufficient data");
var sharedCachedKeyDecoder = new CachedKeyDecoder();
var Decoder = class _Decoder {
  extensionCodec;
  context;
  useBigInt64;
  rawStrings;
  maxStrLength;
  maxBinLength;
  maxArrayLength;
  maxMapLength;
  maxExtLength;
  keyDecoder;
  mapKeyConverter;
  totalPos = 0;
  pos = 0;
  view = EMPTY_VIEW;
  bytes = EMPTY_BYTES;
  headByte = HEAD_BYTE_REQUIRED;
  stack = new StackPool();
  entered = false;
  constructor(options) {
    this.extensionCodec = options?.extensionCodec ?? ExtensionCodec.defaultCodec;
    this.context = options?.context;
    this.useBigInt64 = options?.useBigInt64 ?? false;
    this.rawStrings = options?.rawStrings ?? false;
    this.maxStrLength = options?.maxStrLength ?? UINT32_MAX;
    this.maxBinLength = options?.maxBinLength ?? UINT32_MAX;
    this.maxArrayLength = options?.maxArrayLength ?? UINT32_MAX;
    this.maxMapLength = options?.maxMapLength ?? UINT32_MAX;
    this.maxExtLength = options?.maxExtLength ?? UINT32_MAX;
    this.keyDecoder = options?.keyDecoder !== void 0 ? options.keyDecoder : sharedCachedKeyDecoder;
    this.mapKeyConverter = options?.mapKeyConverter ?? mapKeyConverter;
  }
  clone() {
    return new _Decoder({
      extensionCodec: this.extensionCodec,
      context: this.context,
      useBigInt64: this.useBigInt64,
      rawStrings: this.rawStrings,
      maxStrLength: this.maxStrLength,
      maxBinLength: this.maxBinLength,
      maxArrayLength: this.maxArrayLength,
      maxMapLength: this.maxMapLength,
      maxExtLength: this.maxExtLength,
      keyDecoder: this.keyDecoder
    });
  }
  reinitializeState() {
    this.totalPos = 0;
    this.headByte = HEAD_BYTE_REQUIRED;
    this.stack.reset();
  }
  setBuffer(buffer) {
    const bytes2 = ensureUint8Array(buffer);
    this.bytes = bytes2;
    this.view = new DataView(bytes2.buffer, bytes2.byteOffset, bytes2.byteLength);
    this.pos = 0;
  }
  appendBuffer(buffer) {
    if (this.headByte === HEAD_BYTE_REQUIRED && !this.hasRemaining(1)) {
      this.setBuffer(buffer);
    } else {
      const remainingData = this.bytes.subarray(this.pos);
      const newData = ensureUint8Array(buffer);
      const newBuffer = new Uint8Array(remainingData.length + newData.length);
      newBuffer.set(remainingData);
      newBuffer.set(newData, remainingData.length);
      this.setBuffer(newBuffer);
    }
  }
  hasRemaining(size) {
    return this.view.byteLength - this.pos >= size;
  }
  createExtraByteError(posToShow) {
    const { view, pos } = this;
    return new RangeError(`Extra ${view.byteLength - pos} of ${view.byteLength} byte(s) found at buffer[${posToShow}]`);
  }
  /**
   * @throws {@link DecodeError}
   * @throws {@link RangeError}
   */
  decode(buffer) {
    if (this.entered) {
      const instance = this.clone();
      return instance.decode(buffer);
    }
    try {
      this.entered = true;
      this.reinitializeState();
      this.setBuffer(buffer);
      const object = this.doDecodeSync();
      if (this.hasRemaining(1)) {
        throw this.createExtraByteError(this.pos);
      }
      return object;
    } finally {
      this.entered = false;
    }
  }
  *decodeMulti(buffer) {
    if (this.entered) {
      const instance = this.clone();
      yield* instance.decodeMulti(buffer);
      return;
    }
    try {
      this.entered = true;
      this.reinitializeState();
      this.setBuffer(buffer);
      while (this.hasRemaining(1)) {
        yield this.doDecodeSync();
      }
    } finally {
      this.entered = false;
    }
  }
  async decodeAsync(stream) {
    if (this.entered) {
      const instance = this.clone();
      return instance.decodeAsync(stream);
    }
    try {
      this.entered = true;
      let decoded = false;
      let object;
      for await (const buffer of stream) {
        if (decoded) {
          this.entered = false;
          throw this.createExtraByteError(this.totalPos);
        }
        this.appendBuffer(buffer);
        try {
          object = this.doDecodeSync();
          decoded = true;
        } catch (e) {
          if (!(e instanceof RangeError)) {
            throw e;
          }
        }
        this.totalPos += this.pos;
      }
      if (decoded) {
        if (this.hasRemaining(1)) {
          throw this.createExtraByteError(this.totalPos);
        }
        return object;
      }
      const { headByte, pos, totalPos } = this;
      throw new RangeError(`Insufficient data in parsing ${prettyByte(headByte)} at ${totalPos} (${pos} in the current buffer)`);
    } finally {
      this.entered = false;
    }
  }
  decodeArrayStream(stream) {
    return this.decodeMultiAsync(stream, true);
  }
  decodeStream(stream) {
    return this.decodeMultiAsync(stream, false);
  }
  async *decodeMultiAsync(stream, isArray) {
    if (this.entered) {
      const instance = this.clone();
      yield* instance.decodeMultiAsync(stream, isArray);
      return;
    }
    try {
      this.entered = true;
      let isArrayHeaderRequired = isArray;
      let arrayItemsLeft = -1;
      for await (const buffer of stream) {
        if (isArray && arrayItemsLeft === 0) {
          throw this.createExtraByteError(this.totalPos);
        }
        this.appendBuffer(buffer);
        if (isArrayHeaderRequired) {
          arrayItemsLeft = this.readArraySize();
          isArrayHeaderRequired = false;
          this.complete();
        }
        try {
          while (true) {
            yield this.doDecodeSync();
            if (--arrayItemsLeft === 0) {
              break;
            }
          }
        } catch (e) {
          if (!(e instanceof RangeError)) {
            throw e;
          }
        }
        this.totalPos += this.pos;
      }
    } finally {
      this.entered = false;
    }
  }
  doDecodeSync() {
    DECODE: while (true) {
      const headByte = this.readHeadByte();
      let object;
      if (headByte >= 224) {
        object = headByte - 256;
      } else if (headByte < 192) {
        if (headByte < 128) {
          object = headByte;
        } else if (headByte < 144) {
          const size = headByte - 128;
          if (size !== 0) {
            this.pushMapState(size);
            this.complete();
            continue DECODE;
          } else {
            object = {};
          }
        } else if (headByte < 160) {
          const size = headByte - 144;
          if (size !== 0) {
            this.pushArrayState(size);
            this.complete();
            continue DECODE;
          } else {
            object = [];
          }
        } else {
          const byteLength = headByte - 160;
          object = this.decodeString(byteLength, 0);
        }
      } else if (headByte === 192) {
        object = null;
      } else if (headByte === 194) {
        object = false;
      } else if (headByte === 195) {
        object = true;
      } else if (headByte === 202) {
        object = this.readF32();
      } else if (headByte === 203) {
        object = this.readF64();
      } else if (headByte === 204) {
        object = this.readU8();
      } else if (headByte === 205) {
        object = this.readU16();
      } else if (headByte === 206) {
        object = this.readU32();
      } else if (headByte === 207) {
        if (this.useBigInt64) {
          object = this.readU64AsBigInt();
        } else {
          object = this.readU64();
        }
      } else if (headByte === 208) {
        object = this.readI8();
      } else if (headByte === 209) {
        object = this.readI16();
      } else if (headByte === 210) {
        object = this.readI32();
      } else if (headByte === 211) {
        if (this.useBigInt64) {
          object = this.readI64AsBigInt();
        } else {
          object = this.readI64();
        }
      } else if (headByte === 217) {
        const byteLength = this.lookU8();
        object = this.decodeString(byteLength, 1);
      } else if (headByte === 218) {
        const byteLength = this.lookU16();
        object = this.decodeString(byteLength, 2);
      } else if (headByte === 219) {
        const byteLength = this.lookU32();
        object = this.decodeString(byteLength, 4);
      } else if (headByte === 220) {
        const size = this.readU16();
        if (size !== 0) {
          this.pushArrayState(size);
          this.complete();
          continue DECODE;
        } else {
          object = [];
        }
      } else if (headByte === 221) {
        const size = this.readU32();
        if (size !== 0) {
          this.pushArrayState(size);
          this.complete();
          continue DECODE;
        } else {
          object = [];
        }
      } else if (headByte === 222) {
        const size = this.readU16();
        if (size !== 0) {
          this.pushMapState(size);
          this.complete();
          continue DECODE;
        } else {
          object = {};
        }
      } else if (headByte === 223) {
        const size = this.readU32();
        if (size !== 0) {
          this.pushMapState(size);
          this.complete();
          continue DECODE;
        } else {
          object = {};
        }
      } else if (headByte === 196) {
        const size = this.lookU8();
        object = this.decodeBinary(size, 1);
      } else if (headByte === 197) {
        const size = this.lookU16();
        object = this.decodeBinary(size, 2);
      } else if (headByte === 198) {
        const size = this.lookU32();
        object = this.decodeBinary(size, 4);
      } else if (headByte === 212) {
        object = this.decodeExtension(1, 0);
      } else if (headByte === 213) {
        object = this.decodeExtension(2, 0);
      } else if (headByte === 214) {
        object = this.decodeExtension(4, 0);
      } else if (headByte === 215) {
        object = this.decodeExtension(8, 0);
      } else if (headByte === 216) {
        object = this.decodeExtension(16, 0);
      } else if (headByte === 199) {
        const size = this.lookU8();
        object = this.decodeExtension(size, 1);
      } else if (headByte === 200) {
        const size = this.lookU16();
        object = this.decodeExtension(size, 2);
      } else if (headByte === 201) {
        const size = this.lookU32();
        object = this.decodeExtension(size, 4);
      } else {
        throw new DecodeError(`Unrecognized type byte: ${prettyByte(headByte)}`);
      }
      this.complete();
      const stack = this.stack;
      while (stack.length > 0) {
        const state = stack.top();
        if (state.type === STATE_ARRAY) {
          state.array[state.position] = object;
          state.position++;
          if (state.position === state.size) {
            object = state.array;
            stack.release(state);
          } else {
            continue DECODE;
          }
        } else if (state.type === STATE_MAP_KEY) {
          if (object === "__proto__") {
            throw new DecodeError("The key __proto__ is not allowed");
          }
          state.key = this.mapKeyConverter(object);
          state.type = STATE_MAP_VALUE;
          continue DECODE;
        } else {
          state.map[state.key] = object;
          state.readCount++;
          if (state.readCount === state.size) {
            object = state.map;
            stack.release(state);
          } else {
            state.key = null;
            state.type = STATE_MAP_KEY;
            continue DECODE;
          }
        }
      }
      return object;
    }
  }
  readHeadByte() {
    if (this.headByte === HEAD_BYTE_REQUIRED) {
      this.headByte = this.readU8();
    }
    return this.headByte;
  }
  complete() {
    this.headByte = HEAD_BYTE_REQUIRED;
  }
  readArraySize() {
    const headByte = this.readHeadByte();
    switch (headByte) {
      case 220:
        return this.readU16();
      case 221:
        return this.readU32();
      default: {
        if (headByte < 160) {
          return headByte - 144;
        } else {
          throw new DecodeError(`Unrecognized array type byte: ${prettyByte(headByte)}`);
        }
      }
    }
  }
  pushMapState(size) {
    if (size > this.maxMapLength) {
      throw new DecodeError(`Max length exceeded: map length (${size}) > maxMapLengthLength (${this.maxMapLength})`);
    }
    this.stack.pushMapState(size);
  }
  pushArrayState(size) {
    if (size > this.maxArrayLength) {
      throw new DecodeError(`Max length exceeded: array length (${size}) > maxArrayLength (${this.maxArrayLength})`);
    }
    this.stack.pushArrayState(size);
  }
  decodeString(byteLength, headerOffset) {
    if (!this.rawStrings || this.stateIsMapKey()) {
      return this.decodeUtf8String(byteLength, headerOffset);
    }
    return this.decodeBinary(byteLength, headerOffset);
  }
  /**
   * @throws {@link RangeError}
   */
  decodeUtf8String(byteLength, headerOffset) {
    if (byteLength > this.maxStrLength) {
      throw new DecodeError(`Max length exceeded: UTF-8 byte length (${byteLength}) > maxStrLength (${this.maxStrLength})`);
    }
    if (this.bytes.byteLength < this.pos + headerOffset + byteLength) {
      throw MORE_DATA;
    }
    const offset = this.pos + headerOffset;
    let object;
    if (this.stateIsMapKey() && this.keyDecoder?.canBeCached(byteLength)) {
      object = this.keyDecoder.decode(this.bytes, offset, byteLength);
    } else {
      object = utf8Decode(this.bytes, offset, byteLength);
    }
    this.pos += headerOffset + byteLength;
    return object;
  }
  stateIsMapKey() {
    if (this.stack.length > 0) {
      const state = this.stack.top();
      return state.type === STATE_MAP_KEY;
    }
    return false;
  }
  /**
   * @throws {@link RangeError}
   */
  decodeBinary(byteLength, headOffset) {
    if (byteLength > this.maxBinLength) {
      throw new DecodeError(`Max length exceeded: bin length (${byteLength}) > maxBinLength (${this.maxBinLength})`);
    }
    if (!this.hasRemaining(byteLength + headOffset)) {
      throw MORE_DATA;
    }
    const offset = this.pos + headOffset;
    const object = this.bytes.subarray(offset, offset + byteLength);
    this.pos += headOffset + byteLength;
    return object;
  }
  decodeExtension(size, headOffset) {
    if (size > this.maxExtLength) {
      throw new DecodeError(`Max length exceeded: ext length (${size}) > maxExtLength (${this.maxExtLength})`);
    }
    const extType = this.view.getInt8(this.pos + headOffset);
    const data = this.decodeBinary(
      size,
      headOffset + 1
      /* extType */
    );
    return this.extensionCodec.decode(data, extType, this.context);
  }
  lookU8() {
    return this.view.getUint8(this.pos);
  }
  lookU16() {
    return this.view.getUint16(this.pos);
  }
  lookU32() {
    return this.view.getUint32(this.pos);
  }
  readU8() {
    const value = this.view.getUint8(this.pos);
    this.pos++;
    return value;
  }
  readI8() {
    const value = this.view.getInt8(this.pos);
    this.pos++;
    return value;
  }
  readU16() {
    const value = this.view.getUint16(this.pos);
    this.pos += 2;
    return value;
  }
  readI16() {
    const value = this.view.getInt16(this.pos);
    this.pos += 2;
    return value;
  }
  readU32() {
    const value = this.view.getUint32(this.pos);
    this.pos += 4;
    return value;
  }
  readI32() {
    const value = this.view.getInt32(this.pos);
    this.pos += 4;
    return value;
  }
  readU64() {
    const value = getUint64(this.view, this.pos);
    this.pos += 8;
    return value;
  }
  readI64() {
    const value = getInt64(this.view, this.pos);
    this.pos += 8;
    return value;
  }
  readU64AsBigInt() {
    const value = this.view.getBigUint64(this.pos);
    this.pos += 8;
    return value;
  }
  readI64AsBigInt() {
    const value = this.view.getBigInt64(this.pos);
    this.pos += 8;
    return value;
  }
  readF32() {
    const value = this.view.getFloat32(this.pos);
    this.pos += 4;
    return value;
  }
  readF64() {
    const value = this.view.getFloat64(this.pos);
    this.pos += 8;
    return value;
  }
};

// bindings/typescript/src/gen/client.ts
var ContinuumError = class extends Error {
  code;
  detail;
  data;
  constructor(code2, message, data) {
    super(`${code2}: ${message}`);
    this.code = code2;
    this.detail = message;
    this.data = data;
    this.name = new.target.name;
  }
};
var InvalidArgumentError = class extends ContinuumError {
  static code = "invalid_argument";
  constructor(message, data) {
    super("invalid_argument", message, data);
  }
};
var NotFoundError = class extends ContinuumError {
  static code = "not_found";
  constructor(message, data) {
    super("not_found", message, data);
  }
};
var AlreadyExistsError = class extends ContinuumError {
  static code = "already_exists";
  constructor(message, data) {
    super("already_exists", message, data);
  }
};
var ConflictingRedeclarationError = class extends ContinuumError {
  static code = "conflicting_redeclaration";
  constructor(message, data) {
    super("conflicting_redeclaration", message, data);
  }
};
var SchemaMismatchError = class extends ContinuumError {
  static code = "schema_mismatch";
  constructor(message, data) {
    super("schema_mismatch", message, data);
  }
};
var UndeclaredClassError = class extends ContinuumError {
  static code = "undeclared_class";
  constructor(message, data) {
    super("undeclared_class", message, data);
  }
};
var NotBroadcastError = class extends ContinuumError {
  static code = "not_broadcast";
  constructor(message, data) {
    super("not_broadcast", message, data);
  }
};
var MissingPayloadFieldError = class extends ContinuumError {
  static code = "missing_payload_field";
  constructor(message, data) {
    super("missing_payload_field", message, data);
  }
};
var UnknownMethodError = class extends ContinuumError {
  static code = "unknown_method";
  constructor(message, data) {
    super("unknown_method", message, data);
  }
};
var PermissionDeniedError = class extends ContinuumError {
  static code = "permission_denied";
  constructor(message, data) {
    super("permission_denied", message, data);
  }
};
var UnauthenticatedError = class extends ContinuumError {
  static code = "unauthenticated";
  constructor(message, data) {
    super("unauthenticated", message, data);
  }
};
var DeadlineExceededError = class extends ContinuumError {
  static code = "deadline_exceeded";
  constructor(message, data) {
    super("deadline_exceeded", message, data);
  }
};
var CancelledError = class extends ContinuumError {
  static code = "cancelled";
  constructor(message, data) {
    super("cancelled", message, data);
  }
};
var UnavailableError = class extends ContinuumError {
  static code = "unavailable";
  constructor(message, data) {
    super("unavailable", message, data);
  }
};
var ResourceExhaustedError = class extends ContinuumError {
  static code = "resource_exhausted";
  constructor(message, data) {
    super("resource_exhausted", message, data);
  }
};
var MessageTooLargeError = class extends ContinuumError {
  static code = "message_too_large";
  constructor(message, data) {
    super("message_too_large", message, data);
  }
};
var ProtocolErrorError = class extends ContinuumError {
  static code = "protocol_error";
  constructor(message, data) {
    super("protocol_error", message, data);
  }
};
var NoMatchingPeerError = class extends ContinuumError {
  static code = "no_matching_peer";
  constructor(message, data) {
    super("no_matching_peer", message, data);
  }
};
var PeerUnreachableError = class extends ContinuumError {
  static code = "peer_unreachable";
  constructor(message, data) {
    super("peer_unreachable", message, data);
  }
};
var NoAcceptingPeerError = class extends ContinuumError {
  static code = "no_accepting_peer";
  constructor(message, data) {
    super("no_accepting_peer", message, data);
  }
};
var GpuUnavailableError = class extends ContinuumError {
  static code = "gpu_unavailable";
  constructor(message, data) {
    super("gpu_unavailable", message, data);
  }
};
var InternalError = class extends ContinuumError {
  static code = "internal";
  constructor(message, data) {
    super("internal", message, data);
  }
};
var ERRORS = {
  invalid_argument: InvalidArgumentError,
  not_found: NotFoundError,
  already_exists: AlreadyExistsError,
  conflicting_redeclaration: ConflictingRedeclarationError,
  schema_mismatch: SchemaMismatchError,
  undeclared_class: UndeclaredClassError,
  not_broadcast: NotBroadcastError,
  missing_payload_field: MissingPayloadFieldError,
  unknown_method: UnknownMethodError,
  permission_denied: PermissionDeniedError,
  unauthenticated: UnauthenticatedError,
  deadline_exceeded: DeadlineExceededError,
  cancelled: CancelledError,
  unavailable: UnavailableError,
  resource_exhausted: ResourceExhaustedError,
  message_too_large: MessageTooLargeError,
  protocol_error: ProtocolErrorError,
  no_matching_peer: NoMatchingPeerError,
  peer_unreachable: PeerUnreachableError,
  no_accepting_peer: NoAcceptingPeerError,
  gpu_unavailable: GpuUnavailableError,
  internal: InternalError
};
function errorFromWire(e) {
  if (e === null || typeof e !== "object") return new ContinuumError("internal", String(e));
  const code2 = typeof e.code === "string" ? e.code : "internal";
  const message = typeof e.message === "string" ? e.message : "";
  const cls = ERRORS[code2];
  return cls ? new cls(message, e.data) : new ContinuumError(code2, message, e.data);
}
var KernelMethods = class {
  constructor(core) {
    this.core = core;
  }
  core;
  /** Describe the daemon and every method, with params and result, for clients and generators. */
  info(params = {}) {
    return this.core.call("kernel/info", params);
  }
  /** Answer at once; for health checks and latency measurement. */
  ping(params = {}) {
    return this.core.call("kernel/ping", params);
  }
  /** The daemon's counters: connections, calls by method and code with latency, events per class, subscriber lag, log commits, inference tokens and grid counters (docs/METRICS.md). */
  metrics(params = {}) {
    return this.core.call("kernel/metrics", params);
  }
};
var EventsMethods = class {
  constructor(core) {
    this.core = core;
  }
  core;
  /** Declare an event class; idempotent when the wire contract matches, conflicting_redeclaration otherwise. Returns the resolved config. */
  declareClass(params) {
    return this.core.call("events/declare-class", params);
  }
  /** Return a class's config, or nil when undeclared. */
  getClass(params) {
    return this.core.call("events/get-class", params);
  }
  /** List every declared class, sorted by name. */
  async listClasses(params = {}) {
    return await this.core.call("events/list-classes", params) ?? [];
  }
  /** Resolve the channel an event of a broadcast class would go to. */
  resolveChannel(params) {
    return this.core.call("events/resolve-channel", params);
  }
  /** Emit an event: delivered to matching subscribers; broadcast classes are logged first and the reply comes once on disk. */
  emit(params) {
    return this.core.call("events/emit", params);
  }
  /** Subscribe to classes matching a pattern; events arrive as events/event notifications. */
  subscribe(params) {
    return this.core.subscribe(params);
  }
  /** End a subscription. */
  async unsubscribe(params) {
    await this.core.call("events/unsubscribe", params);
  }
  /** Advance a durable cursor. */
  async ack(params) {
    await this.core.call("events/ack", params);
  }
  /** Page a channel's transcript in (lamport, id) order. */
  replay(params) {
    return this.core.call("events/replay", params);
  }
};
var LogMethods = class {
  constructor(core) {
    this.core = core;
  }
  core;
  /** Describe the airc log: head, clock, epoch, and per-channel counts and sizes. */
  stats(params = {}) {
    return this.core.call("log/stats", params);
  }
};
var CommandsMethods = class {
  constructor(core) {
    this.core = core;
  }
  core;
  /** Run a command where its scope says: in the kernel, in the client that registered it, or on a peer. */
  execute(params) {
    return this.core.call("commands/execute", params);
  }
  /** Provide a command from this client; the kernel sends it commands/handle requests. It goes away with the connection. */
  async register(params) {
    await this.core.call("commands/register", params);
  }
  /** Stop providing a command this client registered. */
  async unregister(params) {
    await this.core.call("commands/unregister", params);
  }
  /** List every command and where it runs. */
  async list(params = {}) {
    return await this.core.call("commands/list", params) ?? [];
  }
  /**
   * Provide a command from this client: registers it (commands/register) and
   * answers each commands/handle with handler's result or thrown error. The
   * registration is renewed after a reconnect; close() the Provision to stop.
   */
  provide(name, handler, opts = {}) {
    return this.core.provide(name, handler, opts);
  }
};
var InferenceMethods = class {
  constructor(core) {
    this.core = core;
  }
  core;
  /** Validate and load a GGUF model under a name; progress goes out as inference:load-progress events. */
  load(params) {
    return this.core.call("inference/load", params);
  }
  /** Unload a model once its running generations finish; queued ones fail with unavailable. */
  async unload(params) {
    await this.core.call("inference/unload", params);
  }
  /** List the loaded models. */
  async models(params = {}) {
    return await this.core.call("inference/models", params) ?? [];
  }
  /** Generate text from a prompt or messages; with stream, each token is also an inference:tokens event. Greedy at temperature 0. */
  generate(params) {
    return this.core.call("inference/generate", params);
  }
};
var GridMethods = class {
  constructor(core) {
    this.core = core;
  }
  core;
  /** Issue a signed, expiring, one-off invite token for a circle; the joiner redeems it with grid/join. */
  invite(params) {
    return this.core.call("grid/invite", params);
  }
  /** Redeem an invite token: link to the inviter; both sides then trust each other in the token's circle. */
  join(params) {
    return this.core.call("grid/join", params);
  }
  /** Trust a peer in a circle (operator only; no transitive trust) and keep a link to it at its addresses. */
  trust(params) {
    return this.core.call("grid/trust", params);
  }
  /** Stop trusting a peer: its live link closes at once and it is refused from then on. */
  untrust(params) {
    return this.core.call("grid/untrust", params);
  }
  /** List the trusted peers with their link state, round trip and when last seen. */
  peers(params = {}) {
    return this.core.call("grid/peers", params);
  }
  /** This install on the grid: peer id, QUIC addresses, epoch, per-channel origin vectors and counters. */
  status(params = {}) {
    return this.core.call("grid/status", params);
  }
  /** The capability index: which live peers offer what, with terms, load and circle. */
  routes(params = {}) {
    return this.core.call("grid/routes", params);
  }
  /** Read the policy file again, validate it and run its tests; swap it in atomically or keep the old one and say why. */
  policyReload(params = {}) {
    return this.core.call("grid/policy-reload", params);
  }
};
var AlloyMethods = class {
  constructor(core) {
    this.core = core;
  }
  core;
  /** Verify an alloy offline: signatures, links, hashes, the artifacts given, expected configs and its proof contract; returns the verdict signed by this install and stores the alloy when its chain holds. */
  verify(params) {
    return this.core.call("alloy/verify", params);
  }
  /** Return a stored alloy by its hash (or a unique prefix). */
  get(params) {
    return this.core.call("alloy/get", params);
  }
  /** List stored alloys, newest first. */
  async list(params = {}) {
    return await this.core.call("alloy/list", params) ?? [];
  }
};
var ContractMethods = class {
  constructor(core) {
    this.core = core;
  }
  core;
  /** Propose a contract for a command: peers whose offers match bid, the best bid by the strategy is accepted, the executor delivers a signed receipt, this install verifies it and pays or disputes; each step a signed contract:* event. */
  propose(params) {
    return this.core.call("contract/propose", params);
  }
  /** A contract's chain as folded from the log on this install: who, when, amounts, alloy hashes, verdict, and refused events with reasons. */
  get(params) {
    return this.core.call("contract/get", params);
  }
  /** List the contracts in the log (optionally in one state) and this install's reservations. */
  list(params = {}) {
    return this.core.call("contract/list", params);
  }
};
var ChatMethods = class {
  constructor(core) {
    this.core = core;
  }
  core;
  /** Post a message to a room as the calling client: a chat:posted event on the room's channel, answered once it is on disk. */
  send(params) {
    return this.core.call("chat/send", params);
  }
  /** Page a room's transcript back from the newest message, through the log's replay; next is nil at the room's start. */
  history(params) {
    return this.core.call("chat/history", params);
  }
};
var PersonaMethods = class {
  constructor(core) {
    this.core = core;
  }
  core;
  /** Create a persona with an Ed25519 identity of its own; it starts reading its rooms from now and answers what passes its gates. */
  create(params) {
    return this.core.call("persona/create", params);
  }
  /** List the personas, sorted by name. */
  async list(params = {}) {
    return await this.core.call("persona/list", params) ?? [];
  }
  /** Return one persona by id or name. */
  get(params) {
    return this.core.call("persona/get", params);
  }
  /** Change a persona's name, role, model, prompt, rooms or params; its loop picks them up at the next message. */
  update(params) {
    return this.core.call("persona/update", params);
  }
  /** Delete a persona: its loop stops, its cursors and its key are removed; what it posted stays in the log. */
  async delete(params) {
    await this.core.call("persona/delete", params);
  }
  /** Each persona's loop: state, queue depth, answered and skipped messages, last error and circuit breaker. */
  async status(params = {}) {
    return await this.core.call("persona/status", params) ?? [];
  }
};
var Methods = class {
  kernel;
  events;
  log;
  commands;
  inference;
  grid;
  alloy;
  contract;
  chat;
  persona;
  constructor(core) {
    this.kernel = new KernelMethods(core);
    this.events = new EventsMethods(core);
    this.log = new LogMethods(core);
    this.commands = new CommandsMethods(core);
    this.inference = new InferenceMethods(core);
    this.grid = new GridMethods(core);
    this.alloy = new AlloyMethods(core);
    this.contract = new ContractMethods(core);
    this.chat = new ChatMethods(core);
    this.persona = new PersonaMethods(core);
  }
};

// bindings/typescript/src/codec.ts
var DEFAULT_MAX_MESSAGE_SIZE = 16 << 20;
var decProto = Decoder.prototype;
var encProto = Encoder.prototype;
for (const [proto, name] of [
  [decProto, "readU64AsBigInt"],
  [decProto, "readI64AsBigInt"],
  [encProto, "encodeNumber"],
  [encProto, "encodeBigInt64"]
]) {
  if (typeof proto[name] !== "function") {
    throw new Error(`@msgpack/msgpack changed: ${name} is gone; the int64 handling in codec.ts needs updating`);
  }
}
var MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
var MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);
var WireDecoder = class extends Decoder {
};
Object.defineProperties(WireDecoder.prototype, {
  readU64AsBigInt: {
    value() {
      const v = decProto.readU64AsBigInt.call(this);
      return v <= MAX_SAFE ? Number(v) : v;
    }
  },
  readI64AsBigInt: {
    value() {
      const v = decProto.readI64AsBigInt.call(this);
      return v <= MAX_SAFE && v >= MIN_SAFE ? Number(v) : v;
    }
  }
});
var WireEncoder = class extends Encoder {
};
Object.defineProperty(WireEncoder.prototype, "encodeNumber", {
  value(x) {
    if (Number.isSafeInteger(x) && (x >= 4294967296 || x < -2147483648)) {
      return encProto.encodeBigInt64.call(this, BigInt(x));
    }
    return encProto.encodeNumber.call(this, x);
  }
});
var encoder = new WireEncoder({ useBigInt64: true, ignoreUndefined: true });
var decoder = new WireDecoder({ useBigInt64: true });
function encode(v) {
  return encoder.encode(v);
}
function decode(b) {
  return decoder.decode(b);
}

// bindings/typescript/src/websocket.ts
var SUBPROTOCOL = "continuum.v1";
var TOKEN_PREFIX = "continuum.token.";
function connectWebSocket(url, opts = {}) {
  const WS = opts.WebSocket ?? globalThis.WebSocket;
  if (!WS) return Promise.reject(new UnavailableError("no WebSocket implementation here; pass one as opts.WebSocket"));
  const max = opts.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
  const protocols = [SUBPROTOCOL];
  if (opts.token) protocols.push(TOKEN_PREFIX + opts.token);
  return new Promise((resolve, reject) => {
    let ws;
    try {
      ws = new WS(url, protocols);
    } catch (e) {
      reject(new UnavailableError(`cannot open ${url}: ${e.message}`));
      return;
    }
    ws.binaryType = "arraybuffer";
    let open = false;
    const t = {
      send: (b) => ws.send(b),
      close: () => ws.close(1e3),
      onmessage: () => {
      },
      onclose: () => {
      }
    };
    ws.onopen = () => {
      open = true;
      resolve(t);
    };
    ws.onmessage = (e) => {
      if (!(e.data instanceof ArrayBuffer)) {
        t.onclose(new ProtocolErrorError("continuumd sent a text frame; messages travel in binary frames"));
        ws.close(1003);
        return;
      }
      if (e.data.byteLength > max) {
        t.onclose(new MessageTooLargeError(`a message from the daemon exceeds the ${max} byte limit`));
        ws.close(1009);
        return;
      }
      t.onmessage(new Uint8Array(e.data));
    };
    ws.onclose = (e) => {
      if (!open) {
        reject(new UnavailableError(`cannot connect to continuumd at ${url} (close code ${e.code}${e.reason ? ": " + e.reason : ""})`));
        return;
      }
      t.onclose(e.code === 1e3 ? void 0 : new Error(`closed with code ${e.code}${e.reason ? ": " + e.reason : ""}`));
    };
  });
}

// bindings/typescript/src/client.ts
var REQUEST = 0;
var RESPONSE = 1;
var NOTIFICATION = 2;
var EARLY_MAX = 4096;
var ENDED_MAX = 1024;
var Client = class _Client extends Methods {
  /** How Client.connect dials when given neither url nor connector (set by the Node entry point). */
  static platformConnector;
  connector;
  opts;
  transport;
  nextId = 0;
  pending = /* @__PURE__ */ new Map();
  subs = /* @__PURE__ */ new Map();
  // Events that come before the reply to events/subscribe wait in early (at
  // most EARLY_MAX in all) for their subscription; events for a subscription
  // this client closed (the newest ENDED_MAX ids in ended) are dropped: the
  // daemon may still have some in flight, and kept they would grow early
  // without bound.
  early = /* @__PURE__ */ new Map();
  earlyN = 0;
  ended = /* @__PURE__ */ new Set();
  provisions = /* @__PURE__ */ new Map();
  invocations = /* @__PURE__ */ new Map();
  closed = false;
  protocolError;
  waiters = [];
  reconnecting = false;
  /** Called with each reconnection's outcome (for logs and UIs). */
  onconnectionchange;
  constructor(connector, opts) {
    const core = {
      call: (m, p) => this.call(m, p),
      subscribe: (p) => this.subscribe(p),
      provide: (n, h, o) => this.provide(n, h, o)
    };
    super(core);
    this.connector = connector;
    this.opts = opts;
  }
  /** Dials the daemon and checks it answers (kernel/ping). */
  static async connect(opts = {}) {
    let connector = opts.connector;
    if (!connector && opts.url) {
      const { url, token, maxMessageSize } = opts;
      connector = () => connectWebSocket(url, { token, maxMessageSize });
    }
    if (!connector && _Client.platformConnector) connector = _Client.platformConnector(opts);
    if (!connector) {
      throw new InvalidArgumentError("no way to reach continuumd: give url (WebSocket) or, in Node, import the client from its node entry");
    }
    const c = new _Client(connector, opts);
    c.attach(await connector());
    try {
      await c.kernel.ping();
    } catch (e) {
      c.closed = true;
      c.transport?.close();
      throw e;
    }
    return c;
  }
  /** Closes the connection: pending calls fail with unavailable, subscriptions end. */
  async close() {
    if (this.closed) return;
    this.closed = true;
    const t = this.transport;
    this.lost(new UnavailableError("the client was closed"));
    t?.close();
    for (const s of this.subs.values()) s.end();
    this.subs.clear();
    for (const w of this.waiters.splice(0)) w();
  }
  get connected() {
    return this.transport !== void 0;
  }
  // --- connection ---
  attach(t) {
    this.transport = t;
    this.protocolError = void 0;
    t.onmessage = (b) => this.receive(t, b);
    t.onclose = (err) => {
      if (this.transport !== t) return;
      const typed = err instanceof ContinuumError ? err : void 0;
      this.lost(this.protocolError ?? typed ?? new UnavailableError(`connection to continuumd lost${err ? ": " + err.message : ""}`));
    };
    for (const w of this.waiters.splice(0)) w();
  }
  lost(err) {
    const t = this.transport;
    if (!t) return;
    this.transport = void 0;
    const pending = this.pending;
    this.pending = /* @__PURE__ */ new Map();
    for (const p of pending.values()) p.reject(err);
    for (const ac of this.invocations.values()) ac.abort(err);
    this.invocations.clear();
    this.onconnectionchange?.(false, err);
    const fatal = err.code === "unauthenticated" || err.code === "permission_denied";
    if (this.closed || this.opts.reconnect === false || fatal) {
      this.closed = true;
      for (const s of this.subs.values()) s.end();
      this.subs.clear();
      for (const w of this.waiters.splice(0)) w();
      return;
    }
    void this.reconnect();
  }
  async reconnect() {
    if (this.reconnecting) return;
    this.reconnecting = true;
    let delay = this.opts.backoffMs?.initial ?? 50;
    const max = this.opts.backoffMs?.max ?? 2e3;
    try {
      while (!this.closed) {
        await sleep(delay * (0.5 + Math.random()));
        if (this.closed) return;
        let t;
        try {
          t = await this.connector();
        } catch (e) {
          delay = Math.min(delay * 2, max);
          continue;
        }
        if (this.closed) {
          t.close();
          return;
        }
        this.attach(t);
        await this.restore(t);
        if (this.transport !== t) {
          delay = Math.min(delay * 2, max);
          continue;
        }
        this.onconnectionchange?.(true);
        return;
      }
    } finally {
      this.reconnecting = false;
    }
  }
  /** After a reconnect: provide the commands again and resume subscriptions. */
  // A subscription the daemon refuses ends; one whose call failed because
  // the connection went again is kept for the next attempt.
  async restore(t) {
    for (const p of this.provisions.values()) {
      if (this.transport !== t) return;
      await this.call("commands/register", p.register).catch(() => void 0);
    }
    const subs = [...this.subs.values()];
    this.subs.clear();
    for (const s of subs) {
      if (this.transport !== t) {
        this.subs.set(s.id, s);
        continue;
      }
      const params = { ...s.params };
      if (!params.durable && s.lastSeq) params.from = s.lastSeq;
      await this.rawCall("events/subscribe", params, (r) => this.adopt(s, r)).catch(() => {
        if (this.transport === t) s.end();
        else this.subs.set(s.id, s);
      });
    }
  }
  async ready() {
    if (this.transport) return this.transport;
    if (this.closed) throw new UnavailableError("the client is closed");
    const ms = this.opts.connectTimeoutMs ?? 5e3;
    await new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.waiters.push(done);
    });
    if (this.transport) return this.transport;
    throw new UnavailableError(this.closed ? "the client is closed" : "not connected to continuumd");
  }
  send(t, msg) {
    let b;
    try {
      b = encode(msg);
    } catch (e) {
      throw new InvalidArgumentError(`cannot encode the message: ${e.message}`);
    }
    t.send(b);
  }
  // --- calls ---
  /** Sends a request and resolves with its raw result (the generated groups wrap this). */
  call(method, params = {}) {
    return this.rawCall(method, params);
  }
  async rawCall(method, params, hook) {
    const t = this.transport ?? await this.ready();
    const id = this.nextId = this.nextId + 1 >>> 0;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, hook });
      try {
        this.send(t, [REQUEST, id, method, isEmpty(params) ? [] : [params]]);
      } catch (e) {
        this.pending.delete(id);
        reject(e);
      }
    });
  }
  /** Subscribes (events/subscribe) and returns the events as an async iterator. */
  async subscribe(params) {
    const s = new SubscriptionImpl(this, { ...params });
    await this.rawCall("events/subscribe", params, (r) => this.adopt(s, r));
    return s;
  }
  // Runs as the subscribe reply is read, before any later message: events that
  // follow the reply find the subscription, and events that came before it
  // (kept in early) are handed over first.
  adopt(s, r) {
    s.id = String(r?.subscription ?? "");
    s.cursor = r?.cursor ?? 0;
    this.subs.set(s.id, s);
    const early = this.early.get(s.id);
    if (early) {
      this.early.delete(s.id);
      this.earlyN -= early.length;
      for (const ev of early) s.push(ev);
    }
  }
  /** @internal */
  async unsubscribe(s) {
    if (this.subs.get(s.id) === s) this.subs.delete(s.id);
    this.ended.add(s.id);
    if (this.ended.size > ENDED_MAX) this.ended.delete(this.ended.values().next().value);
    const early = this.early.get(s.id);
    if (early) {
      this.early.delete(s.id);
      this.earlyN -= early.length;
    }
    if (this.transport) {
      await this.call("events/unsubscribe", { subscription: s.id }).catch(() => void 0);
    }
  }
  /** Provides a command: registers it and answers its commands/handle requests. */
  async provide(name, handler, opts = {}) {
    if (this.provisions.has(name)) {
      throw new ContinuumError("already_exists", `this client already provides ${JSON.stringify(name)}`);
    }
    const register = {
      name,
      naturalScope: opts.naturalScope ?? "environment",
      description: opts.description ?? "",
      idempotent: opts.idempotent ?? false
    };
    const p = new ProvisionImpl(this, name, handler, register);
    this.provisions.set(name, p);
    try {
      await this.call("commands/register", register);
    } catch (e) {
      this.provisions.delete(name);
      throw e;
    }
    return p;
  }
  /** @internal */
  async unprovide(p) {
    if (this.provisions.get(p.name) !== p) return;
    this.provisions.delete(p.name);
    if (this.transport) await this.call("commands/unregister", { name: p.name }).catch(() => void 0);
  }
  // --- incoming ---
  receive(t, b) {
    let m;
    try {
      m = decode(b);
    } catch (e) {
      this.protocolError = new ContinuumError("protocol_error", `undecodable message from the daemon: ${e.message}`);
      t.close();
      return;
    }
    if (!Array.isArray(m)) return;
    switch (m[0]) {
      case RESPONSE: {
        const p = this.pending.get(m[1]);
        if (!p) return;
        this.pending.delete(m[1]);
        if (m[2] != null) {
          p.reject(errorFromWire(m[2]));
          return;
        }
        if (p.hook) {
          try {
            p.hook(m[3]);
          } catch (e) {
            p.reject(new InternalError(`bad reply: ${e.message}`));
            return;
          }
        }
        p.resolve(m[3]);
        return;
      }
      case NOTIFICATION:
        this.notification(m[1], paramsOf(m[2]));
        return;
      case REQUEST:
        void this.serve(t, m[1], m[2], paramsOf(m[3]));
        return;
    }
  }
  notification(method, p) {
    switch (method) {
      case "events/event": {
        const s = this.subs.get(p.subscription);
        if (s) s.push(p.event);
        else if (!this.ended.has(p.subscription) && this.earlyN < EARLY_MAX) {
          let q = this.early.get(p.subscription);
          if (!q) this.early.set(p.subscription, q = []);
          q.push(p.event);
          this.earlyN++;
        }
        return;
      }
      case "events/lagged": {
        const s = this.subs.get(p.subscription);
        if (s) s.dropped += Number(p.dropped ?? 0);
        return;
      }
      case "commands/cancel":
        this.invocations.get(p.invocation)?.abort(new ContinuumError("cancelled", "the caller cancelled"));
        return;
      case "kernel/protocol-error":
        this.protocolError = errorFromWire(p);
        return;
    }
  }
  async serve(t, id, method, p) {
    let reply;
    const ac = new AbortController();
    const inv = String(p?.invocation ?? "");
    try {
      if (method !== "commands/handle") throw new UnknownMethodError(`this client answers commands/handle only, not ${method}`);
      const prov = this.provisions.get(p.command);
      if (!prov) throw new UnavailableError(`this client no longer provides ${JSON.stringify(p.command)}`);
      this.invocations.set(inv, ac);
      const invocation = {
        id: inv,
        command: String(p.command),
        caller: String(p.caller ?? ""),
        deadlineMs: Number(p.deadlineMs ?? 0),
        signal: ac.signal
      };
      const result = await prov.handler(p.params, invocation);
      reply = [RESPONSE, id, null, result === void 0 ? null : result];
    } catch (e) {
      reply = [RESPONSE, id, errorToWire(e), null];
    } finally {
      this.invocations.delete(inv);
    }
    if (this.transport !== t) return;
    try {
      this.send(t, reply);
    } catch (e) {
      this.send(t, [RESPONSE, id, errorToWire(new InternalError(`cannot encode the result: ${e.message}`)), null]);
    }
  }
};
function errorToWire(e) {
  if (e instanceof ContinuumError) {
    const w = { code: e.code, message: e.detail };
    if (e.data !== void 0) w.data = e.data;
    return w;
  }
  const err = e;
  return { code: "internal", message: `${err?.name ?? "Error"}: ${err?.message ?? String(e)}` };
}
function paramsOf(p) {
  if (Array.isArray(p)) return p.length === 1 ? p[0] : {};
  return p ?? {};
}
function isEmpty(o) {
  for (const _ in o) return false;
  return true;
}
function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}
var SubscriptionImpl = class {
  constructor(client, params) {
    this.client = client;
    this.params = params;
  }
  client;
  params;
  id = "";
  cursor = 0;
  dropped = 0;
  lastSeq = 0;
  queue = [];
  waiting = [];
  ended = false;
  push(ev) {
    if (ev && ev.seq && ev.seq > this.lastSeq) this.lastSeq = ev.seq;
    const w = this.waiting.shift();
    if (w) w({ value: ev, done: false });
    else this.queue.push(ev);
  }
  end() {
    this.ended = true;
    for (const w of this.waiting.splice(0)) w({ value: void 0, done: true });
  }
  next() {
    if (this.queue.length > 0) return Promise.resolve({ value: this.queue.shift(), done: false });
    if (this.ended) return Promise.resolve({ value: void 0, done: true });
    return new Promise((r) => this.waiting.push(r));
  }
  async nextEvent(timeoutMs) {
    if (timeoutMs === void 0) return (await this.next()).value;
    if (this.queue.length > 0) return this.queue.shift();
    if (this.ended) return void 0;
    return new Promise((resolve, reject) => {
      const w = (r) => {
        clearTimeout(timer);
        resolve(r.done ? void 0 : r.value);
      };
      const timer = setTimeout(() => {
        const i = this.waiting.indexOf(w);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(new DeadlineExceededError(`no event within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.push(w);
    });
  }
  async return() {
    await this.close();
    return { value: void 0, done: true };
  }
  async close() {
    if (this.ended) return;
    this.end();
    await this.client.unsubscribe(this);
  }
  [Symbol.asyncIterator]() {
    return this;
  }
};
var ProvisionImpl = class {
  constructor(client, name, handler, register) {
    this.client = client;
    this.name = name;
    this.handler = handler;
    this.register = register;
  }
  client;
  name;
  handler;
  register;
  close() {
    return this.client.unprovide(this);
  }
};

// dashboard/web/format.ts
function el(tag2, attrs = {}, ...kids) {
  const e = document.createElement(tag2);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else e.setAttribute(k, v);
  }
  for (const k of kids) if (k !== null && k !== void 0) e.append(k);
  return e;
}
function table(cols, rows, empty) {
  if (rows.length === 0) return el("p", { class: "muted" }, empty);
  const head = el("tr", {}, ...cols.map((c) => el("th", c.num ? { class: "num" } : {}, c.head)));
  const body = rows.map(
    (r) => el(
      "tr",
      {},
      ...cols.map((c) => {
        const cls = [c.num ? "num" : "", c.cls ?? ""].join(" ").trim();
        const td = el("td", cls ? { class: cls } : {}, c.cell(r));
        const t = c.title?.(r);
        if (t) td.title = t;
        return td;
      })
    )
  );
  return el("table", {}, el("thead", {}, head), el("tbody", {}, ...body));
}
function tag(text, cls = "") {
  return el("span", { class: `tag ${cls}`.trim() }, text);
}
function code(text) {
  return el("code", {}, text);
}
function json(v) {
  try {
    return JSON.stringify(v, (_, x) => {
      if (typeof x === "bigint") return x.toString();
      if (x instanceof Uint8Array) return `<${x.length} bytes>`;
      return x;
    }) ?? "null";
  } catch (e) {
    return `<${e.message}>`;
  }
}
function clip(s, n) {
  return s.length <= n ? s : s.slice(0, n - 1) + "…";
}
function bytes(n) {
  let v = Number(n ?? 0);
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}
function clock(ms) {
  const n = Number(ms);
  if (!n) return "–";
  return new Date(n).toISOString().slice(11, 23);
}
function ago(ms) {
  const n = Number(ms);
  if (!n) return "never";
  const s = Math.max(0, Math.round((Date.now() - n) / 1e3));
  if (s < 90) return `${s} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}
function short(id, n = 12) {
  const s = id ?? "";
  const e = el("code", {}, s.length > n ? s.slice(0, n) + "…" : s || "–");
  e.title = s;
  return e;
}

// dashboard/web/panels.ts
var classes = {
  id: "classes",
  methods: ["events/list-classes"],
  async load(c) {
    const rows = await c.events.listClasses() ?? [];
    const cols = [
      { head: "name", cell: (r) => code(r.name) },
      { head: "kept", cell: (r) => r.broadcast ? tag("broadcast", "live") : tag("local", "kernel") },
      { head: "channel", cell: (r) => r.channel },
      { head: "schema", cell: (r) => r.schemaVersion },
      { head: "on unknown", cell: (r) => r.onUnknownSchema },
      { head: "description", cell: (r) => clip(r.description, 80), title: (r) => r.description, cls: "desc" }
    ];
    return { node: table(cols, rows, "no event classes declared yet"), count: rows.length };
  }
};
function where(r) {
  if (r.provider === "kernel") return tag("kernel", "kernel");
  const who = el("span", {}, r.naturalScope === "grid" ? tag("grid", "live") : tag("client", "connecting"), " ", short(r.provider, 14));
  if (r.capability) who.append(" ", code(r.capability));
  return who;
}
var commands = {
  id: "commands",
  methods: ["commands/list"],
  async load(c) {
    const all = await c.commands.list() ?? [];
    const rows = [...all].sort((a, b) => Number(a.provider === "kernel") - Number(b.provider === "kernel") || a.name.localeCompare(b.name));
    const cols = [
      { head: "name", cell: (r) => code(r.name) },
      { head: "scope", cell: (r) => r.naturalScope },
      { head: "runs in", cell: where },
      { head: "idempotent", cell: (r) => r.idempotent ? "yes" : "" },
      { head: "description", cell: (r) => clip(r.description, 70), title: (r) => r.description, cls: "desc" }
    ];
    const fromClients = rows.filter((r) => r.provider !== "kernel").length;
    const node = el("div", {}, el("p", { class: "muted" }, `${fromClients} provided by clients, ${rows.length - fromClients} by the kernel`), table(cols, rows, "no commands"));
    return { node, count: rows.length };
  }
};
var log = {
  id: "log",
  methods: ["log/stats"],
  async load(c) {
    const s = await c.log.stats();
    const facts = [
      ["head seq", String(s.head)],
      ["lamport", String(s.lamport)],
      ["events", String(s.events)],
      ["event bytes", bytes(s.bytes)],
      ["state file", bytes(s.fileBytes)],
      ["epoch", String(s.epoch)],
      ["rejections", String(s.rejections)],
      ["forked origins", String(s.forkedOrigins)]
    ];
    const dl = el("dl", {}, ...facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
    const cols = [
      { head: "channel", cell: (r) => code(r.channel) },
      { head: "events", cell: (r) => String(r.events), num: true },
      { head: "bytes", cell: (r) => bytes(r.bytes), num: true },
      { head: "last seq", cell: (r) => String(r.lastSeq), num: true },
      { head: "last lamport", cell: (r) => String(r.lastLamport), num: true }
    ];
    return { node: el("div", {}, dl, table(cols, s.channels ?? [], "no channel holds events yet")) };
  }
};
var models = {
  id: "models",
  methods: ["inference/models"],
  async load(c) {
    const rows = await c.inference.models() ?? [];
    const cols = [
      { head: "name", cell: (r) => code(r.name) },
      { head: "model", cell: (r) => clip(r.info?.description ?? "", 40), title: (r) => r.path },
      { head: "size", cell: (r) => bytes(r.info?.sizeBytes), num: true },
      { head: "on", cell: (r) => r.info?.onGpu ? tag("GPU", "live") : tag("CPU", "connecting") },
      { head: "active", cell: (r) => String(r.active), num: true },
      { head: "queued", cell: (r) => String(r.queued), num: true }
    ];
    return { node: table(cols, rows, "no model loaded (continuum model load PATH)"), count: rows.length };
  }
};
var peers = {
  id: "peers",
  methods: ["grid/peers"],
  async load(c) {
    const rows = (await c.grid.peers()).peers ?? [];
    const cols = [
      { head: "peer", cell: (r) => short(r.peerId) },
      { head: "circle", cell: (r) => r.circle },
      { head: "link", cell: (r) => tag(r.state, r.state) },
      { head: "rtt", cell: (r) => r.rttMs ? `${r.rttMs.toFixed(1)} ms` : "–", num: true },
      { head: "last up", cell: (r) => ago(r.lastSeenMs) },
      { head: "addrs", cell: (r) => (r.addrs ?? []).join(", "), title: (r) => r.lastError ?? "" }
    ];
    return { node: table(cols, rows, "no trusted peers (continuum grid invite / join)"), count: rows.length };
  }
};
var routes = {
  id: "routes",
  methods: ["grid/routes"],
  async load(c) {
    const rows = (await c.grid.routes()).routes ?? [];
    const cols = [
      { head: "capability", cell: (r) => code(r.capability) },
      { head: "command", cell: (r) => code(r.command) },
      { head: "peer", cell: (r) => short(r.peerId) },
      { head: "circle", cell: (r) => r.circle },
      { head: "state", cell: (r) => tag(r.state, r.state) },
      { head: "price", cell: (r) => r.terms?.price ? `${r.terms.price} ${r.terms.currency ?? ""}` : "–", num: true },
      { head: "load", cell: (r) => String(r.load), num: true }
    ];
    return { node: table(cols, rows, "no routes: no peer offers a capability yet"), count: rows.length };
  }
};
function generic(id, methods, empty) {
  return {
    id,
    methods,
    async load(c, method) {
      const rows = rowsOf(await c.call(method, {}));
      const keys = [];
      for (const r of rows.slice(0, 20)) {
        for (const [k, v] of Object.entries(r ?? {})) {
          if (keys.length < 6 && !keys.includes(k) && (v === null || typeof v !== "object")) keys.push(k);
        }
      }
      const cols = keys.map((k) => ({ head: k, cell: (r) => clip(typeof r?.[k] === "string" ? r[k] : json(r?.[k]), 60) }));
      return { node: table(cols, rows, empty), count: rows.length };
    }
  };
}
function rowsOf(v) {
  if (Array.isArray(v)) return v;
  if (v && typeof v === "object") {
    for (const x of Object.values(v)) if (Array.isArray(x)) return x;
  }
  return [];
}
var PANELS = [
  classes,
  commands,
  log,
  models,
  peers,
  routes,
  generic("personas", ["persona/list"], "no personas"),
  generic("contracts", ["contract/list", "contracts/list"], "no contracts")
];

// dashboard/web/tail.ts
var Tail = class {
  constructor(body, count, max = 200) {
    this.body = body;
    this.count = count;
    this.max = max;
  }
  body;
  count;
  max;
  /** Newest first, at most max. */
  events = [];
  pending = [];
  timer;
  paused = false;
  missed = 0;
  /** Events seen since the page opened (or the last clear). */
  seen = 0;
  add(ev) {
    this.seen++;
    this.events.unshift(ev);
    if (this.events.length > this.max) this.events.length = this.max;
    if (this.paused) {
      this.missed++;
      this.showCount();
      return;
    }
    this.pending.push(ev);
    this.timer ??= setTimeout(() => this.flush(), 30);
  }
  /** Pauses or resumes rendering; events keep being collected (bounded). */
  toggle() {
    this.paused = !this.paused;
    if (!this.paused) {
      this.missed = 0;
      this.pending = [];
      this.redraw();
    }
    this.showCount();
    return this.paused;
  }
  clear() {
    this.events = [];
    this.pending = [];
    this.seen = 0;
    this.missed = 0;
    this.redraw();
  }
  flush() {
    this.timer = void 0;
    const batch = this.pending;
    this.pending = [];
    if (batch.length === 0) return;
    this.body.querySelector("tr.empty")?.remove();
    const rows = batch.slice(-this.max).reverse().map((ev) => row(ev, true));
    this.body.prepend(...rows);
    while (this.body.rows.length > this.max) this.body.lastElementChild?.remove();
    this.showCount();
  }
  redraw() {
    clearTimeout(this.timer);
    this.timer = void 0;
    this.body.replaceChildren(...this.events.length ? this.events.map((ev) => row(ev, false)) : [emptyRow()]);
    this.showCount();
  }
  showCount() {
    const shown = Math.min(this.events.length, this.max);
    let s = `${shown} shown (newest first, last ${this.max} kept), ${this.seen} since opened`;
    if (this.paused) s += ` · paused, ${this.missed} new`;
    this.count.textContent = s;
  }
};
function emptyRow() {
  return el("tr", { class: "empty" }, el("td", { colspan: "6" }, "waiting for events…"));
}
function row(ev, fresh) {
  const payload = json(ev.payload);
  const p = el("td", { class: "payload" }, el("code", {}, clip(payload, 240)));
  p.title = payload;
  const tr = el(
    "tr",
    fresh ? { class: "new" } : {},
    el("td", { class: "mono" }, clock(ev.ts)),
    el("td", {}, el("code", {}, ev.class)),
    el("td", {}, ev.channel || el("span", { class: "muted" }, "local")),
    el("td", { class: "num" }, ev.seq ? String(ev.seq) : "–"),
    el("td", {}, short(ev.sender, 14)),
    p
  );
  tr.dataset.class = ev.class;
  tr.dataset.id = ev.id;
  return tr;
}

// dashboard/web/dashboard.ts
var TOKEN_KEY = "continuum.dashboard.token";
var REFRESH_MS = 5e3;
var $ = (id) => document.getElementById(id);
function setState(state, pill) {
  document.body.dataset.state = state;
  $("conn").textContent = pill;
}
function showError(text) {
  const e = $("error");
  e.hidden = !text;
  e.textContent = text ?? "";
}
function takeToken() {
  const args = new URLSearchParams(location.hash.slice(1));
  const t = args.get("token");
  if (t) {
    sessionStorage.setItem(TOKEN_KEY, t);
    history.replaceState(null, "", location.pathname + location.search);
    return t;
  }
  return sessionStorage.getItem(TOKEN_KEY);
}
var codeOf = (e) => e instanceof ContinuumError ? e.code : "";
var messageOf = (e) => e instanceof ContinuumError ? `${e.code}: ${e.detail}` : String(e?.message ?? e);
function refused() {
  sessionStorage.removeItem(TOKEN_KEY);
  setState("unauthenticated", "token refused");
  showError(
    "continuumd refused this page's token (unauthenticated).\nRun `continuum dashboard` and open the URL it prints: the token after #token= must be the one in the file continuumd's --ws-token-file names (default: ws-token in its state dir)."
  );
}
async function connect(url, token) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await Client.connect({ url, token, backoffMs: { initial: 200, max: 3e3 } });
    } catch (e) {
      if (codeOf(e) === "unauthenticated") {
        refused();
        return void 0;
      }
      setState("down", "unreachable");
      showError(`Cannot reach continuumd at ${url} (${messageOf(e)}).
Is it still running with --listen-ws? Retrying (attempt ${attempt})…`);
      await new Promise((r) => setTimeout(r, Math.min(500 * attempt, 5e3)));
    }
  }
}
var Dashboard = class {
  constructor(c) {
    this.c = c;
    this.tail = new Tail($("events"), $("tail-count"));
  }
  c;
  methods = /* @__PURE__ */ new Set();
  knownClasses = /* @__PURE__ */ new Set();
  sub;
  generation = 0;
  inflight = /* @__PURE__ */ new Set();
  soon = /* @__PURE__ */ new Map();
  tail;
  async start() {
    const info = await this.c.kernel.info();
    this.methods = new Set((info.methods ?? []).map((m) => m.name));
    $("daemon").textContent = `continuumd ${info.version} · peer ${info.peerId.slice(0, 16)}… · ${location.host}`;
    $("daemon").title = info.peerId;
    this.c.onconnectionchange = (up, err) => {
      if (up && !this.c.connected) return;
      if (up) {
        setState("live", "live");
        showError(void 0);
        void this.refreshAll();
      } else if (codeOf(err) === "unauthenticated" || codeOf(err) === "permission_denied") {
        refused();
      } else {
        setState("reconnecting", "reconnecting…");
        showError(`Lost the connection to continuumd (${err ? messageOf(err) : "closed"}); reconnecting…`);
      }
    };
    const form = $("filter");
    const input = $("pattern");
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      void this.follow(input.value.trim() || "*");
    });
    $("pause").addEventListener("click", () => $("pause").textContent = this.tail.toggle() ? "Resume" : "Pause");
    $("clear").addEventListener("click", () => this.tail.clear());
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) void this.refreshAll();
    });
    await this.follow(input.value.trim() || "*");
    await this.refreshAll();
    setState("live", "live");
    setInterval(() => {
      if (!document.hidden && this.c.connected) void this.refreshAll();
    }, REFRESH_MS);
  }
  /** (Re)subscribes the tail with pattern; a refused pattern is shown, the old subscription kept. */
  async follow(pattern) {
    const ferr = $("filter-error");
    let sub;
    try {
      sub = await this.c.events.subscribe({ pattern });
    } catch (e) {
      ferr.hidden = false;
      ferr.textContent = `pattern ${JSON.stringify(pattern)} refused: ${messageOf(e)}`;
      return;
    }
    ferr.hidden = true;
    const gen = ++this.generation;
    const old = this.sub;
    this.sub = sub;
    await old?.close();
    $("filter-note").textContent = `following ${pattern}`;
    document.body.dataset.pattern = pattern;
    void this.pump(sub, gen);
  }
  async pump(sub, gen) {
    let dropped = 0;
    for await (const ev of sub) {
      if (gen !== this.generation) break;
      this.tail.add(ev);
      if (sub.dropped !== dropped) {
        dropped = sub.dropped;
        $("filter-note").textContent = `following ${document.body.dataset.pattern} · ${dropped} dropped (the page fell behind)`;
      }
      this.onEvent(ev);
    }
  }
  onEvent(ev) {
    if (ev.seq) this.later("log", 1e3);
    if (!this.knownClasses.has(ev.class)) this.later("classes", 500);
  }
  /** Refreshes one panel after ms, at most once per that delay. */
  later(id, ms) {
    if (this.soon.has(id)) return;
    this.soon.set(
      id,
      setTimeout(() => {
        this.soon.delete(id);
        const p = PANELS.find((p2) => p2.id === id);
        if (p) void this.refresh(p);
      }, ms)
    );
  }
  async refreshAll() {
    await Promise.all(PANELS.map((p) => this.refresh(p)));
  }
  async refresh(p) {
    const section = $(`panel-${p.id}`);
    const method = p.methods.find((m) => this.methods.has(m));
    section.hidden = !method;
    if (!method || this.inflight.has(p.id)) return;
    this.inflight.add(p.id);
    const err = section.querySelector(".error");
    try {
      const { node, count } = await p.load(this.c, method);
      section.querySelector(".body").replaceChildren(node);
      const small = section.querySelector(".count");
      if (small) small.textContent = count === void 0 ? "" : String(count);
      section.dataset.loaded = "true";
      section.dataset.rows = String(count ?? "");
      err.hidden = true;
      if (p.id === "classes") {
        this.knownClasses = new Set([...section.querySelectorAll("tbody tr td:first-child")].map((td) => td.textContent ?? ""));
      }
    } catch (e) {
      err.hidden = false;
      err.textContent = `${method}: ${messageOf(e)}`;
    } finally {
      this.inflight.delete(p.id);
    }
  }
};
async function main() {
  const token = takeToken();
  if (!token) {
    setState("notoken", "no token");
    showError("This page needs continuumd's WebSocket token in its URL.\nRun `continuum dashboard` and open the URL it prints (…/dashboard/#token=…).");
    return;
  }
  const url = `ws://${location.host}/`;
  const c = await connect(url, token);
  if (!c) return;
  showError(void 0);
  await new Dashboard(c).start();
}
main().catch((e) => {
  setState("down", "error");
  showError(`The dashboard failed: ${messageOf(e)}`);
  document.body.append(el("pre", { class: "error" }, String(e?.stack ?? "")));
});
