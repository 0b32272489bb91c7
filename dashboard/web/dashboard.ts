// continuumd's dashboard page. It takes the WebSocket token from the URL
// fragment (continuum dashboard prints the URL), connects to the listener
// that served it with the generated TypeScript client, follows events with
// a pattern subscription, and refreshes the panels every few seconds and
// after events. The page's state is in body[data-state] (loading, live,
// reconnecting, down, notoken, unauthenticated) for people and tests alike.

import { Client, ContinuumError, type Event, type Subscription } from "../../bindings/typescript/src/index.js";
import { el } from "./format.js";
import { PANELS, type Panel } from "./panels.js";
import { Tail } from "./tail.js";

const TOKEN_KEY = "continuum.dashboard.token";
const REFRESH_MS = 5000;
const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

function setState(state: string, pill: string): void {
  document.body.dataset.state = state;
  $("conn").textContent = pill;
}

function showError(text: string | undefined): void {
  const e = $("error");
  e.hidden = !text;
  e.textContent = text ?? "";
}

/**
 * The token from #token=… (moved into this tab's sessionStorage and out of
 * the address bar, so it is neither in the history nor on a screenshot), or
 * the one stored by an earlier load of this tab.
 */
function takeToken(): string | null {
  const args = new URLSearchParams(location.hash.slice(1));
  const t = args.get("token");
  if (t) {
    sessionStorage.setItem(TOKEN_KEY, t);
    history.replaceState(null, "", location.pathname + location.search);
    return t;
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

const codeOf = (e: unknown) => (e instanceof ContinuumError ? e.code : "");
const messageOf = (e: unknown) => (e instanceof ContinuumError ? `${e.code}: ${e.detail}` : String((e as Error)?.message ?? e));

/** Says the token was refused, and forgets it. */
function refused(): void {
  sessionStorage.removeItem(TOKEN_KEY);
  setState("unauthenticated", "token refused");
  showError(
    "continuumd refused this page's token (unauthenticated).\n" +
      "Run `continuum dashboard` and open the URL it prints: the token after #token= must be the one in the file continuumd's --ws-token-file names (default: ws-token in its state dir).",
  );
}

async function connect(url: string, token: string): Promise<Client | undefined> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await Client.connect({ url, token, backoffMs: { initial: 200, max: 3000 } });
    } catch (e) {
      if (codeOf(e) === "unauthenticated") {
        refused();
        return undefined;
      }
      setState("down", "unreachable");
      showError(`Cannot reach continuumd at ${url} (${messageOf(e)}).\nIs it still running with --listen-ws? Retrying (attempt ${attempt})…`);
      await new Promise((r) => setTimeout(r, Math.min(500 * attempt, 5000)));
    }
  }
}

class Dashboard {
  private methods = new Set<string>();
  private knownClasses = new Set<string>();
  private sub: Subscription | undefined;
  private generation = 0;
  private inflight = new Set<string>();
  private soon = new Map<string, ReturnType<typeof setTimeout>>();
  private tail: Tail;

  constructor(private readonly c: Client) {
    this.tail = new Tail($<HTMLTableSectionElement>("events"), $("tail-count"));
  }

  async start(): Promise<void> {
    const info = await this.c.kernel.info();
    this.methods = new Set((info.methods ?? []).map((m) => m.name));
    $("daemon").textContent = `continuumd ${info.version} · peer ${info.peerId.slice(0, 16)}… · ${location.host}`;
    $("daemon").title = info.peerId;
    this.c.onconnectionchange = (up, err) => {
      // A reconnection the daemon then refuses reports "up" after "down":
      // believe only what the client is now.
      if (up && !this.c.connected) return;
      if (up) {
        setState("live", "live");
        showError(undefined);
        void this.refreshAll();
      } else if (codeOf(err) === "unauthenticated" || codeOf(err) === "permission_denied") {
        // The client does not retry these (a restarted daemon with a new
        // token file, say): the page needs a fresh URL.
        refused();
      } else {
        setState("reconnecting", "reconnecting…");
        showError(`Lost the connection to continuumd (${err ? messageOf(err) : "closed"}); reconnecting…`);
      }
    };

    const form = $<HTMLFormElement>("filter");
    const input = $<HTMLInputElement>("pattern");
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      void this.follow(input.value.trim() || "*");
    });
    $("pause").addEventListener("click", () => ($("pause").textContent = this.tail.toggle() ? "Resume" : "Pause"));
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
  async follow(pattern: string): Promise<void> {
    const ferr = $("filter-error");
    let sub: Subscription;
    try {
      sub = await this.c.events.subscribe({ pattern });
    } catch (e) {
      ferr.hidden = false;
      ferr.textContent = `pattern ${JSON.stringify(pattern)} refused: ${messageOf(e)}`;
      return;
    }
    ferr.hidden = true;
    // Only now does the old pump stop: a refused pattern keeps it going.
    const gen = ++this.generation;
    const old = this.sub;
    this.sub = sub;
    await old?.close();
    $("filter-note").textContent = `following ${pattern}`;
    document.body.dataset.pattern = pattern;
    void this.pump(sub, gen);
  }

  private async pump(sub: Subscription, gen: number): Promise<void> {
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

  private onEvent(ev: Event): void {
    if (ev.seq) this.later("log", 1000);
    if (!this.knownClasses.has(ev.class)) this.later("classes", 500);
  }

  /** Refreshes one panel after ms, at most once per that delay. */
  private later(id: string, ms: number): void {
    if (this.soon.has(id)) return;
    this.soon.set(
      id,
      setTimeout(() => {
        this.soon.delete(id);
        const p = PANELS.find((p) => p.id === id);
        if (p) void this.refresh(p);
      }, ms),
    );
  }

  async refreshAll(): Promise<void> {
    await Promise.all(PANELS.map((p) => this.refresh(p)));
  }

  private async refresh(p: Panel): Promise<void> {
    const section = $(`panel-${p.id}`);
    const method = p.methods.find((m) => this.methods.has(m));
    section.hidden = !method;
    if (!method || this.inflight.has(p.id)) return;
    this.inflight.add(p.id);
    const err = section.querySelector<HTMLElement>(".error")!;
    try {
      const { node, count } = await p.load(this.c, method);
      section.querySelector(".body")!.replaceChildren(node);
      const small = section.querySelector(".count");
      if (small) small.textContent = count === undefined ? "" : String(count);
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
}

async function main(): Promise<void> {
  const token = takeToken();
  if (!token) {
    setState("notoken", "no token");
    showError("This page needs continuumd's WebSocket token in its URL.\nRun `continuum dashboard` and open the URL it prints (…/dashboard/#token=…).");
    return;
  }
  const url = `ws://${location.host}/`;
  const c = await connect(url, token);
  if (!c) return;
  showError(undefined);
  await new Dashboard(c).start();
}

main().catch((e) => {
  setState("down", "error");
  showError(`The dashboard failed: ${messageOf(e)}`);
  document.body.append(el("pre", { class: "error" }, String((e as Error)?.stack ?? "")));
});
