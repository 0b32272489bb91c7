// Runs a real continuumd for the tests. The binary comes from $CONTINUUMD when
// set (make test builds it once); otherwise it is built with go build.

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createConnection } from "node:net";
import { encode } from "@msgpack/msgpack";

export const PKG = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const REPO = resolve(PKG, "..", "..");

let built: string | undefined;

export function binary(): string {
  if (process.env.CONTINUUMD) return process.env.CONTINUUMD;
  if (built) return built;
  const out = join(PKG, "node_modules", ".cache", "continuumd");
  const r = spawnSync("go", ["build", "-o", out, "./cmd/continuumd"], { cwd: REPO, stdio: "inherit" });
  if (r.status !== 0) throw new Error("go build ./cmd/continuumd failed");
  return (built = out);
}

export class Daemon {
  readonly root: string;
  readonly socket: string;
  readonly state: string;
  private proc: ChildProcess | undefined;

  constructor(readonly extra: string[] = []) {
    this.root = mkdtempSync(join(tmpdir(), "continuum-ts-"));
    mkdirSync(join(this.root, "run"), { mode: 0o700 });
    this.socket = join(this.root, "run", "d.sock");
    this.state = join(this.root, "state");
  }

  async start(): Promise<this> {
    const log = openSync(join(this.root, "continuumd.log"), "a");
    const proc = spawn(binary(), ["--socket", this.socket, "--state-dir", this.state, ...this.extra], {
      stdio: ["ignore", log, log],
    });
    this.proc = proc;
    const deadline = Date.now() + 15000;
    while (!existsSync(this.socket)) {
      if (proc.exitCode !== null) throw new Error("continuumd exited: " + this.log());
      if (Date.now() > deadline) throw new Error("continuumd did not start listening: " + this.log());
      await new Promise((r) => setTimeout(r, 20));
    }
    // The socket file exists from the moment it is bound, before the daemon
    // has finished starting (the WebSocket listener and its token file come
    // up before the socket is served): wait for an answer to kernel/ping.
    while (!(await answersPing(this.socket))) {
      if (proc.exitCode !== null) throw new Error("continuumd exited: " + this.log());
      if (Date.now() > deadline) throw new Error("continuumd did not answer kernel/ping: " + this.log());
      await new Promise((r) => setTimeout(r, 20));
    }
    return this;
  }

  log(): string {
    try {
      return readFileSync(join(this.root, "continuumd.log"), "utf8");
    } catch {
      return "";
    }
  }

  async stop(): Promise<void> {
    const p = this.proc;
    this.proc = undefined;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise((r) => p.once("exit", r));
    p.kill("SIGTERM");
    const t = setTimeout(() => p.kill("SIGKILL"), 10000);
    await exited;
    clearTimeout(t);
  }

  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.root, { recursive: true, force: true });
  }
}

export function badCalls(): Array<{ what: string; method: string; params: any; code: string; before?: Array<{ method: string; params: any }> }> {
  return JSON.parse(readFileSync(join(REPO, "bindings", "interop", "bad-calls.json"), "utf8"));
}

// answersPing sends one kernel/ping request and reports whether any reply
// bytes came back within a second.
function answersPing(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = createConnection(socket);
    const done = (ok: boolean) => {
      clearTimeout(timer);
      c.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), 1000);
    c.once("connect", () => c.write(encode([0, 1, "kernel/ping", [{}]])));
    c.once("data", () => done(true));
    c.once("error", () => done(false));
  });
}
