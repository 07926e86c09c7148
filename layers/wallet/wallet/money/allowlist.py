"""Who may call POST /do: the provider's Games Server addresses (template parameter GamesServerCidrs).

The billing's HTTP API has no resource policy, so the function checks the address API Gateway saw the request come
from (the TCP peer, which no request header can set) before it reads the body. An empty allowlist admits nobody:
a billing deployed without the provider's addresses refuses every call rather than taking bets from anyone.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str) -> tuple[Network, ...]:
    """`198.51.100.7/32,2001:db8::/64` -> the networks; a bad entry is a ValueError naming it."""
    networks = []
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        try:
            # strict=False: 198.51.100.7/24 means the /24 it lies in, as IAM's aws:SourceIp reads it.
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} is not an IPv4 or IPv6 CIDR (e.g. 198.51.100.7/32)") from None
    return tuple(networks)


class SourceAllowlist:
    def __init__(self, networks: Iterable[Network]) -> None:
        self.networks = tuple(networks)

    def admits(self, address: str | None) -> bool:
        if not address:
            return False
        try:
            source = ipaddress.ip_address(address)
        except ValueError:
            return False
        if isinstance(source, ipaddress.IPv6Address) and source.ipv4_mapped is not None:
            source = source.ipv4_mapped  # ::ffff:198.51.100.7 is 198.51.100.7
        # An address is never in a network of the other version (`in` is then False, not an error).
        return any(source in network for network in self.networks)
