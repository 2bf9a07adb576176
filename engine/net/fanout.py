"""One message to thousands of phones: the frame is built once and written to every socket.

``websockets.broadcast()`` builds the same frame again for every connection (a Frame object, its
header packed, its bytes joined) before writing it; with ten thousand phones that is most of the
push's time on the loop. A server's frames are never masked and the audience server runs without
compression, so every phone's copy is byte for byte the same: build it once, write it many times.

The rules ``broadcast()`` keeps are kept here: only open connections, none in the middle of a
fragmented message, a failure on one socket never stops the others. Connections with an extension
(compression) get the frame through ``broadcast()`` as before, since theirs may differ.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from websockets.asyncio.server import ServerConnection, broadcast
from websockets.frames import Frame, Opcode
from websockets.protocol import State

log = logging.getLogger(__name__)


def text_frame(message: str) -> bytes:
    """The bytes of one unmasked, unfragmented text frame carrying ``message``."""
    return Frame(Opcode.TEXT, message.encode()).serialize(mask=False)


def fanout(connections: Iterable[ServerConnection], message: str) -> int:
    """Write ``message`` to every open connection without waiting; how many it was written to."""
    frame = text_frame(message)
    sent = 0
    odd: list[ServerConnection] = []
    for conn in connections:
        protocol = conn.protocol
        if protocol.state is not State.OPEN or conn.send_in_progress is not None:
            continue
        if protocol.extensions:
            odd.append(conn)
            continue
        try:
            conn.transport.write(frame)
        except Exception as err:  # a socket that went away between the check and the write
            log.debug("fan-out skipped a connection: %s", err)
            continue
        sent += 1
    if odd:
        broadcast(odd, message)
        sent += len(odd)
    return sent
