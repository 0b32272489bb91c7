// The generated TypeScript client in a real browser: Debian's chromium,
// headless, driven by playwright-core, loads a page bundled by esbuild that
// talks to continuumd over WebSocket, next to a Python client on the socket.

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "esbuild";
import { chromium } from "playwright-core";
import { Daemon, PKG } from "../daemon.js";
import { ARGS, CHROMIUM, chromiumMissing, freePort } from "./chromium.js";
import { Peer, pythonMissing, runPeer } from "../python.js";

async function servePage(): Promise<{ server: Server; port: number }> {
  const bundle = await build({
    entryPoints: [join(PKG, "test", "browser", "page.ts")],
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    write: false,
    logLevel: "warning",
  });
  const js = bundle.outputFiles[0].text;
  assert.ok(!/node:/.test(js), "the browser bundle pulls in a Node module");
  const html = `<!doctype html><meta charset="utf-8"><title>continuum</title><body><ul id="log"></ul><script type="module" src="/page.js"></script></body>`;
  const server = createServer((req, res) => {
    if (req.url === "/page.js") res.writeHead(200, { "content-type": "text/javascript" }).end(js);
    else if (req.url === "/" || req.url?.startsWith("/#")) res.writeHead(200, { "content-type": "text/html" }).end(html);
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { server, port: (server.address() as AddressInfo).port };
}

const missing = pythonMissing() ?? chromiumMissing;

test("the generated client works in chromium over WebSocket, with a Python provider and emitter", { timeout: 90000 }, async (t) => {
  assert.equal(missing, undefined, missing);
  const { server, port: pagePort } = await servePage();
  const wsPort = await freePort();
  const origin = `http://127.0.0.1:${pagePort}`;
  const d = new Daemon([]);
  const tokenFile = join(d.root, "ws-token");
  (d.extra as string[]).push("--listen-ws", `127.0.0.1:${wsPort}`, "--ws-allow-origin", origin, "--ws-token-file", tokenFile);
  const profile = mkdtempSync(join(tmpdir(), "continuum-chromium-"));
  let peer: Peer | undefined;
  let ctx: Awaited<ReturnType<typeof chromium.launchPersistentContext>> | undefined;
  try {
    try {
      await d.start();
    } catch (e) {
      if (/listen-ws/.test(String(e))) assert.fail("this continuumd has no --listen-ws flag yet (cmd/continuumd must pass daemon.Config.WebSocket)");
      throw e;
    }
    const { readFileSync } = await import("node:fs");
    const token = readFileSync(tokenFile, "utf8").trim();
    peer = new Peer(d.socket, "provide", "py/greet");
    await peer.ready();

    ctx = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: ARGS });
    const page = ctx.pages()[0] ?? (await ctx.newPage());
    const consoleLines: string[] = [];
    page.on("console", (m) => consoleLines.push(m.text()));
    page.on("pageerror", (e) => consoleLines.push(String(e)));
    await page.goto(`${origin}/#url=${encodeURIComponent(`ws://127.0.0.1:${wsPort}/`)}&token=${token}`);
    await page.waitForFunction(() => document.body.dataset.stage === "subscribed" || document.body.dataset.stage === "done", null, { timeout: 30000 });
    await runPeer(d.socket, "emit", "browser:from-python", JSON.stringify({ hello: "from python" }));
    await page.waitForFunction(() => document.body.dataset.stage === "done", null, { timeout: 30000 });

    const shown: Record<string, string> = await page.evaluate(() =>
      Object.fromEntries([...document.querySelectorAll("#log li")].map((li) => [li.id, li.textContent ?? ""])),
    );
    t.diagnostic(JSON.stringify(shown));
    assert.equal(shown.fatal, undefined, `${shown.fatal}\nconsole: ${consoleLines.join("\n")}`);
    assert.match(shown.connected, /^connected, daemon clock \d{13}$/);
    assert.equal(shown["own-event"], `browser:hello {"text":"from the page","big":"1152921504606846977n"} same id: true`);
    assert.equal(shown.greet, `hello browser (from python, big "9223372036854775819n")`);
    assert.equal(shown.error, "unknown_method typed: true");
    assert.equal(shown["bad-token"], "unauthenticated typed: true");
    assert.equal(shown["python-event"], `browser:from-python {"hello":"from python"}`);
  } finally {
    await ctx?.close();
    await peer?.stop();
    server.close();
    await d.dispose();
    rmSync(profile, { recursive: true, force: true });
  }
});
