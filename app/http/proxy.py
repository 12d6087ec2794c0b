"""Who the reader is and which scheme they used, when a reverse proxy stands in between.

Only from a peer listed in DREAMTREE_TRUSTED_PROXIES (none by default) are the forwarded
headers believed; from anyone else they are ignored, so a reader can neither pick a
rate-limit bucket nor claim https. From a trusted proxy:

- `X-Forwarded-For` (every such header, in order, as one list): walking from the right, each
  entry a trusted proxy appended is believed; the reader is the right-most address that is
  not itself a trusted proxy (or the left-most one when the chain holds only proxies). An
  entry that is not an IP address (forged or garbled) ends the walk at the last hop believed.
  `1.2.3.4:80` and `[2001:db8::1]:80` are read as their addresses.
- `X-Forwarded-Proto`: the right-most value, `http` or `https` (what the nearest proxy saw).

The result is written into the ASGI scope (`client`, `scheme`) before anything reads it, so
rate limits (`request.client`), Secure cookies (`request.scope["scheme"]`) and everything else
see the reader. The peer's own address is kept under PEER for /metrics, which answers loopback
peers that are not proxies (a request relayed by a local proxy is anyone's).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any, cast

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

PEER = "dreamtree.peer"  # the scope key holding the TCP peer's address, as the server gave it
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_address(text: str) -> Address | None:
    """An IP address, with a port or IPv6 brackets allowed around it; None for anything else."""
    text = text.strip()
    if text.startswith("[") and "]" in text:
        text = text[1:text.index("]")]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class TrustedProxies:
    def __init__(self, networks: Iterable[str] = ()) -> None:
        self.networks = tuple(ipaddress.ip_network(n, strict=False) for n in networks)

    @classmethod
    def parse(cls, text: str) -> TrustedProxies:
        from app.config import parse_trusted_proxies

        return cls(parse_trusted_proxies(text))

    def __bool__(self) -> bool:
        return bool(self.networks)

    def __contains__(self, host: object) -> bool:
        if not self.networks or not isinstance(host, str):
            return False
        address = parse_address(host)
        return address is not None and any(address in network for network in self.networks)


def resolve(scope: Scope, proxies: TrustedProxies) -> None:
    """Record the peer under PEER and, when it is a trusted proxy, put the reader's address
    and scheme into the scope."""
    raw = cast("dict[str, Any]", scope)
    client = raw.get("client")
    peer = client[0] if client else None
    raw[PEER] = peer
    if peer is None or peer not in proxies:
        return
    forwarded: list[str] = []
    proto: str | None = None
    for name, value in raw.get("headers", ()):
        if name == b"x-forwarded-for":
            forwarded.extend(value.decode("latin-1").split(","))
        elif name == b"x-forwarded-proto":
            proto = value.decode("latin-1")
    reader = peer
    for entry in reversed([e for e in (f.strip() for f in forwarded) if e]):
        address = parse_address(entry)
        if address is None:
            break
        reader = str(address)
        if reader not in proxies:
            break
    raw["client"] = (reader, 0)
    if proto is not None:
        scheme = proto.split(",")[-1].strip().lower()
        if scheme in ("http", "https"):
            raw["scheme"] = scheme


def forwarded_middleware_factory(proxies: TrustedProxies) -> Any:
    """The outermost middleware: every later one, and every handler, sees the reader."""

    def forwarded_middleware(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == ScopeType.HTTP:
                resolve(scope, proxies)
            await app(scope, receive, send)

        return middleware

    return forwarded_middleware


def peer_of(scope: Scope) -> str | None:
    """The TCP peer's address (before any forwarded header was believed)."""
    raw = cast("dict[str, Any]", scope)
    if PEER in raw:
        return cast("str | None", raw[PEER])
    client = raw.get("client")
    return client[0] if client else None
