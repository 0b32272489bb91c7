"""The asyncio client: the same surface as Client, with coroutines. Written by
hand; the method groups (client.events, client.commands, ...) are generated."""

from __future__ import annotations

import asyncio
import inspect
import random
from typing import Any, Callable, Dict, List, Optional

import msgpack

from . import _generated as g
from ._proto import (
    DEFAULT_MAX_MESSAGE_SIZE,
    END,
    EventTimeout,
    NOTIFICATION,
    REQUEST,
    RESPONSE,
    ClientBase,
    Invocation,
    ProvisionBase,
    SubscriptionBase,
    decode_params,
    dial_error,
    default_socket_path,
    encode_params,
    error_to_wire,
    parse_message,
    unpacker,
)


class AsyncSubscription(SubscriptionBase):
    """Events of one events/subscribe, as an async iterator of Event. Iteration
    ends when the subscription or the client is closed. Use `async with`, or
    await close(), to unsubscribe."""

    def __init__(self, client: "AsyncClient", params: Dict[str, Any]):
        q: "asyncio.Queue[Any]" = asyncio.Queue()
        super().__init__(client, params, q, q.put_nowait)

    def __aiter__(self) -> "AsyncSubscription":
        return self

    async def __anext__(self) -> g.Event:
        ev = await self._q.get()
        if ev is END:
            self._q.put_nowait(END)
            raise StopAsyncIteration
        return ev

    async def get(self, timeout: Optional[float] = None) -> g.Event:
        """The next event; EventTimeout (a DeadlineExceededError and a TimeoutError) after timeout seconds, StopAsyncIteration once closed."""
        try:
            ev = await asyncio.wait_for(self._q.get(), timeout)
        except asyncio.TimeoutError:
            raise EventTimeout(f"no event within {timeout}s") from None
        if ev is END:
            self._q.put_nowait(END)
            raise StopAsyncIteration
        return ev

    async def close(self) -> None:
        if self._closed:
            return
        sid = self.id
        self._client._drop_subscription(self)
        try:
            await self._client.call("events/unsubscribe", {"subscription": sid})
        except g.ContinuumError:
            pass
        self._end()

    async def __aenter__(self) -> "AsyncSubscription":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()


class AsyncProvision(ProvisionBase):
    """A command this client provides. await close() unregisters it."""

    async def _call(self, params: Any, inv: Invocation) -> Any:
        r = self._handler(params, inv) if self._arity == 2 else self._handler(params)
        if inspect.isawaitable(r):
            r = await r
        return r

    async def close(self) -> None:
        if self._client._provisions.get(self.name) is not self:
            return
        self._client._provisions.pop(self.name, None)
        try:
            await self._client.call("commands/unregister", {"name": self.name})
        except g.ContinuumError:
            pass

    async def __aenter__(self) -> "AsyncProvision":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()


