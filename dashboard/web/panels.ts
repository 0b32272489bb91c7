// The dashboard's panels: each names the method it reads, how to call it
// and how to show the result. A panel whose method the daemon does not have
// (kernel/info lists them) stays hidden, so the page works with a daemon
// built without the grid, inference, personas or contracts.

import type {
  ClassConfig,
  Client,
  CommandInfo,
  GridPeer,
  GridRoute,
  LoadedModel,
  LogChannelStats,
  LogStats,
} from "../../bindings/typescript/src/index.js";
import { ago, bytes, clip, code, type Column, el, json, short, table, tag } from "./format.js";

export interface Panel {
  /** The section's id is panel-<id>. */
  id: string;
  /** Methods that can fill it, the first the daemon has wins. */
  methods: string[];
  /** Calls method and renders the result; returns the row count shown in the heading (or undefined). */
  load(c: Client, method: string): Promise<{ node: Node; count?: number }>;
}

const classes: Panel = {
  id: "classes",
  methods: ["events/list-classes"],
  async load(c) {
    const rows = (await c.events.listClasses()) ?? [];
    const cols: Column<ClassConfig>[] = [
      { head: "name", cell: (r) => code(r.name) },
      { head: "kept", cell: (r) => (r.broadcast ? tag("broadcast", "live") : tag("local", "kernel")) },
      { head: "channel", cell: (r) => r.channel },
      { head: "schema", cell: (r) => r.schemaVersion },
      { head: "on unknown", cell: (r) => r.onUnknownSchema },
      { head: "description", cell: (r) => clip(r.description, 80), title: (r) => r.description, cls: "desc" },
    ];
    return { node: table(cols, rows, "no event classes declared yet"), count: rows.length };
  },
};

/** Where a command runs, in words: the kernel, a client, or the grid. */
function where(r: CommandInfo): Node {
  if (r.provider === "kernel") return tag("kernel", "kernel");
  const who = el("span", {}, r.naturalScope === "grid" ? tag("grid", "live") : tag("client", "connecting"), " ", short(r.provider, 14));
  if (r.capability) who.append(" ", code(r.capability));
  return who;
}

const commands: Panel = {
  id: "commands",
  methods: ["commands/list"],
  async load(c) {
    const all = (await c.commands.list()) ?? [];
    // Commands clients provide come first: they are what changes.
    const rows = [...all].sort((a, b) => Number(a.provider === "kernel") - Number(b.provider === "kernel") || a.name.localeCompare(b.name));
    const cols: Column<CommandInfo>[] = [
      { head: "name", cell: (r) => code(r.name) },
      { head: "scope", cell: (r) => r.naturalScope },
      { head: "runs in", cell: where },
      { head: "idempotent", cell: (r) => (r.idempotent ? "yes" : "") },
      { head: "description", cell: (r) => clip(r.description, 70), title: (r) => r.description, cls: "desc" },
    ];
    const fromClients = rows.filter((r) => r.provider !== "kernel").length;
    const node = el("div", {}, el("p", { class: "muted" }, `${fromClients} provided by clients, ${rows.length - fromClients} by the kernel`), table(cols, rows, "no commands"));
    return { node, count: rows.length };
  },
};

