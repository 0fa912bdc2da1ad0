"""Where the server may send a request that a customer chose, and how it gets there.

A webhook URL is chosen by an API caller, an identity provider's issuer by an organization's owner,
and our processes fetch them from inside the network: left unchecked they reach the cloud metadata
service, Redis or the database (SSRF). So a target must be public: every address its host resolves
to is checked, when the URL is saved and again before each request, and a webhook delivery connects
to an address it checked, never to a second DNS answer (DNS rebinding), while the Host header, TLS
SNI and the certificate check still name the host. Redirects are not followed. Named hosts in an
allow-list (``WEBHOOK_ALLOWED_HOSTS``, ``SSO_ALLOWED_HOSTS``) skip the address check (tests,
on-premise receivers and identity providers); every other rule holds for them too.
"""
import http.client
import ipaddress
import re
import socket
import ssl
import time
from dataclasses import dataclass
from functools import cache
from urllib.parse import urlsplit

import idna
from django.conf import settings

PORTS = "80, 443 or 1024-65535"  # no SSH, SMTP, LDAP or other system service spoken to in HTTP
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052: the IPv4 address is in the last 32 bits
# IPv6 ranges that Python 3.11's is_global still calls global: IPv4-compatible, local-use NAT64, 6to4
_NOT_GLOBAL = tuple(map(ipaddress.IPv6Network, ("::/96", "64:ff9b:1::/48", "2002::/16")))
_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")
_NUMBER = re.compile(r"0x[0-9a-f]*|[0-9]+")  # a host ending in a number is an IPv4 address (WHATWG URL)
_CREDENTIALS = re.compile(r"^([a-z][a-z0-9+.-]*://)[^/?#]*@", re.IGNORECASE)


class RefusedTarget(ValueError):
    """The URL may not be requested; the message tells the caller why."""


class UnresolvedHost(RefusedTarget):
    """The host does not resolve: refused when saving, retried at delivery (DNS may be down)."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # the name as sent in Host and SNI (IDNA-encoded), or an IP address
    port: int
    path: str  # path and query
    addresses: tuple[str, ...]  # checked: the connection goes to one of these and nowhere else


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Globally reachable unicast: not loopback, private, link-local, multicast, unspecified or reserved,
    nor an IPv6 address that carries (or translates to) an IPv4 address that is one of those."""
    if address.version == 6:
        if address.ipv4_mapped is not None:
            return is_public(address.ipv4_mapped)
        if address in _NAT64:
            return is_public(ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF))
        if address.is_site_local or any(address in network for network in _NOT_GLOBAL):
            return False
    return address.is_global and not address.is_multicast and not address.is_reserved


