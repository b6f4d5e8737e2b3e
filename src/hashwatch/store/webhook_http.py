"""Sending a webhook request safely: which targets are allowed, the address pinned, errors
reduced to a reason class.

An admin key can register any URL, so without care the service would be a port scanner for
its own network: POST to ``http://10.0.0.5:6379/`` and read back "connection refused" or
"timeout". Hence:

* **targets**: a URL whose host is (or resolves to) a loopback, private, link-local, shared
  (100.64/10), multicast, reserved or unspecified address — IPv4 or IPv6, IPv4-mapped IPv6
  included — is refused, unless ``webhook_allow_hosts`` names the host or a network holding the
  address (:class:`TargetPolicy`);
* **pinning**: the host is resolved once per request, every address checked, and the request
  goes to that address (the URL's host stays in the ``Host`` header and in TLS SNI and
  certificate checks), so DNS cannot answer differently between the check and the connection
  (rebinding); redirects are not followed;
* **errors**: what is stored and shown is a reason class (``connection failed``, ``timeout``,
  ``TLS error``, ``HTTP 503``, ``refused by policy``), never the raw exception text;
* **credentials** in a URL (``https://user:pass@host/``) are sent as Basic auth and shown as
  ``***`` everywhere (:func:`redact_url`).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from hashwatch.errors import ConfigError

if TYPE_CHECKING:
    import httpx

__all__ = [
    "Outcome",
    "PinnedSender",
    "TargetPolicy",
    "TargetRefused",
    "redact_url",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]


class TargetRefused(ConfigError):
    """A webhook target outside what the policy allows (the message names no address)."""


def redact_url(url: str) -> str:
    """``url`` with any ``user:password@`` replaced by ``***@``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid URL>"
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"***@{host}"))