class AsyncClient(ClientBase):
    """An asyncio continuum client over the daemon's Unix socket.

    `async with AsyncClient(socket_path=None) as client:` (or `await
    client.connect()`) dials the daemon; the first call connects too. Methods
    live in groups, as coroutines: `await client.kernel.ping()`. Handlers given
    to client.commands.provide may be coroutine functions or plain functions
    (plain ones run on the event loop, so keep them short).

    Reconnects like Client: calls in flight fail with UnavailableError, then the
    client dials again with backoff, registers its commands again and resumes
    its subscriptions.
    """

    kernel: "g._AsyncKernelMethods"
    events: "g._AsyncEventsMethods"
    commands: "g._AsyncCommandsMethods"

    def __init__(
        self,
        socket_path: Optional[str] = None,
        *,
        reconnect: bool = True,
        connect_timeout: float = 5.0,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    ):
        self.socket_path = socket_path or default_socket_path()
        self.reconnect = reconnect
        self.connect_timeout = connect_timeout
        self.max_message_size = max_message_size
        self._pending: Dict[int, "asyncio.Future[Any]"] = {}
        self._hooks: Dict[int, Callable[[Any], None]] = {}
        self._next_id = 0
        self._subs: Dict[str, AsyncSubscription] = {}
        self._early: Dict[str, List[Any]] = {}
        self._ended: Dict[str, None] = {}
        self._provisions: Dict[str, AsyncProvision] = {}
        self._invocations: Dict[str, Invocation] = {}
        self._tasks: set = set()
        self._writer: Optional[asyncio.StreamWriter] = None
        self._reader_task: Optional[asyncio.Task] = None
        self._gen = 0
        self._connected: Optional[asyncio.Event] = None
        self._closed = False
        self._reconnect_task: Optional[asyncio.Task] = None
        self._protocol_error: Optional[g.ContinuumError] = None
        self._ever_connected = False
        for name, cls in g.ASYNC_GROUPS.items():
            setattr(self, name, cls(self))

    @classmethod
    async def open(cls, socket_path: Optional[str] = None, **kw: Any) -> "AsyncClient":
        c = cls(socket_path, **kw)
        await c.connect()
        return c

    async def connect(self) -> "AsyncClient":
        """Dials the daemon; raises UnavailableError if nobody answers."""
        if self._writer is None:
            await self._attach(*(await self._dial()))
        return self

    async def __aenter__(self) -> "AsyncClient":
        return await self.connect()

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    # --- connection ---

    async def _dial(self):
        try:
            return await asyncio.wait_for(asyncio.open_unix_connection(self.socket_path, limit=1 << 20), self.connect_timeout)
        except (OSError, asyncio.TimeoutError) as e:
            raise dial_error(self.socket_path, e) from e

    async def _attach(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._connected is None:
            self._connected = asyncio.Event()
        self._gen += 1
        self._writer = writer
        self._protocol_error = None
        self._ever_connected = True
        self._reader_task = asyncio.get_running_loop().create_task(self._read_loop(reader, writer, self._gen))
        self._connected.set()

    async def _wait_connected(self) -> int:
        if self._closed:
            raise g.UnavailableError("the client is closed")
        if not self._ever_connected:
            await self.connect()
        if self._writer is None:
            try:
                await asyncio.wait_for(self._connected.wait(), self.connect_timeout)  # type: ignore[union-attr]
            except asyncio.TimeoutError:
                raise g.UnavailableError(f"not connected to continuumd at {self.socket_path}") from None
            if self._closed or self._writer is None:
                raise g.UnavailableError("the client is closed")
        return self._gen

    def _send(self, data: bytes, gen: int) -> None:
        w = self._writer
        if w is None or gen != self._gen:
            raise g.UnavailableError("connection lost")
        w.write(data)

    async def _read_loop(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, gen: int) -> None:
        up = unpacker(self.max_message_size)
        reason = "the daemon closed the connection"
        try:
            while True:
                data = await reader.read(262144)
                if not data:
                    break
                up.feed(data)
                for msg in up:
                    self._dispatch(msg, gen)
                w = self._writer
                if w is not None and w.transport.get_write_buffer_size() > (1 << 20):
                    await w.drain()
        except msgpack.BufferFull:
            reason = f"a message from the daemon exceeds {self.max_message_size} bytes"
        except (OSError, ValueError, msgpack.UnpackException) as e:
            reason = f"connection failed: {e}"
        except asyncio.CancelledError:
            reason = "the client was closed"
        finally:
            self._lost(gen, reason)

    def _lost(self, gen: int, reason: str) -> None:
        if gen != self._gen or self._writer is None:
            return
        w, self._writer = self._writer, None
        self._connected.clear()  # type: ignore[union-attr]
        pending, self._pending = self._pending, {}
        self._hooks.clear()
        invs, self._invocations = self._invocations, {}
        try:
            w.close()
        except Exception:
            pass
        for inv in invs.values():
            inv._cancel()
        err = self._protocol_error or g.UnavailableError(f"connection to continuumd lost: {reason}")
        for f in pending.values():
            if not f.done():
                f.set_exception(err)
        if self.reconnect and not self._closed:
            if self._reconnect_task is None or self._reconnect_task.done():
                self._reconnect_task = asyncio.get_running_loop().create_task(self._reconnect_loop())
        else:
            for s in list(self._subs.values()):
                s._end()

    async def _reconnect_loop(self) -> None:
        delay = 0.05
        while not self._closed:
            await asyncio.sleep(delay * (0.5 + random.random()))
            try:
                conn = await self._dial()
            except g.UnavailableError:
                delay = min(delay * 2, 2.0)
                continue
            await self._attach(*conn)
            await self._restore()
            if self._writer is None:
                # Lost again while restoring: _lost started no other
                # reconnect while this one runs, so this loop goes on.
                delay = min(delay * 2, 2.0)
                continue
            return

    async def _restore(self) -> None:
        # Once the connection is lost again, the rest is left for the next
        # attempt: a call now would only wait for the connection that the
        # reconnect loop, this caller, has to make.
        for prov in list(self._provisions.values()):
            if self._writer is None:
                return
            try:
                await self.call("commands/register", prov._register)
            except g.ContinuumError:
                pass
        subs = list(self._subs.values())
        self._subs.clear()
        for sub in subs:
            if self._writer is None:
                self._subs[sub.id] = sub
                continue
            params = dict(sub._params)
            if not params.get("durable") and sub._last_seq:
                params["from"] = sub._last_seq
            try:
                await self.call("events/subscribe", params, _hook=self._sub_hook(sub))
            except g.UnavailableError:
                self._subs[sub.id] = sub  # the connection went again: kept for the next attempt
            except g.ContinuumError:
                sub._end()

    async def close(self) -> None:
        """Closes the connection; pending calls fail with UnavailableError and
        subscriptions end."""
        if self._closed:
            return
        self._closed = True
        if self._reconnect_task is not None:
            self._reconnect_task.cancel()
        self._lost(self._gen, "the client was closed")
        if self._reader_task is not None:
            self._reader_task.cancel()
            try:
                await self._reader_task
            except (asyncio.CancelledError, Exception):
                pass
        for s in list(self._subs.values()):
            s._end()
        for t in list(self._tasks):
            t.cancel()
        if self._connected is not None:
            self._connected.set()

    # --- calls ---

    async def call(self, method: str, params: Optional[Dict[str, Any]] = None, *, timeout: Optional[float] = None, _hook: Optional[Callable[[Any], None]] = None) -> Any:
        """Sends a request and returns its raw result (wire maps, camelCase keys)."""
        gen = await self._wait_connected()
        self._next_id = (self._next_id + 1) & 0xFFFFFFFF
        msgid = self._next_id
        try:
            data = msgpack.packb([REQUEST, msgid, method, encode_params(params)], use_bin_type=True)
        except (TypeError, ValueError, OverflowError) as e:
            raise g.InvalidArgumentError(f"params cannot be encoded: {e}") from e
        fut = asyncio.get_running_loop().create_future()
        self._pending[msgid] = fut
        if _hook is not None:
            self._hooks[msgid] = _hook
        try:
            self._send(data, gen)
        except g.ContinuumError:
            self._pending.pop(msgid, None)
            self._hooks.pop(msgid, None)
            raise
        if timeout is None:
            return await fut
        try:
            return await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            self._pending.pop(msgid, None)
            self._hooks.pop(msgid, None)
            raise g.DeadlineExceededError(f"{method}: no reply within {timeout}s") from None

    def _sub_hook(self, sub: AsyncSubscription) -> Callable[[Any], None]:
        def hook(result: Any) -> None:
            r = g.SubscribeResult.from_wire(result)
            sub.id, sub.cursor = r.subscription, r.cursor
            self._subs[r.subscription] = sub
            for ev in self._take_early(r.subscription):
                sub._push(g.Event.from_wire(ev))
        return hook

    async def _subscribe(self, params: Dict[str, Any]) -> AsyncSubscription:
        sub = AsyncSubscription(self, params)
        await self.call("events/subscribe", params, _hook=self._sub_hook(sub))
        return sub

    def _drop_subscription(self, sub: AsyncSubscription) -> None:
        if self._subs.get(sub.id) is sub:
            del self._subs[sub.id]
        self._mark_ended(sub.id)

    async def _provide(self, name: str, handler: Callable, *, natural_scope: Any = "environment", description: str = "", idempotent: bool = False) -> AsyncProvision:
        if name in self._provisions:
            raise g.AlreadyExistsError(f"this client already provides {name!r}")
        reg = {"name": name, "naturalScope": str(natural_scope), "description": description, "idempotent": idempotent}
        prov = AsyncProvision(self, name, handler, reg)
        self._provisions[name] = prov
        try:
            await self.call("commands/register", reg)
        except BaseException:
            self._provisions.pop(name, None)
            raise
        return prov

    # --- incoming ---

    def _dispatch(self, raw: Any, gen: int) -> None:
        msg = parse_message(raw)
        if msg[0] == RESPONSE:
            _, msgid, err, result = msg
            fut = self._pending.pop(msgid, None)
            hook = self._hooks.pop(msgid, None)
            if fut is None or fut.done():
                return
            if err is not None:
                fut.set_exception(g.error_from_wire(err))
                return
            if hook is not None:
                try:
                    hook(result)
                except Exception as e:
                    fut.set_exception(g.InternalError(f"bad reply: {e}"))
                    return
            fut.set_result(result)
        elif msg[0] == NOTIFICATION:
            self._notification(msg[1], decode_params(msg[2]))
        elif msg[0] == REQUEST:
            t = asyncio.get_running_loop().create_task(self._serve(msg[1], msg[2], msg[3], gen))
            self._tasks.add(t)
            t.add_done_callback(self._tasks.discard)

    def _notification(self, method: str, d: Dict[str, Any]) -> None:
        if method == "events/event":
            sid = d.get("subscription")
            sub = self._subs.get(sid)
            if sub is None:
                self._keep_early(sid, d.get("event"))
                return
            sub._push(g.Event.from_wire(d.get("event")))
        else:
            self._other_notification(method, d)

    async def _serve(self, msgid: int, method: str, params: Any, gen: int) -> None:
        inv = None
        try:
            prov, inv, cmd_params = self._begin_invocation(method, params)
            task = asyncio.current_task()
            if task is not None:
                inv._on_cancel = task.cancel
            result = await prov._call(cmd_params, inv)
            data = msgpack.packb([RESPONSE, msgid, None, result], use_bin_type=True)
        except asyncio.CancelledError:
            data = msgpack.packb([RESPONSE, msgid, {"code": "cancelled", "message": "the invocation was cancelled"}, None], use_bin_type=True)
        except BaseException as e:
            data = msgpack.packb([RESPONSE, msgid, error_to_wire(e), None], use_bin_type=True)
        finally:
            if inv is not None:
                self._invocations.pop(inv.id, None)
        try:
            self._send(data, gen)
        except g.ContinuumError:
            pass
