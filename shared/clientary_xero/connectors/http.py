"""Where connector clients get their httpx transport.

In Lambda this is ``None`` (httpx's own network transport). The local runner and the tests install
a transport (a sandbox, possibly wrapped in a recorder) so that real httpx and authlib code runs
against a local fake at the transport level.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

_transport: httpx.BaseTransport | None = None


def default_timeout() -> httpx.Timeout:
    """20 s a request, 5 s to connect. A function, so httpx is imported by the first request, not
    by a handler that builds a client only to read its tenant id (a skipped contact step)."""
    import httpx

    return httpx.Timeout(20.0, connect=5.0)


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
    import httpx

    transport = get_transport()
    if transport is not None:
        kwargs.setdefault("transport", transport)
    kwargs.setdefault("timeout", default_timeout())
    return httpx.Client(**kwargs)  # type: ignore[arg-type]
