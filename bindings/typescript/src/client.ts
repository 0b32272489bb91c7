// The client runtime: one connection (Unix socket in Node, WebSocket in a
// browser), calls with typed errors, subscriptions as async iterators, command
// providers, and reconnection with backoff. Written by hand; the method groups
// (client.kernel, client.events, client.commands) are generated.

import { decode, encode } from "./codec.js";
import {
  CommandsMethods,
  ContinuumError,
  DeadlineExceededError,
  errorFromWire,
  InternalError,
  InvalidArgumentError,
  Methods,
  UnavailableError,
  UnknownMethodError,
  type Core,
} from "./gen/client.js";
import type { Event, SubscribeParamsInput } from "./gen/types.js";
import type { CommandHandler, Invocation, ProvideOptions, Provision, Subscription } from "./hooks.js";
import type { Connector, Transport } from "./transport.js";
import { connectWebSocket } from "./websocket.js";

const REQUEST = 0;
const RESPONSE = 1;
const NOTIFICATION = 2;

export interface ClientOptions {
  /** Node only: the daemon's Unix socket; default the path continuumd uses. */
  socketPath?: string;
  /** WebSocket URL of a continuumd started with --listen-ws, e.g. ws://127.0.0.1:7777/. */
  url?: string;
  /** The WebSocket token (the file --ws-token-file names). */
  token?: string;
  /** Opens connections some other way; overrides socketPath and url. */
  connector?: Connector;
  /** Dial again after the connection drops (default true). */
  reconnect?: boolean;
  /** How long a call waits for a connection before unavailable (default 5000). */
  connectTimeoutMs?: number;
  /** Largest message accepted from the daemon (default 16 MiB). */
  maxMessageSize?: number;
  /** First and largest pause between reconnection attempts (default 50 and 2000 ms). */
  backoffMs?: { initial?: number; max?: number };
}

type Pending = {
  resolve: (v: any) => void;
  reject: (e: unknown) => void;
  hook?: (result: any) => void;
};

/**
 * A continuum client. `await Client.connect(opts)` dials the daemon; methods
 * live in groups (`client.events.emit({name, payload})`); errors are
 * ContinuumError subclasses, one per code.
 */
/** Bounds of the events kept for subscriptions not adopted yet, and of the closed ids remembered. */
const EARLY_MAX = 4096;
const ENDED_MAX = 1024;

export class Client extends Methods implements Core {
  /** How Client.connect dials when given neither url nor connector (set by the Node entry point). */
  static platformConnector: ((opts: ClientOptions) => Connector) | undefined;

  private readonly connector: Connector;
  private readonly opts: ClientOptions;
  private transport: Transport | undefined;
  private nextId = 0;
  private pending = new Map<number, Pending>();
  private subs = new Map<string, SubscriptionImpl>();
  // Events that come before the reply to events/subscribe wait in early (at
  // most EARLY_MAX in all) for their subscription; events for a subscription
  // this client closed (the newest ENDED_MAX ids in ended) are dropped: the
  // daemon may still have some in flight, and kept they would grow early
  // without bound.
  private early = new Map<string, Event[]>();
  private earlyN = 0;
  private ended = new Set<string>();
  private provisions = new Map<string, ProvisionImpl>();
  private invocations = new Map<string, AbortController>();
  private closed = false;
  private protocolError: ContinuumError | undefined;
  private waiters: Array<() => void> = [];
  private reconnecting = false;
  /** Called with each reconnection's outcome (for logs and UIs). */
  onconnectionchange: ((connected: boolean, err?: Error) => void) | undefined;

  private constructor(connector: Connector, opts: ClientOptions) {
    const core: Core = {
      call: (m, p) => this.call(m, p),
      subscribe: (p) => this.subscribe(p),
      provide: (n, h, o) => this.provide(n, h, o),
    };
    super(core);
    this.connector = connector;
    this.opts = opts;
  }

  /** Dials the daemon and checks it answers (kernel/ping). */
  static async connect(opts: ClientOptions = {}): Promise<Client> {
    let connector = opts.connector;
    if (!connector && opts.url) {
      const { url, token, maxMessageSize } = opts;
      connector = () => connectWebSocket(url, { token, maxMessageSize });
    }
    if (!connector && Client.platformConnector) connector = Client.platformConnector(opts);
    if (!connector) {
      throw new InvalidArgumentError("no way to reach continuumd: give url (WebSocket) or, in Node, import the client from its node entry");
    }
    const c = new Client(connector, opts);
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
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const t = this.transport;
    this.lost(new UnavailableError("the client was closed"));
    t?.close();
    for (const s of this.subs.values()) s.end();
    this.subs.clear();
    for (const w of this.waiters.splice(0)) w();
  }

