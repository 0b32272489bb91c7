"""Python client of continuumd.

    from continuum_client import Client
    with Client() as c:                      # the daemon's default socket path
        c.events.emit(name="chat:posted", payload={"text": "hi"})
        for ev in c.events.subscribe(pattern="chat:*"):
            print(ev.class_, ev.payload)

AsyncClient has the same surface with coroutines. Method groups, result
dataclasses, enums and one exception class per error code are generated from
the Go API types (continuum_client._generated); the transport is hand-written.
"""

from ._generated import *  # noqa: F401,F403  (types, enums, errors)
from ._generated import CATALOGUE, ERRORS, METHODS, PROTOCOL, ContinuumError, error_from_wire  # noqa: F401
from ._proto import EventTimeout, Invocation, default_socket_path  # noqa: F401
from .aio import AsyncClient, AsyncProvision, AsyncSubscription  # noqa: F401
from .client import Client, Provision, Subscription  # noqa: F401

__version__ = "0.1.0"
