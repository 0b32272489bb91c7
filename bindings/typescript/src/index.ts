// @continuum-grid/client: the continuum client for browsers and Node.
//
//   import { Client } from "@continuum-grid/client";
//   const c = await Client.connect({ url: "ws://127.0.0.1:7777/", token });   // browser
//   const c = await Client.connect();                                         // Node: the default socket
//
// In Node the package's "node" export condition loads ./node.js, which adds the
// Unix socket transport; browsers get this file, which has no Node imports.

export { Client, type ClientOptions } from "./client.js";
export { connectWebSocket, SUBPROTOCOL, TOKEN_PREFIX, type WebSocketOptions } from "./websocket.js";
export { decode, encode, Splitter, DEFAULT_MAX_MESSAGE_SIZE } from "./codec.js";
export type { Connector, Transport } from "./transport.js";
export type { CommandHandler, Invocation, ProvideOptions, Provision, Subscription } from "./hooks.js";
export * from "./gen/client.js";
export * from "./gen/types.js";
