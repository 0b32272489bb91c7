// Small DOM and formatting helpers for the dashboard. No framework: each
// panel rebuilds its table from the latest result, which at these sizes
// (tens to a few hundred rows) costs less than tracking changes.

export type Kid = Node | string | null | undefined;

/** Makes an element with attributes and children (strings become text, never HTML). */
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...kids: Kid[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else e.setAttribute(k, v);
  }
  for (const k of kids) if (k !== null && k !== undefined) e.append(k);
  return e;
}

/** A table column: its header and how a row shows in it. */
export interface Column<T> {
  head: string;
  cell: (row: T) => Kid;
  num?: boolean;
  title?: (row: T) => string;
  /** A class for its cells ("desc": one line, cut with an ellipsis). */
  cls?: string;
}

/** Renders rows as a table, or a one-line note when there are none. */
export function table<T>(cols: Column<T>[], rows: readonly T[], empty: string): HTMLElement {
  if (rows.length === 0) return el("p", { class: "muted" }, empty);
  const head = el("tr", {}, ...cols.map((c) => el("th", c.num ? { class: "num" } : {}, c.head)));
  const body = rows.map((r) =>
    el(
      "tr",
      {},
      ...cols.map((c) => {
        const cls = [c.num ? "num" : "", c.cls ?? ""].join(" ").trim();
        const td = el("td", cls ? { class: cls } : {}, c.cell(r));
        const t = c.title?.(r);
        if (t) td.title = t;
        return td;
      }),
    ),
  );
  return el("table", {}, el("thead", {}, head), el("tbody", {}, ...body));
}

/** A small labelled badge. */
export function tag(text: string, cls = ""): HTMLElement {
  return el("span", { class: `tag ${cls}`.trim() }, text);
}

export function code(text: string): HTMLElement {
  return el("code", {}, text);
}

/** JSON for display: bigints as digits, bytes as their length. */
export function json(v: unknown): string {
  try {
    return JSON.stringify(v, (_, x) => {
      if (typeof x === "bigint") return x.toString();
      if (x instanceof Uint8Array) return `<${x.length} bytes>`;
      return x;
    }) ?? "null";
  } catch (e) {
    return `<${(e as Error).message}>`;
  }
}

/** Cuts s to n characters, marking the cut. */
export function clip(s: string, n: number): string {
  return s.length <= n ? s : s.slice(0, n - 1) + "…";
}

/** Byte counts in binary units: 512 B, 1.5 KiB, 3.2 MiB. */
export function bytes(n: number | bigint | undefined | null): string {
  let v = Number(n ?? 0);
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

/** Unix ms as the time of day, UTC to the millisecond (a log reader's clock). */
export function clock(ms: number | bigint): string {
  const n = Number(ms);
  if (!n) return "–";
  return new Date(n).toISOString().slice(11, 23);
}

/** How long ago unix ms was: 4 s, 3 min, 2 h. */
export function ago(ms: number | bigint): string {
  const n = Number(ms);
  if (!n) return "never";
  const s = Math.max(0, Math.round((Date.now() - n) / 1000));
  if (s < 90) return `${s} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}

/** The first characters of a long id, the whole in the title. */
export function short(id: string | undefined, n = 12): HTMLElement {
  const s = id ?? "";
  const e = el("code", {}, s.length > n ? s.slice(0, n) + "…" : s || "–");
  e.title = s;
  return e;
}
