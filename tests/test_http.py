"""What both servers answer before any route, over raw loopback sockets: methods, websockets' own answers,
and openings that never finish."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.backstage import Backstage
from engine.contract import Inbox, StateBoard
from engine.net.http import CSP, SECURITY_HEADERS, HandshakeGate
from engine.net.server import AudienceServer
from engine.store import Journal
from tests.engine_process import free_port
from tests.fakes import make_config
from tests.test_server import run

PAGE = b"<!doctype html><title>phone</title>"
Answer = tuple[int, dict[str, str], bytes]


@pytest.fixture
def web(tmp_path: Path) -> Path:
    root = tmp_path / "web"
    root.mkdir()
    (root / "index.html").write_bytes(PAGE)
    return root


async def exchange(port: int, request: bytes, local: str = "127.0.0.1") -> Answer:
    """Send ``request`` as is and read the answer to the end: (status, headers in lower case, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(local, 0))
    try:
        writer.write(request)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (ln.partition(":") for ln in lines)}
    return int(status_line.split()[1]), headers, body


def request(method: str, target: str = "/", *headers: str) -> bytes:
    return "\r\n".join([f"{method} {target} HTTP/1.1", "Host: x", *headers, "", ""]).encode()


def assert_secured(headers: dict[str, str]) -> None:
    """Every security header is there, with our value."""
    assert {k.lower(): v for k, v in SECURITY_HEADERS.items()}.items() <= headers.items(), headers


async def until(condition: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.01)


async def closed_at_once(reader: asyncio.StreamReader, within: float = 2.0) -> bool:
    """The server closed this connection without an answer, within ``within`` seconds."""
    try:
        return await asyncio.wait_for(reader.read(), within) == b""
    except ConnectionResetError:
        return True


# --- methods ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["DELETE", "PUT", "POST", "OPTIONS", "TRACE", "PATCH", "PROPFIND"])
def test_methods_other_than_get_and_head_get_405(web: Path, method: str) -> None:
    """405 with Allow: GET, HEAD and the security headers; never the page."""
    async def scenario(srv: AudienceServer) -> None:
        status, headers, body = await exchange(srv.port, request(method))
        assert (status, headers["allow"]) == (405, "GET, HEAD")
        assert_secured(headers)
        assert PAGE not in body
    run(web, scenario)


def test_head_is_get_without_the_body(web: Path) -> None:
    """HEAD / answers like GET, with the GET body's Content-Length and no body."""
    async def scenario(srv: AudienceServer) -> None:
        status, headers, body = await exchange(srv.port, request("HEAD"))
        assert (status, headers["content-length"], body) == (200, str(len(PAGE)), b"")
        assert_secured(headers)
    run(web, scenario)


def test_get_still_gets_the_page(web: Path) -> None:
    """The guard leaves GET as it was."""
    async def scenario(srv: AudienceServer) -> None:
        status, headers, body = await exchange(srv.port, request("GET"))
        assert (status, body) == (200, PAGE)
        assert headers["content-security-policy"] == CSP
    run(web, scenario)


def test_the_control_pages_own_port_answers_405_too(journal: Journal) -> None:
    """[vj] port: DELETE /vj gets 405 with Allow and the security headers; HEAD /vj the login page's headers."""
    server_port = free_port()
    with socket.socket() as hold:  # free_port() answers the lowest free one: hold the first to get another
        hold.bind(("127.0.0.1", server_port))
        vj_port = free_port()
    cfg = make_config({"server.host": "127.0.0.1", "server.port": server_port, "vj.host": "127.0.0.1",
                       "vj.port": vj_port, "vj.token": "test-token-0123456789", "generation.backend": "procedural"})
    backstage = Backstage(cfg, Inbox(), StateBoard(), "http://127.0.0.1", journal=journal)
    backstage.start()
    try:
        status, headers, _ = asyncio.run(exchange(vj_port, request("DELETE", "/vj")))
        assert (status, headers["allow"]) == (405, "GET, HEAD")
        assert_secured(headers)
        status, headers, body = asyncio.run(exchange(vj_port, request("HEAD", "/vj")))
        assert (status, body) == (401, b"") and int(headers["content-length"]) > 0
    finally:
        backstage.stop()