def check(url: str, *, allowed: list[str] | None = None, https_only: bool | None = None) -> Target:
    """The target of a URL, every address of its host checked; raises RefusedTarget.

    `allowed` names hosts that may be internal and `https_only` refuses http://; both default to the
    webhooks' settings (WEBHOOK_ALLOWED_HOSTS, WEBHOOK_HTTPS_ONLY).
    """
    https_only = settings.WEBHOOK_HTTPS_ONLY if https_only is None else https_only
    if any(c.isspace() or not c.isprintable() for c in url):
        raise RefusedTarget("Must not contain spaces or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise RefusedTarget(f"Not a valid URL: {exc}.") from exc
    if parts.scheme not in ("https", "http") or (parts.scheme == "http" and https_only):
        raise RefusedTarget("Must be an https:// URL." if https_only else "Must be an http:// or https:// URL.")
    if "@" in parts.netloc:
        raise RefusedTarget("Must not carry credentials (user:password@).")
    if port is not None and port not in (80, 443) and not 1024 <= port <= 65535:
        raise RefusedTarget(f"Port {port} is not allowed: use {PORTS}.")
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    if not path.isascii():
        raise RefusedTarget("Percent-encode the path and query (ASCII only).")
    host = _host(parts.hostname or "")
    port = port or (443 if parts.scheme == "https" else 80)
    addresses = (host,) if _is_address(host) else _resolve(host, port)
    if host not in allowed_hosts(allowed) and not all(is_public(ipaddress.ip_address(a)) for a in addresses):
        raise RefusedTarget("Must reach a public address: this host is (or resolves to) a loopback, private, "
                            "link-local, multicast or reserved one. Ask the operator to allow an internal host.")
    return Target(parts.scheme, host, port, path or "/", addresses)


def _host(hostname: str) -> str:
    """The host as it is resolved and compared: lower case, IDNA-encoded, no trailing dot, IPs canonical."""
    if not hostname:
        raise RefusedTarget("Must name a host.")
    if ":" in hostname:  # an IPv6 literal (urlsplit has checked the brackets)
        if "%" in hostname:
            raise RefusedTarget("Must not name an IPv6 zone.")
        try:
            return str(ipaddress.IPv6Address(hostname))
        except ValueError as exc:
            raise RefusedTarget("Not a valid IPv6 address.") from exc
    name = hostname.removesuffix(".")
    if not name.isascii():
        try:
            name = idna.encode(name, uts46=True).decode()
        except UnicodeError as exc:  # idna.IDNAError among them
            raise RefusedTarget("Not a valid host name.") from exc
    labels = name.lower().split(".")
    if _NUMBER.fullmatch(labels[-1]):
        try:
            return str(ipaddress.IPv4Address(name))
        except ValueError as exc:
            raise RefusedTarget("Write an IPv4 address as four decimal numbers (like 192.0.2.10).") from exc
    if len(name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise RefusedTarget("Not a valid host name.")
    return ".".join(labels)


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _resolve(host: str, port: int) -> tuple[str, ...]:
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise UnresolvedHost(f"The host {host} does not resolve.") from exc
    addresses = tuple(dict.fromkeys(answer[4][0] for answer in answers))
    if not addresses:
        raise UnresolvedHost(f"The host {host} does not resolve.")
    return addresses


def allowed_hosts(entries: list[str] | None = None) -> set[str]:
    """The allow-list (WEBHOOK_ALLOWED_HOSTS unless given), written the way check() writes a host."""
    allowed = set()
    for entry in settings.WEBHOOK_ALLOWED_HOSTS if entries is None else entries:
        try:
            allowed.add(_host(entry.strip().strip("[]")))
        except RefusedTarget:
            pass  # an entry that is no host name allows nothing
    return allowed


def without_credentials(url: str) -> str:
    """The URL with any user:password@ removed (URLs saved before they were refused)."""
    return _CREDENTIALS.sub(r"\1", url)


@cache
def tls_context() -> ssl.SSLContext:
    return ssl.create_default_context()


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the checked addresses only, in the resolver's order; Host still names the host."""

    def __init__(self, target: Target, timeout: float):
        super().__init__(target.host, target.port, timeout=timeout)
        self.addresses = target.addresses

    def connect(self):
        for index, address in enumerate(self.addresses):
            try:
                self.sock = socket.create_connection((address, self.port), self.timeout)
                return
            except OSError:
                if index == len(self.addresses) - 1:
                    raise


class _PinnedHTTPSConnection(_PinnedHTTPConnection):
    """As above, with TLS whose SNI and certificate check name the host, not the address."""

    default_port = http.client.HTTPS_PORT

    def connect(self):
        super().connect()
        self.sock = tls_context().wrap_socket(self.sock, server_hostname=self.host)


class TooSlow(OSError):
    """The answer did not arrive in full within the time allowed."""


def get(target: Target, headers: dict[str, str], timeout: float, max_bytes: int) -> tuple[int, dict, bytes]:
    """GET from the target's checked address: (status, headers, at most max_bytes + 1 bytes of body).
    `timeout` bounds the whole exchange, not each read, so a server dripping bytes cannot hold us.
    Raises OSError (TooSlow, TLS errors included) or http.client.HTTPException."""
    deadline = time.monotonic() + timeout
    connection_class = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    connection = connection_class(target, timeout)
    try:
        connection.request("GET", target.path, headers=headers)
        response = connection.getresponse()
        body = bytearray()
        while len(body) <= max_bytes:
            if time.monotonic() > deadline:
                raise TooSlow(f"no complete answer within {timeout:g} seconds")
            chunk = response.read1(min(65536, max_bytes + 1 - len(body)))
            if not chunk:
                break
            body += chunk
        return response.status, {k.lower(): v for k, v in response.getheaders()}, bytes(body)
    finally:
        connection.close()


def post(target: Target, body: bytes, headers: dict[str, str], timeout: float) -> int:
    """POST the body to the target's checked address; the response status (redirects are not followed).
    Raises OSError (TLS errors included) or http.client.HTTPException when no answer comes."""
    connection_class = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    connection = connection_class(target, timeout)
    try:
        connection.request("POST", target.path, body=body, headers=headers)
        return connection.getresponse().status
    finally:
        connection.close()