  get connected(): boolean {
    return this.transport !== undefined;
  }

  // --- connection ---

  private attach(t: Transport): void {
    this.transport = t;
    this.protocolError = undefined;
    t.onmessage = (b) => this.receive(t, b);
    t.onclose = (err) => {
      if (this.transport !== t) return;
      const typed = err instanceof ContinuumError ? err : undefined;
      this.lost(this.protocolError ?? typed ?? new UnavailableError(`connection to continuumd lost${err ? ": " + err.message : ""}`));
    };
    for (const w of this.waiters.splice(0)) w();
  }

  private lost(err: ContinuumError): void {
    const t = this.transport;
    if (!t) return;
    this.transport = undefined;
    const pending = this.pending;
    this.pending = new Map();
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

  private async reconnect(): Promise<void> {
    if (this.reconnecting) return;
    this.reconnecting = true;
    let delay = this.opts.backoffMs?.initial ?? 50;
    const max = this.opts.backoffMs?.max ?? 2000;
    try {
      while (!this.closed) {
        await sleep(delay * (0.5 + Math.random()));
        if (this.closed) return;
        let t: Transport;
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
          // Lost again while restoring: lost() could not start another
          // reconnect while this one runs, so this loop goes on.
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
  private async restore(t: Transport): Promise<void> {
    for (const p of this.provisions.values()) {
      await this.call("commands/register", p.register).catch(() => undefined);
    }
    const subs = [...this.subs.values()];
    this.subs.clear();
    for (const s of subs) {
      if (this.transport !== t) {
        this.subs.set(s.id, s);
        continue;
      }
      const params: any = { ...s.params };
      if (!params.durable && s.lastSeq) params.from = s.lastSeq;
      await this.rawCall("events/subscribe", params, (r) => this.adopt(s, r)).catch(() => {
        if (this.transport === t) s.end();
        else this.subs.set(s.id, s);
      });
    }
  }

  private async ready(): Promise<Transport> {
    if (this.transport) return this.transport;
    if (this.closed) throw new UnavailableError("the client is closed");
    const ms = this.opts.connectTimeoutMs ?? 5000;
    await new Promise<void>((resolve) => {
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

  private send(t: Transport, msg: unknown[]): void {
    let b: Uint8Array;
    try {
      b = encode(msg);
    } catch (e) {
      throw new InvalidArgumentError(`cannot encode the message: ${(e as Error).message}`);
    }
    t.send(b);
  }

  // --- calls ---

  /** Sends a request and resolves with its raw result (the generated groups wrap this). */
  call(method: string, params: object = {}): Promise<any> {
    return this.rawCall(method, params);
  }

  private async rawCall(method: string, params: object, hook?: (r: any) => void): Promise<any> {
    const t = this.transport ?? (await this.ready());
    const id = (this.nextId = (this.nextId + 1) >>> 0);
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
  async subscribe(params: SubscribeParamsInput): Promise<Subscription> {
    const s = new SubscriptionImpl(this, { ...params });
    await this.rawCall("events/subscribe", params, (r) => this.adopt(s, r));
    return s;
  }

  // Runs as the subscribe reply is read, before any later message: events that
  // follow the reply find the subscription, and events that came before it
  // (kept in early) are handed over first.
  private adopt(s: SubscriptionImpl, r: any): void {
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
  async unsubscribe(s: SubscriptionImpl): Promise<void> {
    if (this.subs.get(s.id) === s) this.subs.delete(s.id);
    this.ended.add(s.id);
    if (this.ended.size > ENDED_MAX) this.ended.delete(this.ended.values().next().value as string);
    const early = this.early.get(s.id);
    if (early) {
      this.early.delete(s.id);
      this.earlyN -= early.length;
    }
    if (this.transport) {
      await this.call("events/unsubscribe", { subscription: s.id }).catch(() => undefined);
    }
  }

  /** Provides a command: registers it and answers its commands/handle requests. */
  async provide(name: string, handler: CommandHandler, opts: ProvideOptions = {}): Promise<Provision> {
    if (this.provisions.has(name)) {
      throw new ContinuumError("already_exists", `this client already provides ${JSON.stringify(name)}`);
    }
    const register = {
      name,
      naturalScope: opts.naturalScope ?? "environment",
      description: opts.description ?? "",
      idempotent: opts.idempotent ?? false,
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
  async unprovide(p: ProvisionImpl): Promise<void> {
    if (this.provisions.get(p.name) !== p) return;
    this.provisions.delete(p.name);
    if (this.transport) await this.call("commands/unregister", { name: p.name }).catch(() => undefined);
  }

  // --- incoming ---

  private receive(t: Transport, b: Uint8Array): void {
    let m: any;
    try {
      m = decode(b);
    } catch (e) {
      this.protocolError = new ContinuumError("protocol_error", `undecodable message from the daemon: ${(e as Error).message}`);
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
            p.reject(new InternalError(`bad reply: ${(e as Error).message}`));
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

  private notification(method: string, p: any): void {
    switch (method) {
      case "events/event": {
        const s = this.subs.get(p.subscription);
        if (s) s.push(p.event);
        else if (!this.ended.has(p.subscription) && this.earlyN < EARLY_MAX) {
          let q = this.early.get(p.subscription);
          if (!q) this.early.set(p.subscription, (q = []));
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

  private async serve(t: Transport, id: number, method: string, p: any): Promise<void> {
    let reply: unknown[];
    const ac = new AbortController();
    const inv = String(p?.invocation ?? "");
    try {
      if (method !== "commands/handle") throw new UnknownMethodError(`this client answers commands/handle only, not ${method}`);
      const prov = this.provisions.get(p.command);
      if (!prov) throw new UnavailableError(`this client no longer provides ${JSON.stringify(p.command)}`);
      this.invocations.set(inv, ac);
      const invocation: Invocation = {
        id: inv,
        command: String(p.command),
        caller: String(p.caller ?? ""),
        deadlineMs: Number(p.deadlineMs ?? 0),
        signal: ac.signal,
      };
      const result = await prov.handler(p.params, invocation);
      reply = [RESPONSE, id, null, result === undefined ? null : result];
    } catch (e) {
      reply = [RESPONSE, id, errorToWire(e), null];
    } finally {
      this.invocations.delete(inv);
    }
    if (this.transport !== t) return;
    try {
      this.send(t, reply);
    } catch (e) {
      this.send(t, [RESPONSE, id, errorToWire(new InternalError(`cannot encode the result: ${(e as Error).message}`)), null]);
    }
  }
}

function errorToWire(e: unknown): object {
  if (e instanceof ContinuumError) {
    const w: any = { code: e.code, message: e.detail };
    if (e.data !== undefined) w.data = e.data;
    return w;
  }
  const err = e as Error;
  return { code: "internal", message: `${err?.name ?? "Error"}: ${err?.message ?? String(e)}` };
}

function paramsOf(p: unknown): any {
  if (Array.isArray(p)) return p.length === 1 ? p[0] : {};
  return p ?? {};
}

function isEmpty(o: object): boolean {
  for (const _ in o) return false;
  return true;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

class SubscriptionImpl implements Subscription {
  id = "";
  cursor: number | bigint = 0;
  dropped = 0;
  lastSeq: number | bigint = 0;
  private queue: Event[] = [];
  private waiting: Array<(r: IteratorResult<Event>) => void> = [];
  private ended = false;

  constructor(
    private readonly client: Client,
    readonly params: SubscribeParamsInput,
  ) {}

  push(ev: Event): void {
    if (ev && ev.seq && ev.seq > this.lastSeq) this.lastSeq = ev.seq;
    const w = this.waiting.shift();
    if (w) w({ value: ev, done: false });
    else this.queue.push(ev);
  }

  end(): void {
    this.ended = true;
    for (const w of this.waiting.splice(0)) w({ value: undefined, done: true });
  }

  next(): Promise<IteratorResult<Event>> {
    if (this.queue.length > 0) return Promise.resolve({ value: this.queue.shift()!, done: false });
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((r) => this.waiting.push(r));
  }

  async nextEvent(timeoutMs?: number): Promise<Event | undefined> {
    if (timeoutMs === undefined) return (await this.next()).value;
    if (this.queue.length > 0) return this.queue.shift();
    if (this.ended) return undefined;
    return new Promise((resolve, reject) => {
      const w = (r: IteratorResult<Event>) => {
        clearTimeout(timer);
        resolve(r.done ? undefined : r.value);
      };
      const timer = setTimeout(() => {
        const i = this.waiting.indexOf(w);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(new DeadlineExceededError(`no event within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.push(w);
    });
  }

  async return(): Promise<IteratorResult<Event>> {
    await this.close();
    return { value: undefined, done: true };
  }

  async close(): Promise<void> {
    if (this.ended) return;
    this.end();
    await this.client.unsubscribe(this);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

class ProvisionImpl implements Provision {
  constructor(
    private readonly client: Client,
    readonly name: string,
    readonly handler: CommandHandler,
    readonly register: object,
  ) {}

  close(): Promise<void> {
    return this.client.unprovide(this);
  }
}

export { CommandsMethods };
