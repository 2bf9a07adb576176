"""PortAudio in a process of its own: lists the inputs, or captures one to stdout (engine/audio/input.py).

Run as a script, never imported by the show: ``python -P portaudio_child.py list`` prints one JSON line,
``{"inputs": [[index, name, channels, samplerate], ...]}``; ``python -P portaudio_child.py open '{json}'``
prints ``{"ok": name}`` and then raw float32 blocks (frames x channels, interleaved) as they come. Either
prints ``{"error": why}`` instead when PortAudio or the device says no.

Why a process: PortAudio lists the devices once, when it starts, and a JACK server that dies under it leaves
it unable to start again in that process: closing the stream waits 10 minutes for a callback that never
comes, and ``Pa_Terminate`` (what ``sounddevice._terminate()`` calls to rescan) fails an assertion and aborts
the whole process (Debian's libportaudio2 keeps its asserts). A fresh process sees the devices as they are
now, and the show only ever kills this one. The show closes its stdin to stop it (and kills it if it is still
there a moment later); it leaves then, or when the show is gone, closing PortAudio first only while the
server is there, and never through PortAudio's own exit handler (the same ``Pa_Terminate``).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import sys
import threading
from typing import Any, NoReturn

sd: Any = None  # sounddevice, once imported (PortAudio is initialized then, the JACK client opened)
stream: Any = None  # the input, once open
leaving = threading.Lock()


def say(doc: dict[str, Any]) -> None:
    sys.stdout.buffer.write(json.dumps(doc).encode() + b"\n")
    sys.stdout.buffer.flush()


def leave() -> NoReturn:
    """Close the input and PortAudio while the JACK server is there, then exit at once (``os._exit``: PortAudio's
    exit handler would do the same, and abort if the server is gone). A client that just vanishes in the middle
    of a cycle makes jackd wait 5 s for it when it stops, and drop an xrun meanwhile. A stream that is no longer
    active means the server went away (PortAudio's shutdown callback): then there is nothing to close politely."""
    with leaving:
        if sd is not None and (stream is None or stream.active):
            with contextlib.suppress(Exception):
                if stream is not None:
                    stream.close()
                sd._terminate()
        os._exit(0)


def portaudio() -> Any:
    global sd
    try:
        import sounddevice
    except OSError as err:  # "PortAudio library not found"
        say({"error": f"no PortAudio ({err}); on Debian install libportaudio2"})
        leave()
    sd = sounddevice
    return sounddevice


def list_inputs() -> None:
    global sd
    portaudio()
    try:
        devices = sd.query_devices()
    except Exception as err:
        say({"error": f"cannot list sound devices: {err}"})
        return
    inputs = [[i, str(d["name"]), int(d["max_input_channels"]), float(d["default_samplerate"])]
              for i, d in enumerate(devices) if int(d["max_input_channels"]) > 0]
    with leaving, contextlib.suppress(Exception):  # done with PortAudio: its JACK client leaves now, politely
        sd._terminate()
    sd = None
    say({"inputs": inputs})


def capture(args: dict[str, Any]) -> None:
    """Open the input and copy every block to stdout until the show closes stdin (or kills this process)."""
    global stream
    portaudio()
    device, name = args["device"], args["name"]
    blocks: queue.SimpleQueue[bytes] = queue.SimpleQueue()

    def on_block(indata: Any, frames: int, t: Any, status: Any) -> None:
        blocks.put(bytes(indata))

    try:
        if device is not None and str(sd.query_devices(device)["name"]) != name:
            say({"error": f"the device list changed: {device} is no longer {name!r}"})
            return
        opened = sd.RawInputStream(samplerate=args["samplerate"], blocksize=args["blocksize"], device=device,
                                   channels=args["channels"], dtype="float32", callback=on_block)
        opened.start()
    except Exception as err:  # PortAudioError and friends
        say({"error": f"cannot open the input: {err}"})
        return
    stream = opened
    say({"ok": name})
    out = sys.stdout.buffer
    while True:
        out.write(blocks.get())
        out.flush()


def leave_with_the_show() -> None:
    """The show closes its end of stdin to stop this process (or it died): leave then."""
    sys.stdin.buffer.read()
    leave()


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the show, which stops this process itself
    threading.Thread(target=leave_with_the_show, daemon=True).start()
    try:
        if sys.argv[1:] == ["list"]:
            list_inputs()
        elif len(sys.argv) == 3 and sys.argv[1] == "open":
            capture(json.loads(sys.argv[2]))
        else:
            say({"error": f"usage: {sys.argv[0]} list | open JSON"})
    except BrokenPipeError:  # the show stopped reading
        pass
    except Exception as err:  # said on the protocol, never a traceback in the show's log
        with contextlib.suppress(OSError):
            say({"error": f"{type(err).__name__}: {err}"})
    leave()


if __name__ == "__main__":
    main()
