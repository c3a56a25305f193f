"""Outbound safety of webhook deliveries: where this server agrees to send a request.

A webhook URL is chosen by a tenant, so a delivery is a request the server makes on a
stranger's behalf. Without care it reaches what only the server can reach: its own
loopback, the private network around it, a cloud provider's metadata service. So:

- `check_url` is the static check of a URL, made when an endpoint is created or changed:
  HTTPS only (unless ``RUSTOK_WEBHOOK_ALLOW_HTTP``), a host, no credentials in it, and a
  literal IP address or ``localhost`` only if it is public (unless
  ``RUSTOK_WEBHOOK_ALLOW_PRIVATE_ADDRESSES``);
- `resolve_checked`, for every connection a delivery opens, resolves the host and refuses
  it if ANY of its addresses is loopback, private, link-local, unspecified, multicast,
  reserved, shared (CGNAT, ``100.64.0.0/10``) or a metadata address; the connection then
  goes to an address that was checked, never through a second lookup that could answer
  differently (DNS rebinding). `resolve_destination` does the same for a whole URL and
  names the checked address (`Destination`);
- `address_refusal` says why one address is refused, `redact` takes secrets out of what
  a receiver answered before it is stored.

Examples:
    >>> check_url("https://hooks.example.com/in", allow_http=False, allow_private=False)
    >>> check_url("http://hooks.example.com/in", allow_http=False, allow_private=False)
    'it must use https'
    >>> check_url("https://10.0.0.7/in", allow_http=False, allow_private=False)
    'it names 10.0.0.7, a private address'
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Final, TypeAlias
from urllib.parse import urlsplit

__all__ = [
    "MAX_URL_LENGTH",
    "METADATA_ADDRESSES",
    "RESOLVER_THREADS",
    "Destination",
    "Resolver",
    "UnsafeDestinationError",
    "address_refusal",
    "check_url",
    "redact",
    "resolve_checked",
    "resolve_destination",
    "system_resolver",
]

MAX_URL_LENGTH: Final = 2048
"""The longest endpoint URL accepted (the column's size)."""
RESOLVER_THREADS: Final = 4
"""Host lookups of `system_resolver` under way at once, per process."""

METADATA_ADDRESSES: Final = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack, ...
        ipaddress.ip_address("fd00:ec2::254"),  # AWS over IPv6
        ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
    }
)
"""Cloud metadata services: refused like private addresses, and named as such."""

_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT (RFC 6598)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # an IPv4 address inside IPv6 (RFC 6052)
_LOCAL_NAMES: Final = ("localhost", "localhost.", "localhost.localdomain")

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver: TypeAlias = Callable[[str, int], Awaitable[Sequence[str]]]
"""Resolves a host name and port to the addresses to connect to (as text)."""


