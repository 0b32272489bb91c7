"""The synchronous client: one Unix socket connection, a reader thread, and
calls that block the calling thread until their reply. Safe to share between
threads; calls from many threads are in flight at once on the one connection.
Written by hand; the method groups (client.events, client.commands, ...) are
generated."""

from __future__ import annotations

import itertools
import queue
import random
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
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


class _Pending:
    __slots__ = ("lock", "result", "error", "hook")

    def __init__(self, hook: Optional[Callable[[Any], None]] = None):
        self.lock = threading.Lock()
        self.lock.acquire()
        self.result: Any = None
        self.error: Optional[BaseException] = None
        self.hook = hook


class Subscription(SubscriptionBase):
    """Events of one events/subscribe, as an iterator of Event. Iteration ends
    when the subscription or the client is closed. Use it as a context manager,
    or call close(), to unsubscribe."""

    def __init__(self, client: "Client", params: Dict[str, Any]):
        q: "queue.SimpleQueue[Any]" = queue.SimpleQueue()
        super().__init__(client, params, q, q.put)

    def __iter__(self) -> "Subscription":
        return self

    def __next__(self) -> g.Event:
        ev = self._q.get()
        if ev is END:
            self._q.put(END)
            raise StopIteration
        return ev

    def get(self, timeout: Optional[float] = None) -> g.Event:
        """The next event; EventTimeout (a DeadlineExceededError and a TimeoutError) after timeout seconds, StopIteration once closed."""
        try:
            ev = self._q.get(timeout=timeout)
        except queue.Empty:
            raise EventTimeout(f"no event within {timeout}s") from None
        if ev is END:
            self._q.put(END)
            raise StopIteration
        return ev

    def close(self) -> None:
        if self._closed:
            return
        sid = self.id
        self._client._drop_subscription(self)
        try:
            self._client.call("events/unsubscribe", {"subscription": sid})
        except g.ContinuumError:
            pass
        self._end()

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class Provision(ProvisionBase):
    """A command this client provides. close() unregisters it."""

    def _call(self, params: Any, inv: Invocation) -> Any:
        if self._arity == 2:
            return self._handler(params, inv)
        return self._handler(params)

    def close(self) -> None:
        if self._client._provisions.get(self.name) is not self:
            return
        self._client._provisions.pop(self.name, None)
        try:
            self._client.call("commands/unregister", {"name": self.name})
        except g.ContinuumError:
            pass

    def __enter__(self) -> "Provision":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class Client(ClientBase):
    """A synchronous continuum client over the daemon's Unix socket.

    Client(socket_path=None) connects at once (to the daemon's default path when
    none is given) and raises UnavailableError if nobody answers. Methods live in
    groups: client.kernel.ping(), client.events.emit(name=..., payload=...),
    client.commands.execute(command=..., params={...}). Errors are raised as the
    ContinuumError subclass of their code.

    When the connection drops, calls in flight fail with UnavailableError and,
    with reconnect=True (the default), the client dials again with backoff,
    registers its commands again and resumes its subscriptions (from the last
    logged seq it saw, else from now).
    """

    def __init__(
        self,
        socket_path: Optional[str] = None,
        *,
        reconnect: bool = True,
        connect_timeout: float = 5.0,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        handler_threads: int = 8,
    ):
        self.socket_path = socket_path or default_socket_path()
        self.reconnect = reconnect
        self.connect_timeout = connect_timeout
        self.max_message_size = max_message_size
        self._handler_threads = handler_threads
        self._lock = threading.Lock()
        self._wlock = threading.Lock()
        # Requests waiting to be written, and whether a thread is writing them:
        # a caller that finds a writer busy leaves its request here and the
        # writer sends it with the next batch (one sendall for many calls).
        self._out: List[bytes] = []
        self._flushing = False
        # Calls waiting for their reply, by message id. Entries are added under
        # _wlock together with the request's write, and the whole map is swapped
        # out under _lock and _wlock when the connection is lost; single dict
        # operations elsewhere rely on the GIL.
        self._pending: Dict[int, _Pending] = {}
        self._ids = itertools.count(1)
        self._subs: Dict[str, Subscription] = {}
        self._early: Dict[str, List[Any]] = {}
        self._ended: Dict[str, None] = {}
        self._provisions: Dict[str, Provision] = {}
        self._invocations: Dict[str, Invocation] = {}
        self._executor: Optional[ThreadPoolExecutor] = None
        self._sock: Optional[socket.socket] = None
        self._gen = 0
        self._connected = threading.Condition(self._lock)
        self._closed = False
        self._reconnecting = False
        self._protocol_error: Optional[g.ContinuumError] = None
        for name, cls in g.SYNC_GROUPS.items():
            setattr(self, name, cls(self))
        self._attach(self._dial())

    # The generated groups, for type checkers.
    kernel: "g._KernelMethods"
    events: "g._EventsMethods"
    commands: "g._CommandsMethods"

    # --- connection ---

    def _dial(self) -> socket.socket:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.connect_timeout)
        try:
            s.connect(self.socket_path)
        except OSError as e:
            s.close()
            raise dial_error(self.socket_path, e) from e
        s.settimeout(None)
        return s

    def _attach(self, sock: socket.socket) -> None:
        with self._lock:
            with self._wlock:
                self._gen += 1
                gen = self._gen
                self._sock = sock
                self._out = []
            self._protocol_error = None
            self._connected.notify_all()
        t = threading.Thread(target=self._read_loop, args=(sock, gen), name="continuum-reader", daemon=True)
        t.start()

    def _wait_connected(self) -> int:
        with self._lock:
            if self._sock is None and not self._closed:
                self._connected.wait_for(lambda: self._sock is not None or self._closed, timeout=self.connect_timeout)
            if self._closed:
                raise g.UnavailableError("the client is closed")
            if self._sock is None:
                raise g.UnavailableError(f"not connected to continuumd at {self.socket_path}")
            return self._gen

    def _send(self, data: bytes, gen: int) -> None:
        with self._wlock:
            if self._sock is None or gen != self._gen:
                raise g.UnavailableError("connection lost")
            self._out.append(data)
            if self._flushing:
                return  # the thread writing now sends it with its next batch
            self._flushing = True
        self._flush()

    def _flush(self) -> None:
        """Writes what _out holds until it is empty; one thread at a time (the
        one that set _flushing). Requests other threads add meanwhile go out
        together in the next sendall. _out always belongs to the current
        socket: both change together under _wlock."""
        err: Optional[OSError] = None
        try:
            while True:
                with self._wlock:
                    sock, out, gen = self._sock, self._out, self._gen
                    if sock is None or not out:
                        self._flushing = False
                        break
                    self._out = []
                try:
                    sock.sendall(out[0] if len(out) == 1 else b"".join(out))
                except OSError as e:
                    # Calls waiting on this connection fail in _lost; go on
                    # with whatever a new connection has queued meanwhile.
                    err = e
                    self._lost(gen, f"write failed: {e}")
        except BaseException:
            # e.g. KeyboardInterrupt: the next caller writes what is left
            with self._wlock:
                self._flushing = False
            raise
        if err is not None:
            raise g.UnavailableError(f"connection lost: {err}") from err

    def _read_loop(self, sock: socket.socket, gen: int) -> None:
        up = unpacker(self.max_message_size)
        reason = "the daemon closed the connection"
        try:
            while True:
                data = sock.recv(262144)
                if not data:
                    break
                up.feed(data)
                wake: List[_Pending] = []
                try:
                    for msg in up:
                        self._dispatch(msg, gen, wake)
                finally:
                    # Callers are woken together once the chunk is read, just
                    # before this thread gives up the GIL in recv.
                    for p in wake:
                        p.lock.release()
        except msgpack.BufferFull:
            reason = f"a message from the daemon exceeds {self.max_message_size} bytes"
        except (OSError, ValueError, msgpack.UnpackException) as e:
            reason = f"connection failed: {e}"
        finally:
            self._lost(gen, reason)

    def _lost(self, gen: int, reason: str) -> None:
        with self._lock:
            if gen != self._gen or self._sock is None:
                return
            with self._wlock:
                sock, self._sock = self._sock, None
                self._out = []
                pending, self._pending = self._pending, {}
            perr = self._protocol_error
            invs, self._invocations = self._invocations, {}
            retry = self.reconnect and not self._closed and not self._reconnecting
            if retry:
                self._reconnecting = True
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()
        for inv in invs.values():
            inv._cancel()
        for p in pending.values():
            p.error = perr or g.UnavailableError(f"connection to continuumd lost: {reason}")
            p.lock.release()
        if retry:
            threading.Thread(target=self._reconnect_loop, name="continuum-reconnect", daemon=True).start()
        elif not self.reconnect or self._closed:
            for s in list(self._subs.values()):
                s._end()

    def _reconnect_loop(self) -> None:
        delay = 0.05
        while not self._closed:
            time.sleep(delay * (0.5 + random.random()))
            try:
                sock = self._dial()
            except g.UnavailableError:
                delay = min(delay * 2, 2.0)
                continue
            self._attach(sock)
            with self._lock:
                gen = self._gen
            self._restore(gen)
            with self._lock:
                # Lost again while restoring: _lost started no other
                # reconnect while this one runs, so this loop goes on.
                if self._sock is None or gen != self._gen:
                    delay = min(delay * 2, 2.0)
                    continue
                self._reconnecting = False
            return
        with self._lock:
            self._reconnecting = False

    def _lost_since(self, gen: int) -> bool:
        with self._lock:
            return self._sock is None or gen != self._gen

    def _restore(self, gen: int) -> None:
        """After a reconnect: provide the commands again and resume
        subscriptions. Once connection gen is lost, the rest is left for the
        next attempt (a call now would only wait for the connection that the
        reconnect loop, this caller, has to make)."""
        for prov in list(self._provisions.values()):
            if self._lost_since(gen):
                return
            try:
                self.call("commands/register", prov._register)
            except g.ContinuumError:
                pass
        with self._lock:
            subs = list(self._subs.values())
            self._subs.clear()
        for sub in subs:
            if self._lost_since(gen):
                with self._lock:
                    self._subs[sub.id] = sub
                continue
            params = dict(sub._params)
            if not params.get("durable") and sub._last_seq:
                params["from"] = sub._last_seq
            try:
                self.call("events/subscribe", params, _hook=self._sub_hook(sub))
            except g.UnavailableError:
                # The connection went again: kept for the next attempt.
                with self._lock:
                    self._subs[sub.id] = sub
            except g.ContinuumError:
                sub._end()

    def close(self) -> None:
        """Closes the connection; pending calls fail with UnavailableError and
        subscriptions end."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            gen = self._gen
            self._connected.notify_all()
        self._lost(gen, "the client was closed")
        for s in list(self._subs.values()):
            s._end()
        if self._executor is not None:
            self._executor.shutdown(wait=False)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # --- calls ---

    def call(self, method: str, params: Optional[Dict[str, Any]] = None, *, timeout: Optional[float] = None, _hook: Optional[Callable[[Any], None]] = None) -> Any:
        """Sends a request and returns its raw result (wire maps, camelCase keys).
        The generated groups wrap this with typed arguments and results."""
        # Connected already (the usual case): no need for the condition.
        gen = self._gen
        if self._sock is None or self._closed:
            gen = self._wait_connected()
        msgid = next(self._ids) & 0xFFFFFFFF
        try:
            data = msgpack.packb([REQUEST, msgid, method, encode_params(params)], use_bin_type=True)
        except (TypeError, ValueError, OverflowError) as e:
            raise g.InvalidArgumentError(f"params cannot be encoded: {e}") from e
        p = _Pending(_hook)
        with self._wlock:
            if self._sock is None or gen != self._gen:
                raise g.UnavailableError("connection lost")
            pending = self._pending
            pending[msgid] = p
            self._out.append(data)
            flush = not self._flushing
            self._flushing = True
        if flush:
            try:
                self._flush()
            except g.ContinuumError:
                # The write failed, maybe for requests after this one: this
                # call's own outcome, when it has one, still stands.
                if not p.lock.acquire(blocking=False):
                    pending.pop(msgid, None)
                    raise
                if p.error is not None:
                    raise p.error from None
                return p.result
        if not p.lock.acquire(timeout=-1 if timeout is None else timeout):
            pending.pop(msgid, None)
            raise g.DeadlineExceededError(f"{method}: no reply within {timeout}s")
        if p.error is not None:
            raise p.error
        return p.result

    def _sub_hook(self, sub: Subscription) -> Callable[[Any], None]:
        # Runs on the reader thread as the subscribe reply is read, before any
        # later message, so events that follow the reply find the subscription
        # and events that came before it (kept in _early) are handed over first.
        def hook(result: Any) -> None:
            r = g.SubscribeResult.from_wire(result)
            with self._lock:
                sub.id, sub.cursor = r.subscription, r.cursor
                self._subs[r.subscription] = sub
                early = self._take_early(r.subscription)
            for ev in early:
                sub._push(g.Event.from_wire(ev))
        return hook

    def _subscribe(self, params: Dict[str, Any]) -> Subscription:
        sub = Subscription(self, params)
        self.call("events/subscribe", params, _hook=self._sub_hook(sub))
        return sub

    def _drop_subscription(self, sub: Subscription) -> None:
        with self._lock:
            if self._subs.get(sub.id) is sub:
                del self._subs[sub.id]
            self._mark_ended(sub.id)

    def _provide(self, name: str, handler: Callable, *, natural_scope: Any = "environment", description: str = "", idempotent: bool = False) -> Provision:
        reg = {"name": name, "naturalScope": str(natural_scope), "description": description, "idempotent": idempotent}
        prov = Provision(self, name, handler, reg)
        if name in self._provisions:
            raise g.AlreadyExistsError(f"this client already provides {name!r}")
        self._provisions[name] = prov
        try:
            self.call("commands/register", reg)
        except BaseException:
            self._provisions.pop(name, None)
            raise
        return prov

    # --- incoming ---

    def _dispatch(self, raw: Any, gen: int, wake: List[_Pending]) -> None:
        msg = parse_message(raw)
        if msg[0] == RESPONSE:
            _, msgid, err, result = msg
            if gen != self._gen:
                return  # read before a reconnect; its call failed already
            p = self._pending.pop(msgid, None)
            if p is None:
                return
            if err is not None:
                p.error = g.error_from_wire(err)
            else:
                p.result = result
                if p.hook is not None:
                    try:
                        p.hook(result)
                    except Exception as e:  # a malformed reply must not kill the reader
                        p.error = g.InternalError(f"bad reply: {e}")
            wake.append(p)
        elif msg[0] == NOTIFICATION:
            self._notification(msg[1], decode_params(msg[2]))
        elif msg[0] == REQUEST:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self._handler_threads, thread_name_prefix="continuum-handler")
            self._executor.submit(self._serve, msg[1], msg[2], msg[3], gen)

    def _notification(self, method: str, d: Dict[str, Any]) -> None:
        if method == "events/event":
            sid = d.get("subscription")
            with self._lock:
                sub = self._subs.get(sid)
                if sub is None:
                    self._keep_early(sid, d.get("event"))
                    return
            sub._push(g.Event.from_wire(d.get("event")))
        else:
            self._other_notification(method, d)

    def _serve(self, msgid: int, method: str, params: Any, gen: int) -> None:
        inv = None
        try:
            prov, inv, cmd_params = self._begin_invocation(method, params)
            result = prov._call(cmd_params, inv)
            data = msgpack.packb([RESPONSE, msgid, None, result], use_bin_type=True)
        except BaseException as e:
            data = msgpack.packb([RESPONSE, msgid, error_to_wire(e), None], use_bin_type=True)
        finally:
            if inv is not None:
                self._invocations.pop(inv.id, None)
        try:
            self._send(data, gen)
        except g.ContinuumError:
            pass
