"""Pieces both clients share: the default socket path, the message codec, the
conversion of handler outcomes into wire replies, and the state and handling
that the sync and async subscriptions, provisions and clients have alike.
Written by hand."""

from __future__ import annotations

import inspect
import os
import stat
from typing import Any, Callable, Dict, Optional, Tuple

import msgpack

from ._generated import ContinuumError, DeadlineExceededError, InternalError, UnavailableError, UnknownMethodError, error_from_wire

REQUEST, RESPONSE, NOTIFICATION = 0, 1, 2

DEFAULT_MAX_MESSAGE_SIZE = 16 << 20
SOCKET_NAME = "continuumd.sock"


def default_socket_path() -> str:
    """Where continuumd listens when no --socket is given, computed the way the
    daemon computes it: $XDG_RUNTIME_DIR/continuum/continuumd.sock; else
    /run/user/<uid>/continuum/continuumd.sock when that folder is this user's
    and private; else $TMPDIR/continuum-<uid>/continuumd.sock."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return os.path.join(runtime, "continuum", SOCKET_NAME)
    uid = os.getuid()
    run = f"/run/user/{uid}"
    try:
        st = os.stat(run)
        if stat.S_ISDIR(st.st_mode) and st.st_uid == uid and st.st_mode & 0o077 == 0:
            return os.path.join(run, "continuum", SOCKET_NAME)
    except OSError:
        pass
    tmp = os.environ.get("TMPDIR") or "/tmp"
    return os.path.join(tmp, f"continuum-{uid}", SOCKET_NAME)


class EventTimeout(DeadlineExceededError, TimeoutError):
    """No event within a subscription's get(timeout): deadline_exceeded, as the
    TypeScript client's nextEvent(timeoutMs) rejects with, and still the
    builtin TimeoutError that callers caught before."""


# The hints the CLI gives for the same failures (cmd/continuum/conn.go), so
# that a program's user reads the same advice.
HINT_NOT_RUNNING = "is continuumd running? start it with make run (or bin/continuumd), or pass socket_path= the daemon's --socket"
HINT_PERMISSION = "only the daemon's own user (and root) may connect to its socket"


def dial_error(path: str, exc: BaseException) -> UnavailableError:
    """The UnavailableError for a failed dial of path: what failed, then how to
    fix it (a missing socket or nobody listening: start the daemon)."""
    if isinstance(exc, PermissionError):
        hint = HINT_PERMISSION
    elif isinstance(exc, (FileNotFoundError, ConnectionRefusedError)):
        hint = HINT_NOT_RUNNING
    else:
        hint = ""
    msg = f"cannot connect to continuumd at {path}: {exc or type(exc).__name__}"
    return UnavailableError(msg + (f"; {hint}" if hint else ""))


def packer() -> msgpack.Packer:
    return msgpack.Packer(use_bin_type=True, autoreset=True)


def unpacker(max_size: int) -> msgpack.Unpacker:
    # raw=False: strings are str, binaries bytes; strict_map_key=False keeps
    # maps with non-string keys in payloads readable.
    return msgpack.Unpacker(raw=False, max_buffer_size=max_size, strict_map_key=False)


def encode_params(params: Optional[Dict[str, Any]]) -> list:
    """params travel as an array holding exactly one map; empty means {}."""
    return [params] if params else []


def decode_params(params: Any) -> Dict[str, Any]:
    if isinstance(params, list):
        if not params:
            return {}
        if len(params) == 1 and isinstance(params[0], dict):
            return params[0]
    if params is None:
        return {}
    raise ValueError("params must be an array holding one map")


def error_to_wire(exc: BaseException) -> Dict[str, Any]:
    """The wire error of an exception a command handler raised."""
    if isinstance(exc, ContinuumError):
        e: Dict[str, Any] = {"code": str(exc.code), "message": exc.message}
        if exc.data is not None:
            e["data"] = exc.data
        return e
    return {"code": InternalError.code, "message": f"{type(exc).__name__}: {exc}"}


def handler_arity(handler: Callable) -> int:
    """How many positional arguments a command handler takes: 1 (params) or 2
    (params, invocation)."""
    try:
        sig = inspect.signature(handler)
    except (TypeError, ValueError):
        return 1
    n = 0
    for p in sig.parameters.values():
        if p.kind == p.VAR_POSITIONAL:
            return 2
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            n += 1
    return 2 if n >= 2 else 1

END = object()
"""What a subscription's queue yields once it is closed (and yields again, for
any other reader)."""


class SubscriptionBase:
    """The state a sync or async subscription shares: its id, resume cursor,
    drop count and the events queued for its reader. The subclass gives the
    queue and how to put on it without waiting."""

    def __init__(self, client: Any, params: Dict[str, Any], q: Any, put: Callable[[Any], None]):
        self._client = client
        self._params = params
        self._q = q
        self._put = put
        self.id = ""
        self.cursor = 0
        self.dropped = 0
        "events the daemon dropped because this subscriber fell behind (events/lagged)"
        self._last_seq = 0
        self._closed = False

    def _push(self, ev: Any) -> None:
        if ev.seq:
            self._last_seq = max(self._last_seq, ev.seq)
        self._put(ev)

    def _end(self) -> None:
        self._closed = True
        self._put(END)


class ProvisionBase:
    """What a sync or async provided command keeps: its name, handler (called
    with params, or with params and the Invocation when it takes two) and
    registration params, renewed after a reconnect."""

    def __init__(self, client: Any, name: str, handler: Callable, register: Dict[str, Any]):
        self._client = client
        self.name = name
        self._handler = handler
        self._arity = handler_arity(handler)
        self._register = register


class Invocation:
    """One call of a provided command: who called, by when, and whether it was
    cancelled (the caller went away or its deadline passed)."""

    __slots__ = ("id", "command", "caller", "deadline_ms", "cancelled", "_on_cancel")

    def __init__(self, id: str, command: str, caller: str, deadline_ms: int):
        self.id = id
        self.command = command
        self.caller = caller
        self.deadline_ms = deadline_ms
        self.cancelled = False
        self._on_cancel: Optional[Callable[[], None]] = None

    def _cancel(self) -> None:
        self.cancelled = True
        cb = self._on_cancel
        if cb is not None:
            cb()


def parse_message(msg: Any) -> Tuple:
    """Checks a message's shape; raises ValueError on anything else."""
    if not isinstance(msg, (list, tuple)) or not msg:
        raise ValueError("message is not an array")
    t = msg[0]
    if t == REQUEST and len(msg) == 4 and isinstance(msg[1], int) and isinstance(msg[2], str):
        return (REQUEST, msg[1], msg[2], msg[3])
    if t == RESPONSE and len(msg) == 4 and isinstance(msg[1], int):
        return (RESPONSE, msg[1], msg[2], msg[3])
    if t == NOTIFICATION and len(msg) == 3 and isinstance(msg[1], str):
        return (NOTIFICATION, msg[1], msg[2])
    raise ValueError("message has the wrong shape")


