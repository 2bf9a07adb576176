"""Fan-out: one frame built once reaches every open phone intact, over real loopback sockets."""

from __future__ import annotations

import asyncio

from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.frames import Frame
from websockets.streams import StreamReader

from engine.net.fanout import fanout, text_frame


def test_the_frame_is_a_plain_text_frame() -> None:
    """Unmasked, final, text opcode, the UTF-8 payload as it was (accents and emoji included)."""
    reader = StreamReader()
    reader.feed_data(text_frame('{"type":"feed","text":"¡olé 🎆"}'))
    parser = Frame.parse(reader.read_exact, mask=False)
    try:
        next(parser)
    except StopIteration as done:
        frame = done.value
    assert frame.fin and frame.opcode.name == "TEXT" and frame.data.decode() == '{"type":"feed","text":"¡olé 🎆"}'


def test_every_open_phone_gets_the_message_and_closed_ones_are_skipped() -> None:
    """Three phones, one of them gone: two receive it byte for byte, the count says two."""

    async def main() -> None:
        conns: list[ServerConnection] = []
        joined = asyncio.Event()

        async def handler(conn: ServerConnection) -> None:
            conns.append(conn)
            if len(conns) == 3:
                joined.set()
            await conn.wait_closed()

        async with serve(handler, "127.0.0.1", 0, compression=None) as server:
            port = server.sockets[0].getsockname()[1]
            phones = [await connect(f"ws://127.0.0.1:{port}") for _ in range(3)]
            await asyncio.wait_for(joined.wait(), 5)
            await phones[2].close()
            await asyncio.wait_for(conns[2].wait_closed(), 5)
            assert fanout(conns, "queued: ¡tu turno!") == 2
            got = [await asyncio.wait_for(p.recv(), 5) for p in phones[:2]]
            assert got == ["queued: ¡tu turno!"] * 2
            for p in phones[:2]:
                await p.close()

    asyncio.run(main())
