"""Pieces both clients share: the default socket path, the message codec, and
the conversion of handler outcomes into wire replies. Written by hand."""

from __future__ import annotations

import inspect
import os
import stat
from typing import Any, Callable, Dict, Optional, Tuple

import msgpack

from ._generated import ContinuumError, InternalError

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
