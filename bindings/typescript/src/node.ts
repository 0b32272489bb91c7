// The Node entry point: everything in index.ts, plus the Unix socket
// transport, which Client.connect uses when given neither url nor connector.

import { connect as netConnect } from "node:net";
import { statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client, type ClientOptions } from "./client.js";
import { Splitter } from "./codec.js";
import { UnavailableError } from "./gen/client.js";
import type { Transport } from "./transport.js";

export * from "./index.js";

export const SOCKET_NAME = "continuumd.sock";

/**
 * Where continuumd listens when no --socket is given, computed as the daemon
 * does: $XDG_RUNTIME_DIR/continuum/continuumd.sock; else
 * /run/user/<uid>/continuum/continuumd.sock when that folder is this user's and
 * private; else $TMPDIR/continuum-<uid>/continuumd.sock.
 */
export function defaultSocketPath(): string {
  const rt = process.env.XDG_RUNTIME_DIR;
  if (rt) return join(rt, "continuum", SOCKET_NAME);
  const uid = process.getuid?.() ?? 0;
  const run = `/run/user/${uid}`;
  try {
    const st = statSync(run);
    if (st.isDirectory() && st.uid === uid && (st.mode & 0o077) === 0) return join(run, "continuum", SOCKET_NAME);
  } catch {
    // not there
  }
  return join(tmpdir(), `continuum-${uid}`, SOCKET_NAME);
}

// The hints the CLI gives for the same failures (cmd/continuum/conn.go), so
// that a program's user reads the same advice.
const HINT_NOT_RUNNING = "is continuumd running? start it with make run (or bin/continuumd), or pass socketPath: the daemon's --socket";
const HINT_PERMISSION = "only the daemon's own user (and root) may connect to its socket";

/** "; how to fix it" for a failed dial, or "" when there is nothing to say. */
function dialHint(err: Error | undefined): string {
  switch ((err as NodeJS.ErrnoException | undefined)?.code) {
    case "ENOENT":
    case "ECONNREFUSED":
      return "; " + HINT_NOT_RUNNING;
    case "EACCES":
    case "EPERM":
      return "; " + HINT_PERMISSION;
  }
  return "";
}

/** Opens the daemon's Unix socket; rejects with UnavailableError if nobody answers. */
export function connectUnix(path: string = defaultSocketPath(), opts: { maxMessageSize?: number; timeoutMs?: number } = {}): Promise<Transport> {
  return new Promise((resolve, reject) => {
    const sock = netConnect({ path });
    sock.setNoDelay?.(true);
    const splitter = new Splitter(opts.maxMessageSize);
    let open = false;
    let failure: Error | undefined;
    const timer = setTimeout(() => sock.destroy(new Error("timed out")), opts.timeoutMs ?? 5000);
    const t: Transport = {
      send: (b) => {
        sock.write(b);
      },
      close: () => sock.destroy(),
      onmessage: () => {},
      onclose: () => {},
    };
    sock.on("connect", () => {
      clearTimeout(timer);
      open = true;
      resolve(t);
    });
    sock.on("data", (chunk: Buffer) => {
      let msgs: Uint8Array[];
      try {
        msgs = splitter.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      } catch (e) {
        failure = e as Error;
        sock.destroy();
        return;
      }
      for (const m of msgs) t.onmessage(m);
    });
    sock.on("error", (e) => {
      failure ??= e;
    });
    sock.on("close", () => {
      clearTimeout(timer);
      if (!open) {
        reject(new UnavailableError(`cannot connect to continuumd at ${path}: ${failure?.message ?? "closed"}${dialHint(failure)}`));
        return;
      }
      t.onclose(failure);
    });
  });
}

Client.platformConnector = (opts: ClientOptions) => {
  const path = opts.socketPath ?? defaultSocketPath();
  return () => connectUnix(path, { maxMessageSize: opts.maxMessageSize, timeoutMs: opts.connectTimeoutMs });
};
