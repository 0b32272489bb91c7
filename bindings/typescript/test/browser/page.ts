// The page the browser test loads: the generated client, bundled by esbuild,
// talking to continuumd over WebSocket. It subscribes, emits, runs a command a
// Python client provides, waits for an event a Python client emits, and shows
// each outcome in the page for the test to read.

import { Client, ContinuumError, UnauthenticatedError, UnknownMethodError } from "../../src/index.js";

const args = new URLSearchParams(location.hash.slice(1));
const url = args.get("url")!;
const token = args.get("token")!;

function show(id: string, text: string): void {
  const li = document.createElement("li");
  li.id = id;
  li.textContent = text;
  document.getElementById("log")!.append(li);
}

const json = (v: unknown) => JSON.stringify(v, (_, x) => (typeof x === "bigint" ? `${x}n` : x));

async function main(): Promise<void> {
  const c = await Client.connect({ url, token });
  show("connected", `connected, daemon clock ${(await c.kernel.ping()).ts}`);

  const sub = await c.events.subscribe({ pattern: "browser:*" });
  const emitted = await c.events.emit({ name: "browser:hello", payload: { text: "from the page", big: 2n ** 60n + 1n } });
  const mine = await sub.nextEvent(5000);
  show("own-event", `${mine?.class} ${json(mine?.payload)} same id: ${mine?.id === emitted.id}`);

  const greet = await c.commands.execute({ command: "py/greet", params: { name: "browser" } });
  show("greet", `${greet.greeting} (from ${greet.from}, big ${json(greet.big)})`);

  try {
    await c.commands.execute({ command: "nobody/here", params: {} });
    show("error", "no error");
  } catch (e) {
    show("error", `${(e as ContinuumError).code} typed: ${e instanceof UnknownMethodError}`);
  }

  try {
    await Client.connect({ url, token: "wrong-token", reconnect: false });
    show("bad-token", "connected with a wrong token");
  } catch (e) {
    show("bad-token", `${(e as ContinuumError).code} typed: ${e instanceof UnauthenticatedError}`);
  }

  document.body.dataset.stage = "subscribed"; // the test now has Python emit
  const fromPython = await sub.nextEvent(10000);
  show("python-event", `${fromPython?.class} ${json(fromPython?.payload)}`);
  await sub.close();
  await c.close();
}

main().then(
  () => (document.body.dataset.stage = "done"),
  (e) => {
    show("fatal", String(e?.stack ?? e));
    document.body.dataset.stage = "done";
  },
);
