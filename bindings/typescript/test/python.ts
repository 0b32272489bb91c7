// Runs bindings/interop/py_peer.py, the Python client's side of the interop tests.

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { join } from "node:path";
import { REPO } from "./daemon.js";

export const PYTHON = process.env.PYTHON ?? "/usr/bin/python3";
const PEER = join(REPO, "bindings", "interop", "py_peer.py");

/** Why the Python side cannot run here, or undefined when it can. */
export function pythonMissing(): string | undefined {
  const r = spawnSync(PYTHON, ["-c", "import msgpack"], { encoding: "utf8" });
  if (r.error) return `${PYTHON} not found (apt-get install python3)`;
  if (r.status !== 0) return `${PYTHON} has no msgpack (apt-get install python3-msgpack)`;
  return undefined;
}

/** Runs one action to completion and returns its JSON lines. */
export function runPeer(socket: string, ...args: string[]): Promise<any[]> {
  return new Promise((resolve, reject) => {
    const p = spawn(PYTHON, [PEER, socket, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => (err += d));
    p.on("exit", (code) => {
      if (code !== 0) reject(new Error(`py_peer ${args.join(" ")} exited ${code}: ${err}`));
      else resolve(out.split("\n").filter(Boolean).map((l) => JSON.parse(l)));
    });
  });
}

/** A long-running peer: resolves once it printed "ready"; lines() yields the rest as raw text. */
export class Peer {
  readonly proc: ChildProcess;
  private lines: string[] = [];
  private waiters: Array<(l: string) => void> = [];
  private stderr = "";

  constructor(socket: string, ...args: string[]) {
    this.proc = spawn(PYTHON, [PEER, socket, ...args], { stdio: ["pipe", "pipe", "pipe"] });
    this.proc.stderr!.on("data", (d) => (this.stderr += d));
    createInterface({ input: this.proc.stdout! }).on("line", (l) => {
      const w = this.waiters.shift();
      if (w) w(l);
      else this.lines.push(l);
    });
  }

  next(timeoutMs = 10000): Promise<string> {
    const l = this.lines.shift();
    if (l !== undefined) return Promise.resolve(l);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error("py_peer said nothing; stderr: " + this.stderr)), timeoutMs);
      this.waiters.push((x) => {
        clearTimeout(t);
        resolve(x);
      });
    });
  }

  async ready(): Promise<void> {
    const l = await this.next();
    if (JSON.parse(l) !== "ready") throw new Error("py_peer: " + l);
  }

  stop(): Promise<void> {
    if (this.proc.exitCode !== null) return Promise.resolve();
    return new Promise((r) => {
      this.proc.once("exit", () => r());
      this.proc.stdin!.end();
      setTimeout(() => this.proc.kill(), 5000).unref();
    });
  }
}
