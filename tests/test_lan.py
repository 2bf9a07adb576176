"""The join URL shown on screen."""

from __future__ import annotations

import ipaddress

import pytest

from engine.config import ServerConfig
from engine.net import lan


def test_public_url_wins() -> None:
    """A configured public URL is shown as is."""
    assert lan.join_url(ServerConfig(public_url="https://show.example")) == "https://show.example"


def test_wildcard_host_uses_the_lan_address(monkeypatch: pytest.MonkeyPatch) -> None:
    """Listening on 0.0.0.0 shows the machine's LAN address and the port."""
    monkeypatch.setattr(lan, "lan_ipv4", lambda: "192.168.1.50")
    assert lan.join_url(ServerConfig(port=3001)) == "http://192.168.1.50:3001"


def test_specific_host_is_used() -> None:
    """Listening on one address shows that address."""
    assert lan.join_url(ServerConfig(host="10.0.0.7", port=80)) == "http://10.0.0.7:80"


def test_lan_ipv4_is_an_ipv4_address() -> None:
    """Whatever the machine has, the answer is a usable IPv4 address."""
    ipaddress.IPv4Address(lan.lan_ipv4())


def test_prefers_private_over_public_and_skips_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Venue LANs are private ranges: pick those first; never loopback when there is another."""
    import socket
    from types import SimpleNamespace as NS

    addrs = {
        "lo": [NS(family=socket.AF_INET, address="127.0.0.1")],
        "wan": [NS(family=socket.AF_INET, address="8.8.4.4")],
        "wlan0": [NS(family=socket.AF_INET, address="192.168.0.20")],
        "down0": [NS(family=socket.AF_INET, address="10.0.0.1")],
    }
    stats = {"lo": NS(isup=True), "wan": NS(isup=True), "wlan0": NS(isup=True), "down0": NS(isup=False)}
    monkeypatch.setattr(lan.psutil, "net_if_addrs", lambda: addrs)
    monkeypatch.setattr(lan.psutil, "net_if_stats", lambda: stats)
    assert lan.lan_ipv4() == "192.168.0.20"
