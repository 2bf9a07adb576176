"""Bans from the control page over real sockets: by phone, by address, and what the page may know of a phone."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.asyncio.client import connect

from engine.backstage import Backstage
from engine.net.audience import BANNED
from tests.test_vj_server import bs, page  # noqa: F401  (bs: the approve-mode backstage fixture)


async def prompt_from(b: Backstage, text: str, client: str, local: str) -> dict[str, Any]:
    """A phone with id ``client`` on address ``local`` sends one prompt; the first status it hears."""
    async with connect(f"ws://127.0.0.1:{b.port}/ws?client={client}", local_addr=(local, 0)) as ws:
        await ws.recv()  # welcome
        await ws.send(json.dumps({"type": "prompt", "text": text}))
        return json.loads(await ws.recv())  # type: ignore[no-any-return]


def pending_ids(queue: dict[str, Any]) -> set[str]:
    return {i["id"] for i in queue["pending"]}


def test_a_banned_phone_back_with_a_fresh_id_is_refused(bs: Backstage) -> None:  # noqa: F811
    """Ban from the page, clear the phone's storage, come back from the same address: still banned."""
    async def go() -> None:
        rude = await prompt_from(bs, "something rude", "prankster-0001", "127.0.0.41")
        async with page(bs) as p:
            await p.until(lambda: rude["id"] in pending_ids(p.parts["queue"]))
            assert (await p.ask(type="ban", id=rude["id"]))["type"] == "ack"
        again = await prompt_from(bs, "something rude again", "prankster-0002", "127.0.0.41")
        assert (again["state"], again["reason"]) == ("rejected", BANNED)
        elsewhere = await prompt_from(bs, "a calm lake", "stranger-00001", "127.0.0.42")
        assert elsewhere["state"] == "queued"

    asyncio.run(go())


def test_a_ban_by_address_from_the_page_refuses_every_phone_of_that_address(bs: Backstage) -> None:  # noqa: F811
    """ban_address by prompt id: that address's waiting prompts leave, its phones old and new are refused."""
    async def go() -> None:
        first = await prompt_from(bs, "a glass octopus", "phone-nat00001", "127.0.0.51")
        second = await prompt_from(bs, "burning library", "phone-nat00002", "127.0.0.51")
        other = await prompt_from(bs, "meadow of clocks", "phone-out00001", "127.0.0.52")
        async with page(bs) as p:
            await p.until(lambda: pending_ids(p.parts["queue"]) == {first["id"], second["id"], other["id"]})
            assert (await p.ask(type="ban_address", id=first["id"]))["type"] == "ack"
            await p.until(lambda: pending_ids(p.parts["queue"]) == {other["id"]})
        for client in ("phone-nat00001", "phone-nat00003"):
            refused = await prompt_from(bs, f"another one from {client}", client, "127.0.0.51")
            assert (refused["state"], refused["reason"]) == ("rejected", BANNED)
        assert (await prompt_from(bs, "a quiet garden", "phone-out00002", "127.0.0.52"))["state"] == "queued"

    asyncio.run(go())


def test_the_page_never_receives_a_client_id(bs: Backstage) -> None:  # noqa: F811
    """The client id is a bearer credential: the queue names phones by a short handle, the same for each prompt."""
    clients = ["secret-client-id-0001", "secret-client-id-0002"]

    async def go() -> list[str]:
        async with page(bs) as p:
            frames = [json.dumps(part) for part in p.parts.values()]
            recv = p.ws.recv

            async def recording(*args: Any, **kwargs: Any) -> Any:
                frame = await recv(*args, **kwargs)
                frames.append(frame if isinstance(frame, str) else "")
                return frame

            p.ws.recv = recording  # type: ignore[method-assign]
            for n, client in enumerate(clients):
                for text in ("a glass octopus", "burning library"):
                    await prompt_from(bs, f"{text} {n}", client, "127.0.0.61")
            await p.until(lambda: len(p.parts["queue"]["pending"]) == 4)
            handles = [i["from"] for i in p.parts["queue"]["pending"]]  # in fair order: 0, 1, 0, 1
            assert handles[0] == handles[2] != handles[1] == handles[3] and all(len(h) == 6 for h in handles)
            return frames

    frames = asyncio.run(go())
    assert not any(client in frame for client in clients for frame in frames)
