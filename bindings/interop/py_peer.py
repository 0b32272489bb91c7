#!/usr/bin/python3
"""The Python side of the interop and browser tests, driven by the TypeScript
tests: one action per run, results as JSON lines on stdout.

    py_peer.py SOCKET provide NAME          provide NAME (answers {greeting, from, big}); "ready", then serve until stdin closes
    py_peer.py SOCKET call NAME PARAMS       execute NAME with JSON PARAMS; print the JSON result
    py_peer.py SOCKET emit CLASS PAYLOAD    emit CLASS with JSON PAYLOAD; print the emit result
    py_peer.py SOCKET subscribe PATTERN N   "ready", then print N events' payloads
    py_peer.py SOCKET bad-calls FILE        run the bad calls in FILE; print their codes
"""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))

from continuum_client import Client, ContinuumError, InvalidArgumentError  # noqa: E402


def out(v):
    print(json.dumps(v), flush=True)


def main(argv):
    sock, action, args = argv[1], argv[2], argv[3:]
    with Client(sock) as c:
        if action == "provide":
            name = args[0]

            def greet(params, inv):
                if not isinstance(params, dict) or "name" not in params:
                    raise InvalidArgumentError("greet needs {name}")
                return {"greeting": f"hello {params['name']}", "from": "python", "caller": inv.caller, "big": 2**63 + 11}

            c.commands.provide(name, greet, description="greets, from Python")
            out("ready")
            sys.stdin.read()
        elif action == "call":
            try:
                r = c.commands.execute(command=args[0], params=json.loads(args[1]))
                out({"result": r, "repr": repr(r)})
            except ContinuumError as e:
                out({"error": e.code, "class": type(e).__name__})
        elif action == "emit":
            r = c.events.emit(name=args[0], payload=json.loads(args[1]))
            out({"id": r.id})
        elif action == "subscribe":
            n = int(args[1])
            with c.events.subscribe(pattern=args[0]) as sub:
                out("ready")
                for _ in range(n):
                    ev = sub.get(timeout=10)
                    out({"class": ev.class_, "payload": ev.payload, "sender": ev.sender})
        elif action == "bad-calls":
            with open(args[0]) as f:
                cases = json.load(f)
            codes = []
            for case in cases:
                for b in case.get("before", []):
                    c.call(b["method"], b["params"])
                try:
                    c.call(case["method"], case["params"])
                    codes.append(None)
                except ContinuumError as e:
                    codes.append(e.code)
            out(codes)
        else:
            raise SystemExit(f"unknown action {action}")


if __name__ == "__main__":
    main(sys.argv)
