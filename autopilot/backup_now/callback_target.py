"""Where a backup's callback may go, and sending it there.

A callback goes over https to a host on AUTOPILOT_CALLBACK_ALLOWED_HOSTS, never to loopback,
link-local (169.254.0.0/16: the instance metadata address), private or other special addresses
unless an allow-list range names them. Plain http is refused, IP literals included, unless the
address is in a range of AUTOPILOT_CALLBACK_HTTP_ALLOWED. The name is resolved once: the addresses
checked are the addresses connected to (with the URL's host as Host header and as the TLS server
name), so a name that resolves elsewhere between the check and the connection reaches nothing else.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import urllib3

from autopilot.kernel.problems import Problem

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str  # with the query
    addresses: tuple[Address, ...]  # checked, in the order to try


def _bad(detail: str) -> Problem:
    return Problem(400, "invalid-field", "A field of the request is not valid", detail, "callbackUrl")


def _refused(title: str, detail: str) -> Problem:
    return Problem(403, "callback-not-allowed", title, detail, "callbackUrl")


def networks(entries: tuple[str, ...]) -> list[Network]:
    found = []
    for entry in entries:
        try:
            found.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            continue
    return found


def check_callback_url(
    url: str,
    allowed: tuple[str, ...],
    http_allowed: tuple[str, ...] = (),
    resolve: Callable[[str], list[str]] | None = None,
) -> Target:
    """The callback's target, checked; raises a 400 or 403 Problem that says what is wrong."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        port = parts.port
    except ValueError as error:
        raise _bad(
            f"callbackUrl is not a URL ({error}); send an https URL such as https://hooks.example.com/backup."
        ) from None
    if parts.scheme not in ("https", "http") or not host or parts.username or parts.password:
        raise _bad("callbackUrl must be an https URL without credentials.")
    ranges = networks(allowed)
    names = [a for a in allowed if not networks((a,))]
    literal = _ip(host)
    if literal is not None:
        if not any(literal in n for n in ranges):
            raise _refused(
                "The callback address is not allowed", f"{host} is not on AUTOPILOT_CALLBACK_ALLOWED_HOSTS."
            )
        addresses: list[Address] = [literal]
    else:
        if not any(host == n or (n.startswith("*.") and host.endswith(n[1:])) for n in names):
            raise _refused(
                "The callback host is not allowed",
                f"{host} is not on AUTOPILOT_CALLBACK_ALLOWED_HOSTS; ask the operator to add it.",
            )
        try:
            addresses = [ipaddress.ip_address(a) for a in (resolve or _resolve)(host)]
        except (OSError, ValueError):
            addresses = []
        if not addresses:
            raise Problem(
                400,
                "callback-unresolvable",
                "The callback host does not resolve",
                f"{host} has no address.",
                "callbackUrl",
            )
    for address in addresses:
        if _special(address) and not any(address in n for n in ranges):
            raise _refused(
                "The callback address is not allowed",
                f"{host} resolves to {address}, a loopback, link-local, private or reserved address.",
            )
    if parts.scheme == "http":
        plain = networks(http_allowed)
        if not all(any(address in n for n in plain) for address in addresses):
            raise _bad(
                "callbackUrl must use https; plain http only goes to addresses the operator allows with "
                "AUTOPILOT_CALLBACK_HTTP_ALLOWED."
            )
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(
        parts.scheme, host, port or (443 if parts.scheme == "https" else 80), path, tuple(addresses)
    )


def post(target: Target, body: bytes, headers: dict[str, str], timeout: float) -> int:
    """POST to the first of the target's checked addresses that answers (never re-resolving its
    name); the answer's status. Raises OSError / urllib3 errors when none can be reached."""
    host_header = target.host if target.port in (80, 443) else f"{target.host}:{target.port}"
    last: Exception | None = None
    for address in target.addresses:
        pool: urllib3.HTTPConnectionPool
        if target.scheme == "https":
            pool = urllib3.HTTPSConnectionPool(
                str(address),
                target.port,
                server_hostname=target.host,
                assert_hostname=target.host,
                ssl_context=_tls_context(),
                timeout=timeout,
                retries=False,
            )
        else:
            pool = urllib3.HTTPConnectionPool(str(address), target.port, timeout=timeout, retries=False)
        try:
            with pool:
                response = pool.urlopen(
                    "POST",
                    target.path,
                    body=body,
                    headers={**headers, "Host": host_header},
                    redirect=False,
                    assert_same_host=False,
                )
                return int(response.status)
        except (OSError, urllib3.exceptions.HTTPError) as error:
            last = error
    assert last is not None
    raise last


def _tls_context() -> ssl.SSLContext:
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE")
    return ssl.create_default_context(cafile=bundle) if bundle else ssl.create_default_context()


def _special(address: Address) -> bool:
    return bool(
        address.is_loopback
        or address.is_link_local
        or address.is_private
        or address.is_reserved
        or address.is_multicast
        or address.is_unspecified
    )


def _ip(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _resolve(host: str) -> list[str]:
    return sorted({str(info[4][0]) for info in socket.getaddrinfo(host, None)})
