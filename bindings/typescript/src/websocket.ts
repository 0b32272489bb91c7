// The WebSocket transport: one MessagePack-RPC message per binary frame, to a
// continuumd started with --listen-ws. Works wherever a WHATWG WebSocket
// exists (browsers, Node 22+), or with one passed in. Written by hand.

import { DEFAULT_MAX_MESSAGE_SIZE } from "./codec.js";
import { MessageTooLargeError, ProtocolErrorError, UnavailableError } from "./gen/client.js";
import type { Transport } from "./transport.js";

/** The subprotocol continuumd speaks; the token travels as a second one. */
export const SUBPROTOCOL = "continuum.v1";
export const TOKEN_PREFIX = "continuum.token.";

export interface WebSocketOptions {
  /** The daemon's WebSocket token (--ws-token-file). */
  token?: string;
  maxMessageSize?: number;
  /** A WHATWG WebSocket constructor, where there is no global one. */
  WebSocket?: typeof WebSocket;
}

/** Opens a WebSocket to continuumd; rejects with UnavailableError if it cannot. */
export function connectWebSocket(url: string, opts: WebSocketOptions = {}): Promise<Transport> {
  const WS = opts.WebSocket ?? (globalThis as any).WebSocket;
  if (!WS) return Promise.reject(new UnavailableError("no WebSocket implementation here; pass one as opts.WebSocket"));
  const max = opts.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
  const protocols = [SUBPROTOCOL];
  if (opts.token) protocols.push(TOKEN_PREFIX + opts.token);
  return new Promise((resolve, reject) => {
    let ws: WebSocket;
    try {
      ws = new WS(url, protocols);
    } catch (e) {
      reject(new UnavailableError(`cannot open ${url}: ${(e as Error).message}`));
      return;
    }
    ws.binaryType = "arraybuffer";
    let open = false;
    const t: Transport = {
      send: (b) => ws.send(b),
      close: () => ws.close(1000),
      onmessage: () => {},
      onclose: () => {},
    };
    ws.onopen = () => {
      open = true;
      resolve(t);
    };
    ws.onmessage = (e: MessageEvent) => {
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
    ws.onclose = (e: CloseEvent) => {
      if (!open) {
        reject(new UnavailableError(`cannot connect to continuumd at ${url} (close code ${e.code}${e.reason ? ": " + e.reason : ""})`));
        return;
      }
      t.onclose(e.code === 1000 ? undefined : new Error(`closed with code ${e.code}${e.reason ? ": " + e.reason : ""}`));
    };
  });
}
