// The live event tail: newest first, at most `max` rows, rendered in
// batches so that a burst of events costs one DOM update per frame rather
// than one per event.

import type { Event } from "../../bindings/typescript/src/index.js";
import { clip, clock, el, json, short } from "./format.js";

export class Tail {
  /** Newest first, at most max. */
  private events: Event[] = [];
  private pending: Event[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;
  private paused = false;
  private missed = 0;
  /** Events seen since the page opened (or the last clear). */
  seen = 0;

  constructor(
    private readonly body: HTMLTableSectionElement,
    private readonly count: HTMLElement,
    readonly max = 200,
  ) {}

  add(ev: Event): void {
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
  toggle(): boolean {
    this.paused = !this.paused;
    if (!this.paused) {
      this.missed = 0;
      this.pending = [];
      this.redraw();
    }
    this.showCount();
    return this.paused;
  }

  clear(): void {
    this.events = [];
    this.pending = [];
    this.seen = 0;
    this.missed = 0;
    this.redraw();
  }

  private flush(): void {
    this.timer = undefined;
    const batch = this.pending;
    this.pending = [];
    if (batch.length === 0) return;
    this.body.querySelector("tr.empty")?.remove();
    // batch is oldest first; the newest goes on top.
    const rows = batch.slice(-this.max).reverse().map((ev) => row(ev, true));
    this.body.prepend(...rows);
    while (this.body.rows.length > this.max) this.body.lastElementChild?.remove();
    this.showCount();
  }

  private redraw(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.body.replaceChildren(...(this.events.length ? this.events.map((ev) => row(ev, false)) : [emptyRow()]));
    this.showCount();
  }

  private showCount(): void {
    const shown = Math.min(this.events.length, this.max);
    let s = `${shown} shown (newest first, last ${this.max} kept), ${this.seen} since opened`;
    if (this.paused) s += ` · paused, ${this.missed} new`;
    this.count.textContent = s;
  }
}

function emptyRow(): HTMLTableRowElement {
  return el("tr", { class: "empty" }, el("td", { colspan: "6" }, "waiting for events…"));
}

function row(ev: Event, fresh: boolean): HTMLTableRowElement {
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
    p,
  );
  tr.dataset.class = ev.class;
  tr.dataset.id = ev.id;
  return tr;
}