class ClientBase:
    """What the sync and async clients do alike with what the daemon sends:
    the notifications that need no waiting, and the start of serving a
    commands/handle for a provided command. The subclass owns _subs,
    _invocations, _provisions and _protocol_error, and delivers events/event
    itself (the sync client under its lock)."""

    _subs: Dict[str, Any]
    _invocations: Dict[str, Invocation]
    _provisions: Dict[str, Any]
    _protocol_error: Optional[ContinuumError]

    # Events that arrive before the reply to events/subscribe are kept for the
    # subscription to adopt (_early), at most EARLY_MAX in all. Events for a
    # subscription this client closed (its id in _ended, the newest
    # ENDED_MAX) are dropped: the daemon may still have some in flight, and
    # kept they would grow _early without bound.
    EARLY_MAX = 4096
    ENDED_MAX = 1024
    _early: Dict[str, list]
    _early_n: int = 0
    _ended: Dict[str, None]

    def _keep_early(self, sid: Any, ev: Any) -> None:
        if sid in self._ended or self._early_n >= self.EARLY_MAX:
            return
        self._early.setdefault(sid, []).append(ev)
        self._early_n += 1

    def _take_early(self, sid: Any) -> list:
        evs = self._early.pop(sid, [])
        self._early_n -= len(evs)
        return evs

    def _mark_ended(self, sid: Any) -> None:
        self._ended[sid] = None
        while len(self._ended) > self.ENDED_MAX:
            del self._ended[next(iter(self._ended))]
        self._take_early(sid)

    def _other_notification(self, method: str, d: Dict[str, Any]) -> None:
        if method == "events/lagged":
            sub = self._subs.get(d.get("subscription"))
            if sub is not None:
                sub.dropped += int(d.get("dropped") or 0)
        elif method == "commands/cancel":
            inv = self._invocations.get(d.get("invocation"))
            if inv is not None:
                inv._cancel()
        elif method == "kernel/protocol-error":
            self._protocol_error = error_from_wire(d)

    def _begin_invocation(self, method: str, params: Any) -> Tuple[Any, Invocation, Any]:
        """The provision a commands/handle request is for, its Invocation (now
        registered, for commands/cancel) and the command's params; raises the
        error to answer with instead."""
        if method != "commands/handle":
            raise UnknownMethodError(f"this client answers commands/handle only, not {method}")
        d = decode_params(params)
        prov = self._provisions.get(d.get("command"))
        if prov is None:
            raise UnavailableError(f"this client no longer provides {d.get('command')!r}")
        inv = Invocation(d.get("invocation") or "", d.get("command") or "", d.get("caller") or "", d.get("deadlineMs") or 0)
        self._invocations[inv.id] = inv
        return prov, inv, d.get("params")
