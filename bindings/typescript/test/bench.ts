// kernel/ping round trips per second through the TypeScript client over the
// Unix socket: node dist/test/bench.js SOCKET CALLERS SECONDS. Prints one JSON line.

import { Client } from "../src/node.js";

const [socketPath, callersArg = "1", secondsArg = "3"] = process.argv.slice(2);
const callers = Number(callersArg);
const ms = Number(secondsArg) * 1000;

const c = await Client.connect({ socketPath });
for (let i = 0; i < 500; i++) await c.kernel.ping(); // warm up
let n = 0;
const start = performance.now();
const deadline = start + ms;
await Promise.all(
  Array.from({ length: callers }, async () => {
    while (performance.now() < deadline) {
      await c.kernel.ping();
      n++;
    }
  }),
);
const secs = (performance.now() - start) / 1000;
console.log(JSON.stringify({ client: "typescript", callers, calls_per_s: n / secs }));
await c.close();