def _plain(ip: IPAddress) -> IPAddress:
    """An IPv4-mapped (``::ffff:a.b.c.d``) or IPv4-compatible IPv6 address as its IPv4."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
        if int(ip) >> 32 == 0 and int(ip) > 1:  # ::a.b.c.d (deprecated, still routed by some)
            return ipaddress.IPv4Address(int(ip))
    return ip


def is_public(ip: IPAddress) -> bool:
    """True for a globally routable unicast address."""
    ip = _plain(ip)
    return ip.is_global and not (
        ip.is_multicast or ip.is_reserved or ip.is_loopback or ip.is_link_local
    )


_IPV4_SHORTHAND = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+)){0,3}$", re.IGNORECASE)


def literal_address(host: str) -> IPAddress | None:
    """The address a host names literally, or None for a name to resolve.

    Besides the canonical forms, the numeric IPv4 forms that the C resolver accepts
    (``127.1``, ``2130706433``, ``0x7f000001``, ``0177.0.0.1``) are literal addresses too,
    so that the policy sees the address a connection would reach.
    """
    bare = host.split("%", 1)[0]
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        pass
    if _IPV4_SHORTHAND.match(bare):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(bare))
        except OSError:
            return None
    return None


def _resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class TargetPolicy:
    """Which webhook targets are allowed: public addresses, plus the allow-list's hosts
    (exact names, case-insensitive) and networks (CIDRs; a bare address is a /32 or /128)."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, allow: str | Iterable[str] | None) -> TargetPolicy:
        """From ``"hooks.internal, 10.1.0.0/16, ::1"`` (the setting's form) or a list."""
        items = allow.split(",") if isinstance(allow, str) else list(allow or [])
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for raw in (i.strip() for i in items):
            if not raw:
                continue
            try:
                networks.append(ipaddress.ip_network(raw.strip("[]"), strict=False))
            except ValueError:
                hosts.add(raw.lower().rstrip("."))
        return cls(frozenset(hosts), tuple(networks))

    def host_allowed(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.hosts

    def address_allowed(self, address: str) -> bool:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if is_public(ip):
            return True
        return any(_plain(ip) in net or ip in net for net in self.networks)

    def check_url(self, url: str) -> tuple[str, int]:
        """The URL's host and port, or :class:`TargetRefused` without resolving names: the
        scheme, the host's presence, and literal addresses and ``localhost`` names."""
        try:
            parts = urlsplit(url)
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise TargetRefused("the webhook URL is not valid") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise TargetRefused("a webhook URL is http:// or https:// with a host")
        host = parts.hostname
        if self.host_allowed(host):
            return host, port
        literal = literal_address(host)
        if literal is not None and not self.address_allowed(str(literal)):
            raise TargetRefused(_REFUSED)
        if literal is None and (
            host.lower().rstrip(".").endswith(".localhost")
            or host.lower().rstrip(".") == "localhost"
        ):
            raise TargetRefused(_REFUSED)
        return host, port

    def resolve(self, url: str, resolver: Resolver = _resolve) -> str:
        """The one address to connect to: the host resolved once, every address checked."""
        host, port = self.check_url(url)
        literal = literal_address(host)
        if literal is not None:
            addresses = [str(literal)]
        else:
            try:
                addresses = resolver(host, port)
            except (OSError, UnicodeError):
                raise _SendFailed("DNS failure") from None
        if not addresses:
            raise _SendFailed("DNS failure")
        if not self.host_allowed(host) and not all(self.address_allowed(a) for a in addresses):
            raise TargetRefused(_REFUSED)
        return addresses[0]


_REFUSED = (
    "webhook target refused: loopback, private, link-local and reserved addresses need "
    "webhook_allow_hosts (HASHWATCH_SERVE_WEBHOOK_ALLOW_HOSTS)"
)


class _SendFailed(Exception):
    """A send that failed before a response, with its reason class."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Outcome:
    """What became of one request: ``ok`` (2xx), else a reason class fit to show an admin."""

    ok: bool
    reason: str
    status: int | None = None


def _reason(exc: httpx.HTTPError) -> str:
    import httpx

    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, httpx.ConnectError):
        text = str(exc).lower()
        if "ssl" in text or "certificate" in text or "tls" in text:
            return "TLS error"
        return "connection failed"
    if isinstance(exc, httpx.RemoteProtocolError | httpx.LocalProtocolError):
        return "protocol error"
    return "request failed"


class PinnedSender:
    """POSTs webhook bodies to the pinned address of a policy-checked URL."""

    def __init__(
        self,
        policy: TargetPolicy,
        *,
        timeout_s: float,
        resolver: Resolver = _resolve,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.policy = policy
        self.resolver = resolver
        self.timeout_s = timeout_s
        self.transport = transport
        self._client: httpx.Client | None = None

    @property
    def client(self) -> httpx.Client:
        """Made on the first request: httpx is not imported while a server starts."""
        import httpx

        if self._client is None:
            # No kept-alive connections: a connection is made for one pinned address and
            # one TLS name, and must not carry a request for another name that resolves to
            # that address.
            self._client = httpx.Client(
                timeout=self.timeout_s,
                follow_redirects=False,
                transport=self.transport,
                limits=httpx.Limits(max_keepalive_connections=0),
            )
        return self._client

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> Outcome:
        import httpx

        try:
            address = self.policy.resolve(url, self.resolver)
        except TargetRefused:
            return Outcome(False, "refused by policy")
        except _SendFailed as exc:
            return Outcome(False, exc.reason)
        parts = urlsplit(url)
        host = parts.hostname or ""
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        netloc = f"[{ip}]" if ip.version == 6 else str(ip)
        if parts.port:
            netloc += f":{parts.port}"
        pinned = urlunsplit(parts._replace(netloc=netloc))
        default_port = parts.port in (None, 443 if parts.scheme == "https" else 80)
        host_header = host if default_port else f"{host}:{parts.port}"
        if ":" in host:  # an IPv6 literal
            host_header = f"[{host}]" if default_port else f"[{host}]:{parts.port}"
        auth: httpx.Auth | httpx._client.UseClientDefault = httpx.USE_CLIENT_DEFAULT
        if parts.username is not None:
            auth = httpx.BasicAuth(parts.username or "", parts.password or "")
        try:
            response = self.client.post(
                pinned,
                content=body,
                headers={**headers, "Host": host_header},
                auth=auth,
                extensions={"sni_hostname": host} if parts.scheme == "https" else {},
            )
        except httpx.HTTPError as exc:
            return Outcome(False, _reason(exc))
        if 200 <= response.status_code < 300:
            return Outcome(True, f"HTTP {response.status_code}", response.status_code)
        return Outcome(False, f"HTTP {response.status_code}", response.status_code)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
