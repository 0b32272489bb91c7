"""The sync and asyncio clients against a real continuumd."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import threading
import time

import pytest

import continuum_client as cc
from continuum_client import AsyncClient, Client

BAD_CALLS = os.path.join(os.path.dirname(__file__), "..", "..", "interop", "bad-calls.json")


def test_generated_surface():
    # group/name-with-dashes -> client.group.name_with_dashes, one error class per code
    for m in cc.METHODS:
        if m["kind"] != "request":
            continue
        group, name = m["name"].split("/")
        cls = cc._generated.SYNC_GROUPS[group]
        assert hasattr(cls, name.replace("-", "_")), m["name"]
        assert hasattr(cc._generated.ASYNC_GROUPS[group], name.replace("-", "_")), m["name"]
    for code in cc.CATALOGUE:
        err = cc.error_from_wire({"code": code, "message": "m"})
        assert err.code == code
        assert type(err) is cc.ERRORS[code] and type(err) is not cc.ContinuumError
    unknown = cc.error_from_wire({"code": "brand_new_code", "message": "m"})
    assert type(unknown) is cc.ContinuumError and unknown.code == "brand_new_code"
    assert {f.name for f in cc.dataclasses.fields(cc.Event)} >= {"class_", "origin_seq", "schema_version"}


def test_ping_info_typed(client):
    assert client.kernel.ping().ts > 1_600_000_000_000
    info = client.kernel.info()
    assert isinstance(info, cc.InfoResult)
    assert info.protocol == cc.PROTOCOL
    names = {m.name for m in info.methods}
    assert {m["name"] for m in cc.METHODS} <= names
    assert all(isinstance(m, cc.MethodInfo) for m in info.methods)


def test_classes(client):
    cfg = client.events.declare_class(name="py:test:room", schema_version="v1", broadcast=True, channel=cc.ChannelStrategy.BY_ROOM_ID, description="d")
    assert isinstance(cfg, cc.ClassConfig)
    assert cfg.channel == "byRoomId" and cfg.on_unknown_schema == cc.OnUnknownSchema.FAIL
    assert client.events.get_class(name="py:test:room") == cfg
    assert client.events.get_class(name="py:test:nope") is None
    assert "py:test:room" in [c.name for c in client.events.list_classes()]
    assert client.events.resolve_channel(name="py:test:room", payload={"roomId": "r7"}).channel == "r7"


def test_subscribe_emit(client, daemon):
    client.events.declare_class(name="py:chat:posted", schema_version="v1")
    with Client(daemon.socket) as other:
        with client.events.subscribe(pattern="py:chat:*") as sub:
            assert sub.id
            r = other.events.emit(name="py:chat:posted", payload={"text": "hi", "big": 2**63 + 1}, headers={"h": "v"})
            ev = sub.get(timeout=5)
            assert isinstance(ev, cc.Event)
            assert ev.id == r.id and ev.class_ == "py:chat:posted" and ev.schema_version == "v1"
            assert ev.payload == {"text": "hi", "big": 2**63 + 1}
            assert ev.headers == {"h": "v"}
    # iteration ends once closed
    assert list(sub) == []


@contextlib.contextmanager
def flooding(daemon, name):
    """Another client emits events of class name as fast as it can meanwhile."""
    stop = threading.Event()

    def flood():
        with Client(daemon.socket) as em:
            i = 0
            while not stop.is_set():
                em.events.emit(name=name, payload={"i": i})
                i += 1

    t = threading.Thread(target=flood)
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join()


def test_events_racing_the_subscribe_reply(client, daemon):
    # An emitter floods while we subscribe: events may come before or after the
    # reply; none that arrive may be lost or land on the wrong subscription.
    with flooding(daemon, "py:race:tick"):
        subs = [client.events.subscribe(pattern="py:race:*") for _ in range(20)]
        for s in subs:
            ev = s.get(timeout=5)
            assert ev.class_ == "py:race:tick"
        for s in subs:
            s.close()


def test_closed_subscriptions_leave_nothing_behind(client, daemon):
    # Events still in flight for a subscription this client closed are
    # dropped, not kept as early events for a subscription to come: kept,
    # they grew without bound (and crowded out the next one's early events).
    with flooding(daemon, "py:leak:tick"):
        for _ in range(30):
            s = client.events.subscribe(pattern="py:leak:*")
            s.get(timeout=5)
            s.close()
        time.sleep(0.3)  # what was in flight has arrived
        with client._lock:
            left = sum(len(v) for v in client._early.values())
        assert left == 0 and client._early_n == 0, (left, client._early_n)


def test_provider(client, daemon):
    seen = []

    def handler(params, inv):
        seen.append(inv.caller)
        if params.get("fail"):
            raise cc.NotFoundError("no such thing", data={"k": 1})
        if params.get("crash"):
            raise RuntimeError("boom")
        return {"sum": params["a"] + params["b"]}

    with client.commands.provide("pytest/add-numbers", handler, description="adds") as prov:
        assert prov.name == "pytest/add-numbers"
        with Client(daemon.socket) as caller:
            assert caller.commands.execute(command="pytest/add-numbers", params={"a": 2**62, "b": 2**62}) == {"sum": 2**63}
            with pytest.raises(cc.NotFoundError) as ei:
                caller.commands.execute(command="pytest/add-numbers", params={"fail": True})
            assert ei.value.code == "not_found" and ei.value.data == {"k": 1}
            with pytest.raises(cc.InternalError):
                caller.commands.execute(command="pytest/add-numbers", params={"crash": True})
            listed = {c.name: c for c in caller.commands.list()}
            assert listed["pytest/add-numbers"].natural_scope == cc.Scope.ENVIRONMENT
        assert seen
    with Client(daemon.socket) as caller:
        with pytest.raises(cc.UnknownMethodError):
            caller.commands.execute(command="pytest/add-numbers", params={"a": 1, "b": 2})


def test_bad_calls_have_typed_codes(client):
    with open(BAD_CALLS) as f:
        cases = json.load(f)
    for case in cases:
        for b in case.get("before", []):
            client.call(b["method"], b["params"])
        with pytest.raises(cc.ContinuumError) as ei:
            client.call(case["method"], case["params"])
        assert ei.value.code == case["code"], case["what"]
        assert type(ei.value) is cc.ERRORS[case["code"]]
    # the generated methods raise the same
    with pytest.raises(cc.InvalidArgumentError):
        client.events.declare_class(name="py:bad", schema_version="")


def _wait_reconnected(ping, why):
    """Pings until the client answers (it reconnected); why() says what failed."""
    deadline = time.monotonic() + 10
    while True:
        try:
            ping()
            return
        except cc.UnavailableError:
            assert time.monotonic() < deadline, why()
            time.sleep(0.05)


def test_reconnect(own_daemon):
    with Client(own_daemon.socket) as c:
        c.commands.provide("pytest/still-here", lambda p: "yes")
        sub = c.events.subscribe(pattern="py:after:*")
        own_daemon.stop()
        with pytest.raises(cc.UnavailableError):
            c.kernel.ping()
        own_daemon.start()
        _wait_reconnected(c.kernel.ping, lambda: "no reconnect")
        # the command is provided again and the subscription resumed
        with Client(own_daemon.socket) as other:
            for _ in range(100):
                if "pytest/still-here" in [x.name for x in other.commands.list()]:
                    break
                time.sleep(0.05)
            assert other.commands.execute(command="pytest/still-here") == "yes"
            for _ in range(100):
                if sub.id and sub.id in c._subs:
                    break
                time.sleep(0.05)
            other.events.emit(name="py:after:restart", payload=1)
            assert sub.get(timeout=5).payload == 1



def test_reconnect_lost_again_while_restoring(own_daemon):
    # The first redial's connection is gone before restore's calls are
    # answered; the client must dial again, not stay down, and keep its
    # subscription and command for the connection that holds.
    with Client(own_daemon.socket) as c:
        dials = []
        real_dial = c._dial

        def dial():
            s = real_dial()
            dials.append(s)
            if len(dials) == 1:
                s.shutdown(socket.SHUT_RDWR)
            return s

        c._dial = dial
        c.commands.provide("pytest/restored", lambda p: "yes")
        sub = c.events.subscribe(pattern="py:restored:*")
        own_daemon.stop()
        own_daemon.start()
        _wait_reconnected(c.kernel.ping, lambda: f"no reconnect after {len(dials)} dials")
        assert len(dials) >= 2
        with Client(own_daemon.socket) as other:
            for _ in range(100):
                if sub.id in c._subs and "pytest/restored" in [x.name for x in other.commands.list()]:
                    break
                time.sleep(0.05)
            assert other.commands.execute(command="pytest/restored") == "yes"
            other.events.emit(name="py:restored:after", payload=2)
            assert sub.get(timeout=5).payload == 2


def test_async_reconnect_lost_again_while_restoring(own_daemon):
    async def main():
        async with AsyncClient(own_daemon.socket) as c:
            dials = []
            real_dial = c._dial

            async def dial():
                reader, writer = await real_dial()
                dials.append(writer)
                if len(dials) == 1:
                    writer.transport.get_extra_info("socket").shutdown(socket.SHUT_RDWR)
                return reader, writer

            c._dial = dial
            sub = await c.events.subscribe(pattern="py:arestored:*")
            own_daemon.stop()
            own_daemon.start()
            deadline = time.monotonic() + 10
            while True:
                try:
                    await c.kernel.ping()
                    break
                except cc.UnavailableError:
                    assert time.monotonic() < deadline, f"no reconnect after {len(dials)} dials"
                    await asyncio.sleep(0.05)
            assert len(dials) >= 2
            async with AsyncClient(own_daemon.socket) as other:
                for _ in range(100):
                    if sub.id in c._subs:
                        break
                    await asyncio.sleep(0.05)
                await other.events.emit(name="py:arestored:after", payload=3)
                got = await asyncio.wait_for(sub.__anext__(), 5)
                assert got.payload == 3

    asyncio.run(main())

def test_unreachable_daemon_is_typed(tmp_path):
    with pytest.raises(cc.UnavailableError):
        Client(str(tmp_path / "nobody.sock"), connect_timeout=0.5)


def test_unreachable_daemon_says_how_to_start_it(tmp_path):
    # The same hint as the CLI's, from both clients, when no socket is there.
    path = str(tmp_path / "nobody.sock")
    with pytest.raises(cc.UnavailableError) as sync_err:
        Client(path, connect_timeout=0.5)

    async def dial():
        await AsyncClient(path, connect_timeout=0.5).connect()

    with pytest.raises(cc.UnavailableError) as async_err:
        asyncio.run(dial())
    for e in (sync_err.value, async_err.value):
        assert path in str(e) and "is continuumd running?" in str(e) and str(e).startswith("unavailable: ")


def test_event_timeout_is_deadline_exceeded(client):
    # As TypeScript's nextEvent(timeoutMs) rejects with DeadlineExceededError;
    # still a TimeoutError for code that caught that.
    with client.events.subscribe(pattern="nobody:*") as sub:
        with pytest.raises(cc.DeadlineExceededError) as e:
            sub.get(timeout=0.05)
        assert isinstance(e.value, TimeoutError) and e.value.code == "deadline_exceeded"


def test_async_client(daemon):
    async def main():
        async with AsyncClient(daemon.socket) as c:
            assert (await c.kernel.ping()).ts > 0
            await c.events.declare_class(name="py:async:ev", schema_version="v1")

            async def handler(params, inv):
                await asyncio.sleep(0)
                if params == "bad":
                    raise cc.InvalidArgumentError("bad params")
                return params * 2

            async with await c.commands.provide("pytest/async-double", handler):
                async with AsyncClient(daemon.socket) as other:
                    assert await other.commands.execute(command="pytest/async-double", params=21) == 42
                    with pytest.raises(cc.InvalidArgumentError):
                        await other.commands.execute(command="pytest/async-double", params="bad")
                    sub = await c.events.subscribe(pattern="py:async:*")
                    results = await asyncio.gather(*[other.events.emit(name="py:async:ev", payload=i) for i in range(50)])
                    assert len({r.id for r in results}) == 50
                    got = []
                    async for ev in sub:
                        got.append(ev.payload)
                        if len(got) == 50:
                            break
                    assert sorted(got) == list(range(50))
                    await sub.close()
                    with pytest.raises(cc.NotFoundError):
                        await other.events.unsubscribe(subscription="nope")
                    with pytest.raises(cc.UnknownMethodError):
                        await other.call("no/such-method")

    asyncio.run(main())


def test_concurrent_sync_callers(client):
    errs = []

    def work():
        try:
            for _ in range(200):
                assert client.kernel.ping().ts > 0
        except Exception as e:  # pragma: no cover
            errs.append(e)

    ts = [threading.Thread(target=work) for _ in range(16)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errs


def test_concurrent_callers_mixed_sizes(client, daemon):
    # Requests from many threads are written in batches; each must still be
    # framed whole and answered to its own caller.
    client.events.declare_class(name="py:batch:ev", schema_version="v1")
    errs = []

    def work(i):
        try:
            for j in range(50):
                payload = {"i": i, "j": j, "big": "x" * (j * 4096 if i % 4 == 0 else j), "n": 2**63 - 1 - j}
                r = client.events.emit(name="py:batch:ev", payload=payload)
                assert r.id
                assert client.kernel.ping().ts > 0
        except Exception as e:  # pragma: no cover
            errs.append(e)

    ts = [threading.Thread(target=work, args=(i,)) for i in range(16)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
        assert not t.is_alive()
    assert not errs


def test_concurrent_callers_across_restart(own_daemon):
    # Calls in flight when the daemon goes away fail with UnavailableError
    # (none hangs), and calls succeed again once it is back.
    with Client(own_daemon.socket) as c:
        stop = threading.Event()
        bad = []
        counts = [0] * 8

        def work(i):
            while not stop.is_set():
                try:
                    c.call("kernel/ping", timeout=10)
                    counts[i] += 1
                except cc.UnavailableError:
                    time.sleep(0.01)
                except Exception as e:  # pragma: no cover
                    bad.append(e)
                    return

        ts = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for t in ts:
            t.start()
        time.sleep(0.3)
        own_daemon.stop()
        time.sleep(0.3)
        own_daemon.start()
        deadline = time.monotonic() + 10
        before = sum(counts)
        while sum(counts) < before + 500:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        stop.set()
        for t in ts:
            t.join(15)
            assert not t.is_alive()
        assert not bad
        assert c.kernel.ping().ts > 0



def test_call_timeout_is_typed(client, daemon):
    with client.commands.provide("pytest/slow", lambda p: time.sleep(1.0) or "late"):
        with Client(daemon.socket) as other:
            t0 = time.monotonic()
            with pytest.raises(cc.DeadlineExceededError):
                other.call("commands/execute", {"command": "pytest/slow"}, timeout=0.2)
            assert time.monotonic() - t0 < 0.9
            assert other.kernel.ping().ts > 0


def test_chat_send_and_history(client, daemon):
    # The daemon declares chat:posted itself (package chat); a room is its channel.
    room = "py-chat-room"
    with Client(daemon.socket) as other:
        first = client.chat.send(room_id=room, text="hello from python")
        assert first.id and first.seq > 0 and first.channel == room
        other.chat.send(room_id=room, text="an answer", reply_to=first.id, mentions=["someone"])
        h = other.chat.history(room_id=room)
        assert isinstance(h, cc.ChatHistoryResult) and h.next is None and h.cursor >= first.seq
        assert [m.text for m in h.messages] == ["hello from python", "an answer"]
        assert h.messages[0].id == first.id and h.messages[0].sender != h.messages[1].sender
        assert h.messages[1].reply_to == first.id and h.messages[1].mentions == ["someone"]
        with pytest.raises(cc.InvalidArgumentError):
            client.chat.send(room_id=room, text="   ")
        with pytest.raises(cc.InvalidArgumentError):
            client.chat.history(room_id=room, limit=501)
