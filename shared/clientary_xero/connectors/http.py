"""Where connector clients get their httpx transport.

In Lambda this is ``None`` (httpx's own network transport). The local runner and the tests install
a transport (a sandbox, possibly wrapped in a recorder) so that real httpx and authlib code runs
against a local fake at the transport level.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx

_transport: httpx.BaseTransport | None = None

DEFAULT_TIMEOUT = httpx.Timeout(20.0, connect=5.0)


def get_transport() -> httpx.BaseTransport | None:
    return _transport


def set_transport(transport: httpx.BaseTransport | None) -> None:
    global _transport
    _transport = transport


@contextmanager
def use_transport(transport: httpx.BaseTransport | None) -> Iterator[None]:
    previous = _transport
    set_transport(transport)
    try:
        yield
    finally:
        set_transport(previous)


def new_client(**kwargs: object) -> httpx.Client:
    """An httpx client on the installed transport (or the network)."""
    transport = get_transport()
    if transport is not None:
        kwargs.setdefault("transport", transport)
    kwargs.setdefault("timeout", DEFAULT_TIMEOUT)
    return httpx.Client(**kwargs)  # type: ignore[arg-type]
