"""The address phones on the venue network use to reach the show.

Read from the interface table (psutil), so finding it sends no traffic at all.
"""

from __future__ import annotations

import ipaddress
import socket

import psutil

from engine.config import ServerConfig


def _rank(addr: ipaddress.IPv4Address) -> int:
    """Lower is better: venue LANs are private ranges; anything else is a last resort."""
    if addr.is_loopback or addr.is_link_local:
        return 9
    if addr.is_private:
        return 0
    return 1


def lan_ipv4() -> str:
    """The best IPv4 address of an interface that is up; 127.0.0.1 when there is none."""
    try:
        stats = psutil.net_if_stats()
        candidates = []
        for name, addrs in psutil.net_if_addrs().items():
            if name in stats and not stats[name].isup:
                continue
            for a in addrs:
                if a.family == socket.AF_INET:
                    ip = ipaddress.IPv4Address(a.address)
                    candidates.append((_rank(ip), name, a.address))
    except (OSError, ValueError):
        return "127.0.0.1"
    candidates = [c for c in candidates if c[0] < 9]
    return min(candidates)[2] if candidates else "127.0.0.1"


def join_url(server: ServerConfig) -> str:
    """``server.public_url`` when set, else ``http://<LAN IP>:<port>``."""
    if server.public_url:
        return server.public_url
    host = server.host
    if host in ("0.0.0.0", "", "::"):
        host = lan_ipv4()
    return f"http://{host}:{server.port}"
