// The dashboard (package dashboard, served by continuumd's WebSocket
// listener at /dashboard/) in Debian's chromium, headless, driven by
// playwright-core: a real continuumd with --listen-ws, the URL printed by the
// real `continuum dashboard`, a Node client on the Unix socket that declares
// classes, provides a command and emits events, and the page must show them.
// A screenshot goes to the test's temp dir (and to docs/dashboard.png with
// UPDATE_SCREENSHOT=1, the copy the README shows).

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Page } from "playwright-core";
import { Client } from "../../src/node.js";
import { Daemon, PKG, REPO } from "../daemon.js";
import { ARGS, CHROMIUM, chromiumMissing, freePort } from "./chromium.js";

/** The CLI binary: $CONTINUUM when set, else built once with go build. */
function cliBinary(): string {
  if (process.env.CONTINUUM) return process.env.CONTINUUM;
  const out = join(PKG, "node_modules", ".cache", "continuum");
  const r = spawnSync("go", ["build", "-o", out, "./cmd/continuum"], { cwd: REPO, stdio: "inherit" });
  if (r.status !== 0) throw new Error("go build ./cmd/continuum failed");
  return out;
}

const missing = chromiumMissing;
// The models panel shows a real model: the tiny GGUF the CLI writes, loaded
// by llama.cpp on the CPU (--allow-cpu), as the inference tests do.
const LLAMA = process.env.CONTINUUM_LLAMA_LIB_DIR ?? join(REPO, ".cache", "llama", "cpu");
const noLlama = existsSync(LLAMA) ? undefined : `llama.cpp libraries not found at ${LLAMA}: run \`make llama-libs\` or set CONTINUUM_LLAMA_LIB_DIR`;

/** The text of the tail's rows, newest first. */
const tailRows = (page: Page) =>
  page.evaluate(() => [...document.querySelectorAll<HTMLTableRowElement>("#events tr[data-id]")].map((tr) => ({ id: tr.dataset.id!, cls: tr.dataset.class!, text: tr.textContent ?? "" })));