class UnsafeDestinationError(Exception):
    """A delivery was refused before any request left: its URL or one of the addresses
    its host resolves to is not one this server sends to.

    Attributes:
        reason: what is wrong, readable by the tenant (``"it resolves to 10.0.0.7, a
            private address"``).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(f"refused: {reason}")
        self.reason: str = reason


def address_refusal(address: IPAddress) -> str | None:
    """Why ``address`` may not receive a delivery (``None``: it may).

    An IPv4 address written inside IPv6 (``::ffff:10.0.0.1``, ``64:ff9b::a00:1``) is
    judged as that IPv4 address.

    Examples:
        >>> address_refusal(ipaddress.ip_address("169.254.169.254"))
        'a cloud metadata address'
        >>> address_refusal(ipaddress.ip_address("93.184.215.14")) is None
        True
    """
    if isinstance(address, ipaddress.IPv6Address):
        inner = address.ipv4_mapped
        if inner is None and address in _NAT64:
            inner = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if inner is not None:
            return address_refusal(inner)
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    shared = isinstance(address, ipaddress.IPv4Address) and address in _SHARED
    kinds = (
        (address.is_loopback, "a loopback address"),
        (address.is_unspecified, "an unspecified address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (shared, "a shared (CGNAT) address"),
        (address.is_private, "a private address"),
        (address.is_reserved, "a reserved address"),
        (not address.is_global, "not a public address"),
    )
    return next((why for refused, why in kinds if refused), None)


def _literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def check_url(url: str, *, allow_http: bool, allow_private: bool) -> str | None:
    """Why ``url`` may not be an endpoint's URL (``None``: it may), without resolving it.

    Checked: its length, an ``https`` scheme (or ``http`` with ``allow_http``), a host,
    no user name or password in it, a valid port, and, unless ``allow_private``, a host
    that is neither ``localhost`` nor a literal address `address_refusal` refuses. A host
    name that resolves to such an address is refused at each attempt
    (`resolve_destination`).

    Args:
        url: the URL to check.
        allow_http: accept ``http://`` (``RUSTOK_WEBHOOK_ALLOW_HTTP``).
        allow_private: accept loopback, private and metadata addresses
            (``RUSTOK_WEBHOOK_ALLOW_PRIVATE_ADDRESSES``).

    Returns:
        The reason, a phrase such as ``"it must use https"``, or ``None``.
    """
    if len(url) > MAX_URL_LENGTH:
        return f"it is longer than {MAX_URL_LENGTH} characters"
    if any(char.isspace() or ord(char) < 0x20 for char in url):
        return "it contains spaces or control characters"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "it is not a valid URL"
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme.lower() not in schemes:
        return "it must use http or https" if allow_http else "it must use https"
    if parts.username is not None or parts.password is not None:
        return "it must not hold a user name or password"
    host = parts.hostname
    if not host:
        return "it has no host"
    if port == 0:
        return "its port must be 1-65535"
    if allow_private:
        return None
    if host.lower() in _LOCAL_NAMES or host.lower().endswith(".localhost"):
        return f"it names {host}, a loopback address"
    address = _literal_address(host)
    if address is not None:
        refusal = address_refusal(address)
        if refusal is not None:
            return f"it names {address}, {refusal}"
    return None


@dataclass(frozen=True, slots=True)
class Destination:
    """Where one attempt connects: the checked address, and what names the host.

    Attributes:
        url: the URL with its host replaced by the checked address (what is connected
            to: no second lookup).
        host_header: the ``Host`` header, the URL's own host (and port if not the
            scheme's default).
        server_name: the name TLS verifies the certificate against and sends as SNI
            (``None`` for a plain-HTTP URL or a literal address).
        address: the checked address.
    """

    url: str
    host_header: str
    server_name: str | None
    address: str


_resolver_threads: ThreadPoolExecutor | None = None


def _resolver_pool() -> ThreadPoolExecutor:
    # Lookups of the system's resolver block a thread, for as long as an unreachable DNS
    # server makes them: in threads of their own, never the loop's default executor,
    # which the database's waits for SQLite's write lock use.
    global _resolver_threads
    if _resolver_threads is None:
        _resolver_threads = ThreadPoolExecutor(RESOLVER_THREADS, "rustok-webhook-dns")
    return _resolver_threads


async def system_resolver(host: str, port: int) -> Sequence[str]:
    """The addresses of ``host`` from the system's resolver (``getaddrinfo``, in a
    small pool of threads of its own, `RESOLVER_THREADS`), each once, in the resolver's
    order.

    Raises:
        OSError: the resolver's error (``socket.gaierror``: an unknown host).
    """
    loop = asyncio.get_running_loop()
    lookup = partial(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    infos = await loop.run_in_executor(_resolver_pool(), lookup)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def resolve_destination(
    url: str,
    *,
    allow_http: bool,
    allow_private: bool,
    resolver: Resolver = system_resolver,
) -> Destination:
    """Check ``url``, resolve its host and pick the address to connect to.

    Args:
        url: the endpoint's URL.
        allow_http: accept ``http://``.
        allow_private: accept loopback, private, link-local and metadata addresses.
        resolver: resolves a host (the system's by default).

    Raises:
        UnsafeDestinationError: the URL fails `check_url`, its host resolves to no
            address, or ANY of its addresses is refused by `address_refusal` (without
            ``allow_private``).
        OSError: the resolver failed (``socket.gaierror``): the host is unknown.
    """
    refusal = check_url(url, allow_http=allow_http, allow_private=allow_private)
    if refusal is not None:
        raise UnsafeDestinationError(refusal)
    parts = urlsplit(url)
    host = parts.hostname
    assert host is not None  # check_url refused a URL without one
    scheme = parts.scheme.lower()
    port = parts.port or (443 if scheme == "https" else 80)
    literal = _literal_address(host)
    addresses: Sequence[str] = [str(literal)] if literal is not None else []
    if literal is None:
        addresses = await resolve_checked(
            host, port, allow_private=allow_private, resolver=resolver
        )
    chosen = addresses[0]
    shown_host = f"[{host}]" if ":" in host else host
    default_port = (scheme == "https" and port == 443) or (scheme == "http" and port == 80)
    host_header = shown_host if default_port else f"{shown_host}:{port}"
    connect_host = f"[{chosen}]" if ":" in chosen else chosen
    netloc = connect_host if default_port else f"{connect_host}:{port}"
    target = parts._replace(scheme=scheme, netloc=netloc).geturl()
    server_name = host if scheme == "https" and literal is None else None
    return Destination(target, host_header, server_name, chosen)


async def resolve_checked(
    host: str, port: int, *, allow_private: bool, resolver: Resolver = system_resolver
) -> Sequence[str]:
    """The addresses of the host name ``host``, each checked: what a connection to it may
    use.

    Args:
        host: the host name (a literal address is `check_url`'s to judge).
        port: the port connected to.
        allow_private: accept loopback, private, link-local and metadata addresses.
        resolver: resolves a host (the system's by default).

    Raises:
        UnsafeDestinationError: ``host`` resolves to no address, or ANY of its addresses
            is refused by `address_refusal` (without ``allow_private``).
        OSError: the resolver failed (``socket.gaierror``): the host is unknown.
    """
    addresses = await resolver(host, port)
    if not addresses:
        raise UnsafeDestinationError(f"{host} resolves to no address")
    if not allow_private:
        _check_resolved(host, addresses)
    return addresses


def _check_resolved(host: str, addresses: Iterable[str]) -> None:
    for text in addresses:
        address = _literal_address(text)
        if address is None:
            raise UnsafeDestinationError(f"{host} resolves to {text!r}, not an address")
        refusal = address_refusal(address)
        if refusal is not None:
            raise UnsafeDestinationError(f"{host} resolves to {address}, {refusal}")


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret in ``secrets`` replaced by ``[redacted]``: a
    ``whsec_`` secret whole and without its prefix (what a receiver may echo back).

    Examples:
        >>> redact("got whsec_c2VjcmV0 and c2VjcmV0", ["whsec_c2VjcmV0"])
        'got [redacted] and [redacted]'
    """
    for secret in secrets:
        bare = secret.removeprefix("whsec_")
        for form in dict.fromkeys((secret, bare)):
            if len(form) >= 8:
                text = text.replace(form, "[redacted]")
    return text