# --- websockets' own answers ----------------------------------------------------------------------------
@pytest.mark.parametrize(("raw", "expected"), [
    (request("GET", "/" + "a" * 9000), 414),
    (request("GET", "/", *[f"X-Filler-{n}: 1" for n in range(200)]), 431),
    (request("GET", "/", "X-Long: " + "b" * 9000), 431),
    (request("GET", "/ws"), 426),
])
def test_answers_websockets_makes_itself_carry_the_security_headers(web: Path, raw: bytes, expected: int) -> None:
    """414 and 431 come from inside websockets' parser, 426 from its handshake: all carry the headers."""
    async def scenario(srv: AudienceServer) -> None:
        status, headers, _ = await exchange(srv.port, raw)
        assert status == expected
        assert_secured(headers)
    run(web, scenario)


# --- openings that never finish ---------------------------------------------------------------------------
def test_silent_openings_past_the_cap_are_closed_at_once(web: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Three silent sockets from one address fill its cap: the fourth is closed at once, with one warning,
    and another address is still served."""
    async def scenario(srv: AudienceServer) -> None:
        silent = [await asyncio.open_connection("127.0.0.1", srv.port, local_addr=("127.0.0.6", 0))
                  for _ in range(3)]
        await until(lambda: srv.openings.open == 3, "the silent sockets were not all accepted")
        for _ in range(2):
            reader, writer = await asyncio.open_connection("127.0.0.1", srv.port, local_addr=("127.0.0.6", 0))
            assert await closed_at_once(reader)
            writer.close()
        assert (await exchange(srv.port, request("GET"), local="127.0.0.7"))[0] == 200
        for _, writer in silent:
            writer.close()
    run(web, scenario, max_handshakes_per_ip=3)
    refused = [r for r in caplog.records if "unfinished openings" in r.getMessage()]
    assert [r.getMessage() for r in refused] == [
        "too many unfinished openings (3 from 127.0.0.6, 3 in all): new connections are closed at once"]


def test_an_address_is_served_again_once_its_openings_end(web: Path) -> None:
    """Silent sockets that go away free their address's places."""
    async def scenario(srv: AudienceServer) -> None:
        silent = [await asyncio.open_connection("127.0.0.1", srv.port, local_addr=("127.0.0.6", 0))
                  for _ in range(2)]
        await until(lambda: srv.openings.open == 2, "the silent sockets were not all accepted")
        for _, writer in silent:
            writer.close()
        await until(lambda: srv.openings.open == 0, "the closed sockets still count")
        assert (await exchange(srv.port, request("GET"), local="127.0.0.6"))[0] == 200
    run(web, scenario, max_handshakes_per_ip=2)


def test_finished_requests_free_their_place(web: Path) -> None:
    """With room for one opening per address, twenty requests in a row are all served."""
    async def scenario(srv: AudienceServer) -> None:
        for _ in range(20):
            assert (await exchange(srv.port, request("GET"), local="127.0.0.6"))[0] == 200
    run(web, scenario, max_handshakes_per_ip=1)


def test_openings_are_capped_in_all(web: Path) -> None:
    """max_handshakes silent sockets from different addresses: the next address is closed at once."""
    async def scenario(srv: AudienceServer) -> None:
        silent = [await asyncio.open_connection("127.0.0.1", srv.port, local_addr=(f"127.0.1.{n}", 0))
                  for n in range(1, 4)]
        await until(lambda: srv.openings.open == 3, "the silent sockets were not all accepted")
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port, local_addr=("127.0.1.9", 0))
        assert await closed_at_once(reader)
        writer.close()
        for _, w in silent:
            w.close()
    run(web, scenario, max_handshakes=3)


def test_a_silent_opening_is_closed_after_the_handshake_timeout(web: Path) -> None:
    """[server] handshake_timeout ends a socket that never sends its request."""
    async def scenario(srv: AudienceServer) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        assert await closed_at_once(reader, within=5.0)
        writer.close()
        await until(lambda: srv.openings.open == 0, "the timed-out socket still counts")
    run(web, scenario, handshake_timeout=1.0)


def test_handshake_gate_counts_per_address_and_in_all() -> None:
    """An address over its cap, or everyone over the total, is refused and nothing is counted."""
    gate = HandshakeGate(per_ip=2, total=3)
    assert [gate.enter("a"), gate.enter("a"), gate.enter("a")] == [True, True, False]
    assert [gate.enter("b"), gate.enter("c")] == [True, False]
    gate.leave("a")
    assert (gate.open, gate.unfinished("a"), gate.refused) == (2, 1, 2)
    assert gate.enter("c")
