#!/usr/bin/python3
"""kernel/ping round trips per second through the Python clients:
    bench.py SOCKET CALLERS SECONDS [sync|async]
Sync: CALLERS threads sharing one Client. Async: CALLERS tasks sharing one
AsyncClient. Prints one JSON line."""

import asyncio
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from continuum_client import AsyncClient, Client  # noqa: E402


def sync_bench(sock, callers, secs):
    with Client(sock) as c:
        for _ in range(500):
            c.kernel.ping()
        counts = [0] * callers
        deadline = time.monotonic() + secs

        def work(i):
            n = 0
            while time.monotonic() < deadline:
                c.kernel.ping()
                n += 1
            counts[i] = n

        start = time.monotonic()
        ts = [threading.Thread(target=work, args=(i,)) for i in range(callers)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        return sum(counts) / (time.monotonic() - start)


async def async_bench(sock, callers, secs):
    async with AsyncClient(sock) as c:
        for _ in range(500):
            await c.kernel.ping()
        deadline = time.monotonic() + secs
        counts = [0] * callers

        async def work(i):
            n = 0
            while time.monotonic() < deadline:
                await c.kernel.ping()
                n += 1
            counts[i] = n

        start = time.monotonic()
        await asyncio.gather(*[work(i) for i in range(callers)])
        return sum(counts) / (time.monotonic() - start)


def main():
    sock, callers, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    mode = sys.argv[4] if len(sys.argv) > 4 else "sync"
    if mode == "async":
        rate = asyncio.run(async_bench(sock, callers, secs))
    else:
        rate = sync_bench(sock, callers, secs)
    print(json.dumps({"client": f"python-{mode}", "callers": callers, "calls_per_s": rate}))


if __name__ == "__main__":
    main()