test("the dashboard: classes, commands, log, models, peers and routes panels; a live, filtered, bounded tail; token errors; reconnection", { timeout: 120000 }, async (t) => {
  assert.equal(missing, undefined, missing);
  assert.equal(noLlama, undefined, noLlama);
  const wsPort = await freePort();
  const d = new Daemon(["--allow-cpu", "--llama-lib-dir", LLAMA, "--listen-quic", "127.0.0.1:0"]);
  // A second install, linked to the first over QUIC on loopback: the peers
  // and routes panels show it and the command it offers.
  const peer = new Daemon(["--listen-quic", "127.0.0.1:0"]);
  let pc: Client | undefined;
  const tokenFile = join(d.root, "ws-token");
  (d.extra as string[]).push("--listen-ws", `127.0.0.1:${wsPort}`, "--ws-token-file", tokenFile);
  const profile = mkdtempSync(join(tmpdir(), "continuum-chromium-"));
  const shots = mkdtempSync(join(tmpdir(), "continuum-dashboard-"));
  let c: Client | undefined;
  let ctx: Awaited<ReturnType<typeof chromium.launchPersistentContext>> | undefined;
  try {
    await d.start();
    const cli = cliBinary();
    const printed = spawnSync(cli, ["dashboard", "--socket", d.socket], { encoding: "utf8" });
    assert.equal(printed.status, 0, `continuum dashboard: ${printed.stderr}`);
    const url = printed.stdout.trim();
    assert.match(url, new RegExp(`^http://127\\.0\\.0\\.1:${wsPort}/dashboard/#token=[0-9a-f]{64}$`));

    c = await Client.connect({ socketPath: d.socket });
    await c.events.declareClass({ name: "dash:demo:posted", schemaVersion: "v1", broadcast: true, channel: "global", description: "what the dashboard test emits" });
    await c.events.declareClass({ name: "dash:demo:local", schemaVersion: "v1", description: "a class that stays on this machine" });
    const gguf = join(d.root, "tiny.gguf");
    const wrote = spawnSync(cli, ["model", "tiny", gguf], { encoding: "utf8" });
    assert.equal(wrote.status, 0, `continuum model tiny: ${wrote.stderr}`);
    await c.inference.load({ path: gguf, name: "tiny" });
    await peer.start();
    pc = await Client.connect({ socketPath: peer.socket });
    const { token: invite } = await c.grid.invite({ circle: "household" });
    const joined = await pc.grid.join({ token: invite });
    await pc.commands.provide("dash/remote", (p) => p, { naturalScope: "grid", description: "offered to trusted peers" });
    const peerId = (await pc.kernel.info()).peerId;
    assert.equal(joined.circle, "household");
    await c.commands.provide("dash/hello", (p) => ({ hello: p?.name ?? "world" }), { description: "a command the test provides", idempotent: true });

    ctx = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: ARGS, viewport: { width: 1440, height: 1100 } });
    const page = ctx.pages()[0] ?? (await ctx.newPage());
    const problems: string[] = [];
    page.on("console", (m) => {
      if (m.type() === "error" || /Content Security Policy/i.test(m.text())) problems.push(m.text());
    });
    page.on("pageerror", (e) => problems.push(String(e)));

    await page.goto(url);
    await page.waitForFunction(() => document.body.dataset.state === "live", null, { timeout: 30000 }).catch(async (e) => {
      throw new Error(`${e}\nstate ${await page.evaluate(() => document.body.dataset.state)}: ${await page.textContent("#error")}\n${problems.join("\n")}`);
    });
    assert.ok(!page.url().includes("token="), `the token stays in the address bar: ${page.url()}`);

    // Classes and commands are populated, with where each command runs.
    await page.waitForFunction(() => document.querySelector("#panel-classes")?.textContent?.includes("dash:demo:posted"), null, { timeout: 15000 });
    const classes = await page.textContent("#panel-classes");
    assert.match(classes!, /dash:demo:posted\s*broadcast\s*global\s*v1/);
    assert.match(classes!, /dash:demo:local\s*local\s*local/);
    const commands = await page.evaluate(() =>
      [...document.querySelectorAll("#panel-commands tbody tr")].map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent)),
    );
    const hello = commands.find((r) => r[0] === "dash/hello");
    assert.ok(hello, `dash/hello not listed: ${JSON.stringify(commands.slice(0, 3))}`);
    assert.equal(hello[1], "environment");
    assert.match(hello[2]!, /^client /);
    assert.equal(hello[3], "yes");
    assert.ok(commands.some((r) => r[0] === "events/emit" && r[2] === "kernel"), "kernel methods are listed as running in the kernel");
    assert.equal(commands[0][0], "dash/hello", "commands clients provide come first");

    // An event emitted now appears on the page, newest first.
    const first = await c.events.emit({ name: "dash:demo:posted", payload: { text: "hello from the test", n: 1 } });
    await page.waitForSelector(`#events tr[data-id="${first.id}"]`, { timeout: 15000 });
    const second = await c.events.emit({ name: "dash:demo:local", payload: { text: "a local one", big: 2n ** 60n } });
    await page.waitForSelector(`#events tr[data-id="${second.id}"]`, { timeout: 15000 });
    // (The tail follows "*", so the grid's manifests show up in it too.)
    let rows = (await tailRows(page)).filter((r) => r.cls.startsWith("dash:"));
    assert.deepEqual(rows.slice(0, 2).map((r) => r.id), [second.id, first.id], "newest first");
    assert.match(rows[1].text, /dash:demo:postedglobal\d+.*"text":"hello from the test"/);
    assert.match(rows[0].text, /dash:demo:locallocal–.*"big":"1152921504606846976"/);

    // The log panel follows the broadcast emit (it refreshes on events).
    const logCaughtUp = (seq: number) =>
      page.waitForFunction(
        (seq) => {
          const text = document.querySelector("#panel-log")?.textContent ?? "";
          const head = /head seq\s*(\d+)/.exec(text);
          return head !== null && Number(head[1]) >= seq && (document.querySelector("#panel-log tbody")?.textContent ?? "").startsWith("global");
        },
        seq,
        { timeout: 15000 },
      );
    await logCaughtUp(Number(first.seq));

    // The loaded model, on the CPU, idle.
    const models = await page.evaluate(() =>
      [...document.querySelectorAll("#panel-models tbody tr")].map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent)),
    );
    assert.equal(models.length, 1, JSON.stringify(models));
    assert.equal(models[0][0], "tiny");
    assert.match(models[0][2]!, /\d+(\.\d)? (B|KiB|MiB)/);
    assert.deepEqual(models[0].slice(3), ["CPU", "0", "0"]);

    // The linked peer, up, and the command it offers as a route.
    await page.waitForFunction(
      (id) => {
        const peers = document.querySelector("#panel-peers tbody")?.textContent ?? "";
        const routes = document.querySelector("#panel-routes tbody")?.textContent ?? "";
        return peers.includes(id.slice(0, 12)) && peers.includes("up") && routes.includes("dash/remote");
      },
      peerId,
      { timeout: 30000 },
    );
    const route = await page.evaluate(() => [...document.querySelectorAll("#panel-routes tbody tr td")].map((td) => td.textContent));
    assert.deepEqual(route.slice(0, 2), ["dash/remote", "dash/remote"]);
    assert.equal(route[3], "household");
    assert.equal(route[4], "live");

    // Optional panels show exactly when the daemon has their methods.
    const methods = new Set(((await c.kernel.info()).methods ?? []).map((m) => m.name));
    for (const [panel, method] of [["peers", "grid/peers"], ["routes", "grid/routes"], ["models", "inference/models"], ["personas", "persona/list"]]) {
      const hidden = await page.evaluate((id) => document.getElementById(`panel-${id}`)!.hidden, panel);
      assert.equal(hidden, !methods.has(method), `panel ${panel}: hidden=${hidden}, daemon has ${method}: ${methods.has(method)}`);
    }

    // A few more, so that the screenshot shows a tail.
    let more = first;
    for (const [i, text] of ["the grid is quiet", "a persona would post here", "and the log keeps it"].entries()) {
      more = await c.events.emit({ name: "dash:demo:posted", payload: { text, n: i + 2 } });
    }
    await page.waitForSelector(`#events tr[data-id="${more.id}"]`, { timeout: 15000 });
    // The log panel catches up on its own (it refreshes after events).
    await logCaughtUp(Number(more.seq));
    const shot = join(shots, "dashboard.png");
    await page.screenshot({ path: shot, fullPage: true, animations: "disabled" });
    t.diagnostic(`screenshot: ${shot}`);
    if (process.env.UPDATE_SCREENSHOT === "1") copyFileSync(shot, join(REPO, "docs", "dashboard.png"));

    // The filter resubscribes with a pattern: a class outside it stays out.
    await page.fill("#pattern", "dash:demo:*");
    await page.click("#filter button[type=submit]");
    await page.waitForFunction(() => document.body.dataset.pattern === "dash:demo:*", null, { timeout: 10000 });
    const outside = await c.events.emit({ name: "other:thing:happened", payload: 1 });
    const inside = await c.events.emit({ name: "dash:demo:local", payload: 2 });
    await page.waitForSelector(`#events tr[data-id="${inside.id}"]`, { timeout: 15000 });
    rows = await tailRows(page);
    assert.ok(!rows.some((r) => r.id === outside.id), "an event outside the pattern was shown");

    // A refused pattern is said so, and the tail keeps its subscription.
    await page.fill("#pattern", "a::b");
    await page.click("#filter button[type=submit]");
    await page.waitForSelector("#filter-error:not([hidden])", { timeout: 10000 });
    assert.match((await page.textContent("#filter-error"))!, /pattern "a::b" refused: invalid_argument/);
    assert.equal(await page.evaluate(() => document.body.dataset.pattern), "dash:demo:*");

    // The tail is bounded: after a burst it holds the newest 200.
    let last = "";
    for (let i = 0; i < 230; i++) last = (await c.events.emit({ name: "dash:demo:local", payload: { i } })).id;
    await page.waitForFunction((id) => document.querySelector<HTMLTableRowElement>("#events tr[data-id]")?.dataset.id === id, last, { timeout: 20000 });
    rows = await tailRows(page);
    assert.equal(rows.length, 200);
    assert.match(rows[0].text, /"i":229/);
    assert.match(rows[199].text, /"i":30\b/);
    assert.deepEqual(problems, [], "console errors");

    // A wrong token is refused with a message that says what to do.
    const bad = await ctx.newPage();
    await bad.goto(url.replace(/#token=.*/, "#token=wrong-token"));
    await bad.waitForFunction(() => document.body.dataset.state === "unauthenticated", null, { timeout: 15000 });
    const msg = await bad.textContent("#error");
    assert.match(msg!, /refused this page's token \(unauthenticated\)/);
    assert.match(msg!, /continuum dashboard/);
    await bad.screenshot({ path: join(shots, "wrong-token.png") });
    await bad.close();

    // No token at all (a fresh tab, nothing stored): said so too.
    const none = await ctx.newPage();
    await none.goto(url.replace(/#.*/, ""));
    await none.waitForFunction(() => document.body.dataset.state === "notoken", null, { timeout: 15000 });
    assert.match((await none.textContent("#error"))!, /needs continuumd's WebSocket token.*\n.*continuum dashboard/);
    await none.close();

    // The first tab kept its token (sessionStorage): a reload is still live.
    await page.reload();
    await page.waitForFunction(() => document.body.dataset.state === "live", null, { timeout: 30000 });

    // The daemon restarts (same state, port and token): the page says it
    // lost the connection, comes back by itself, and its tail goes on.
    await d.stop();
    await page.waitForFunction(() => document.body.dataset.state === "reconnecting", null, { timeout: 15000 });
    assert.match((await page.textContent("#error"))!, /Lost the connection to continuumd.*reconnecting/);
    await d.start();
    await page.waitForFunction(() => document.body.dataset.state === "live", null, { timeout: 30000 });
    const after = await c.events.emit({ name: "dash:demo:posted", payload: { text: "after the restart" } });
    await page.waitForSelector(`#events tr[data-id="${after.id}"]`, { timeout: 15000 });
    assert.equal(await page.evaluate(() => document.getElementById("error")!.hidden), true, "the error stays up after reconnecting");
    assert.deepEqual(problems.filter((p) => !/WebSocket connection to .* failed/.test(p)), [], "console errors");

    // Restarted with another token file (a new token), the daemon refuses
    // the page's token when it reconnects: the page says so and stops.
    await d.stop();
    const extra = d.extra as string[];
    extra[extra.indexOf(tokenFile)] = join(d.root, "ws-token-2");
    await d.start();
    await page.waitForFunction(() => document.body.dataset.state === "unauthenticated", null, { timeout: 30000 });
    assert.match((await page.textContent("#error"))!, /refused this page's token/);
  } finally {
    await ctx?.close();
    await c?.close();
    await pc?.close();
    await peer.dispose();
    await d.dispose();
    rmSync(profile, { recursive: true, force: true });
    if (process.env.KEEP_SCREENSHOTS !== "1") rmSync(shots, { recursive: true, force: true });
  }
});
