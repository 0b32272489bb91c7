// What the browser tests share: Debian's chromium and the flags it runs
// with here (headless, and nothing that reaches for the network), and a
// free loopback port.

import { existsSync } from "node:fs";
import { createServer as netServer, type AddressInfo } from "node:net";

export const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

export const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Why the browser tests cannot run, or undefined when chromium is there. */
export const chromiumMissing = existsSync(CHROMIUM) ? undefined : `${CHROMIUM} not found: apt-get install chromium (make deps does it when run as root)`;

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = netServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}
