"""Where a webhook may be sent: never into our own network (server-side request forgery).

An API client chooses the URL, and our servers send to it: a URL naming (or resolving to) a private, loopback,
link-local, multicast, reserved or otherwise non-global address would let a client reach what only we can reach
(the cloud's metadata service at 169.254.169.254, an admin port on 10.x, Redis on localhost). So:

- at registration, the URL must be https and every address its host resolves to must be global;
- at each delivery the host is resolved again and checked again (DNS may have changed since), and the request is
  sent to the address that was checked, not to the name (webhooks/sending.py), so a DNS answer that changes between
  the check and the connection (DNS rebinding) cannot slip a private address in.

WEBHOOKS_ALLOW_PRIVATE_URLS lifts both rules (http, private addresses) for `make run` and the tests, whose
receivers listen on 127.0.0.1; it is off in production.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

import httpx
from django.conf import settings

DEFAULT_PORTS = {"http": 80, "https": 443}


class AddressRefused(Exception):
    """The URL may not be used: `str(error)` says why, in words for the API client."""


# IPv6's global unicast space: what `is_global` lets through outside it embeds an IPv4 address that a translating
# network (NAT64 64:ff9b::/96 and 64:ff9b:1::/48, SIIT ::ffff:0:0:0/96, the old IPv4-compatible ::/96) or an old
# router (site-local fec0::/10) may deliver into our own network: 64:ff9b::a9fe:a9fe is 169.254.169.254 behind NAT64.
IPV6_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")


def _allowed(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
        elif address not in IPV6_GLOBAL_UNICAST:
            return False
        elif address.sixtofour is not None:
            address = address.sixtofour  # 2002:7f00:1:: is 127.0.0.1 through a 6to4 relay
    # is_global is False for private, loopback, link-local, reserved, unspecified and shared (100.64/10) ranges;
    # multicast addresses can be global, and are no receiver either.
    return address.is_global and not address.is_multicast


def url_check(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a URL webhooks may be sent to, or AddressRefused. Does not resolve the host."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise AddressRefused("Not a valid URL.") from error
    scheme, host = parts.scheme.lower(), parts.hostname
    if scheme not in DEFAULT_PORTS or not host:
        raise AddressRefused("An http(s) URL with a host is needed.")
    if scheme != "https" and not settings.WEBHOOKS_ALLOW_PRIVATE_URLS:
        raise AddressRefused("Webhook URLs must use https.")
    if parts.username is not None or parts.password is not None:
        raise AddressRefused("Credentials in the URL are not allowed; authenticate deliveries by their signature.")
    try:
        # The HTTP client's own reading (IDNA 2008): a name only the resolver's IDNA 2003 spells (☃.com) would pass
        # the address check, then fail every delivery with an exception rather than a logged try.
        httpx.URL(url)
    except httpx.InvalidURL as error:
        raise AddressRefused("Not a valid URL (its host is not a valid internationalized domain name).") from error
    return scheme, host, port or DEFAULT_PORTS[scheme]


def host_resolve_allowed(host: str, port: int) -> str:
    """The address to connect to for `host`: every address it resolves to must be allowed (a name with one private
    address among public ones is refused: which one a client would connect to is not ours to choose)."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise AddressRefused(f"The host {host!r} does not resolve.") from error
    addresses = [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in found]
    if not addresses:
        raise AddressRefused(f"The host {host!r} does not resolve.")
    if not settings.WEBHOOKS_ALLOW_PRIVATE_URLS:
        refused = [str(address) for address in addresses if not _allowed(address)]
        if refused:
            raise AddressRefused(
                f"The host {host!r} resolves to an address that is private, loopback, link-local or reserved "
                f"({', '.join(sorted(set(refused)))})."
            )
    return str(addresses[0])


def url_resolve_allowed(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, address): the URL checked, and the checked address to connect to."""
    scheme, host, port = url_check(url)
    return scheme, host, port, host_resolve_allowed(host, port)