const log: Panel = {
  id: "log",
  methods: ["log/stats"],
  async load(c) {
    const s: LogStats = await c.log.stats();
    const facts: Array<[string, string]> = [
      ["head seq", String(s.head)],
      ["lamport", String(s.lamport)],
      ["events", String(s.events)],
      ["event bytes", bytes(s.bytes)],
      ["state file", bytes(s.fileBytes)],
      ["epoch", String(s.epoch)],
      ["rejections", String(s.rejections)],
      ["forked origins", String(s.forkedOrigins)],
    ];
    const dl = el("dl", {}, ...facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
    const cols: Column<LogChannelStats>[] = [
      { head: "channel", cell: (r) => code(r.channel) },
      { head: "events", cell: (r) => String(r.events), num: true },
      { head: "bytes", cell: (r) => bytes(r.bytes), num: true },
      { head: "last seq", cell: (r) => String(r.lastSeq), num: true },
      { head: "last lamport", cell: (r) => String(r.lastLamport), num: true },
    ];
    return { node: el("div", {}, dl, table(cols, s.channels ?? [], "no channel holds events yet")) };
  },
};

const models: Panel = {
  id: "models",
  methods: ["inference/models"],
  async load(c) {
    const rows = (await c.inference.models()) ?? [];
    const cols: Column<LoadedModel>[] = [
      { head: "name", cell: (r) => code(r.name) },
      { head: "model", cell: (r) => clip(r.info?.description ?? "", 40), title: (r) => r.path },
      { head: "size", cell: (r) => bytes(r.info?.sizeBytes), num: true },
      { head: "on", cell: (r) => (r.info?.onGpu ? tag("GPU", "live") : tag("CPU", "connecting")) },
      { head: "active", cell: (r) => String(r.active), num: true },
      { head: "queued", cell: (r) => String(r.queued), num: true },
    ];
    return { node: table(cols, rows, "no model loaded (continuum model load PATH)"), count: rows.length };
  },
};

const peers: Panel = {
  id: "peers",
  methods: ["grid/peers"],
  async load(c) {
    const rows = (await c.grid.peers()).peers ?? [];
    const cols: Column<GridPeer>[] = [
      { head: "peer", cell: (r) => short(r.peerId) },
      { head: "circle", cell: (r) => r.circle },
      { head: "link", cell: (r) => tag(r.state, r.state) },
      { head: "rtt", cell: (r) => (r.rttMs ? `${r.rttMs.toFixed(1)} ms` : "–"), num: true },
      { head: "last up", cell: (r) => ago(r.lastSeenMs) },
      { head: "addrs", cell: (r) => (r.addrs ?? []).join(", "), title: (r) => r.lastError ?? "" },
    ];
    return { node: table(cols, rows, "no trusted peers (continuum grid invite / join)"), count: rows.length };
  },
};

const routes: Panel = {
  id: "routes",
  methods: ["grid/routes"],
  async load(c) {
    const rows = (await c.grid.routes()).routes ?? [];
    const cols: Column<GridRoute>[] = [
      { head: "capability", cell: (r) => code(r.capability) },
      { head: "command", cell: (r) => code(r.command) },
      { head: "peer", cell: (r) => short(r.peerId) },
      { head: "circle", cell: (r) => r.circle },
      { head: "state", cell: (r) => tag(r.state, r.state) },
      { head: "price", cell: (r) => (r.terms?.price ? `${r.terms.price} ${r.terms.currency ?? ""}` : "–"), num: true },
      { head: "load", cell: (r) => String(r.load), num: true },
    ];
    return { node: table(cols, rows, "no routes: no peer offers a capability yet"), count: rows.length };
  },
};

/** A panel for a method whose result shape this page was not built with: the rows of its first list, scalar fields as columns. */
function generic(id: string, methods: string[], empty: string): Panel {
  return {
    id,
    methods,
    async load(c, method) {
      const rows = rowsOf(await c.call(method, {}));
      const keys: string[] = [];
      for (const r of rows.slice(0, 20)) {
        for (const [k, v] of Object.entries(r ?? {})) {
          if (keys.length < 6 && !keys.includes(k) && (v === null || typeof v !== "object")) keys.push(k);
        }
      }
      const cols: Column<any>[] = keys.map((k) => ({ head: k, cell: (r) => clip(typeof r?.[k] === "string" ? r[k] : json(r?.[k]), 60) }));
      return { node: table(cols, rows, empty), count: rows.length };
    },
  };
}

function rowsOf(v: unknown): any[] {
  if (Array.isArray(v)) return v;
  if (v && typeof v === "object") {
    for (const x of Object.values(v)) if (Array.isArray(x)) return x;
  }
  return [];
}

export const PANELS: Panel[] = [
  classes,
  commands,
  log,
  models,
  peers,
  routes,
  generic("personas", ["persona/list"], "no personas"),
  generic("contracts", ["contract/list", "contracts/list"], "no contracts"),
];
