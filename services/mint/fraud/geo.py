"""Offline IP → country (ISO 3166-1 alpha-2) for the ``geo_anomaly`` rule.

The database ships inside the ``iptocc`` wheel (compiled into its extension module): loaded once
per process at import, about 2 MB resident after lookups across the whole address space, a
lookup a few microseconds. Only public addresses are looked up: private, loopback, link-local,
reserved and unparseable ones have no country.
"""

from __future__ import annotations

import ipaddress

import iptocc


def country_of(ip_address: str) -> str | None:
    """The country of a public IP address; ``None`` when unknown or not a public address."""
    try:
        address = ipaddress.ip_address(ip_address.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if not address.is_global:
        return None
    country = iptocc.country_code(str(address))
    return country.upper() if country else None
