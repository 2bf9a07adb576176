"""MIDI in: controller ports → ``MidiMap`` → commands in the show's inbox.

The I/O shell around ``midi_map`` (which holds the logic and is tested without
ports). ``start()`` picks a mido backend, opens the configured input ports with a
callback, and never raises: no mido, no backend, no ALSA sequencer, no JACK
server or no matching port each become one log line and a plain-words
``status``, and the show goes on without MIDI.

Threads:

- the port callback runs on the backend's thread: rtmidi's input thread with
  ALSA, JACK's process thread with the JACK API. It only maps the message and
  puts the command on the queue; anything it raises is logged (once per kind)
  and swallowed, so one odd message never kills MIDI for the rest of the show.
- ``learn``/``forget``/``snapshot`` come from the backstage loop.
- saving the mappings after a learn runs on a saver thread of our own: with
  JACK the callback runs inside the process cycle, so it must not wait for a
  disk (or even for a new thread to start).

One lock guards the map and the port state.

Closing. With rtmidi, closing a port while messages arrive can hang or corrupt
the interpreter, and mido's own ``close()`` walks into it: it re-installs its
Python callback, then closes while holding the GIL. A backend thread waiting for
the GIL to run that callback is then joined (ALSA: a deadlock) or killed with
``pthread_cancel`` (JACK deactivating a client), which can leave the GIL's mutex
locked for good. Cancelling the callback from another thread is no cure either:
python-rtmidi frees the callback's data while a call may be about to use it.
MIDI clock from a DJ mixer arrives 48 times a second, so a port is rarely quiet
(stopping under a steady stream, mido's close() hung and cancelling from here
crashed, in a stress test on a dummy JACK server). So ``stop()`` asks each
port's own backend thread to cancel its callback, from inside the callback,
where no other call can be under way; only a port that stays silent is cancelled
from here, and the ports are closed once no callback can run. Known limit: a
flood (over ~10,000 messages a second) overflows rtmidi's queue between cancel
and close, and rtmidi can then abort while JACK cancels its thread mid-warning.
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.commands import Command
from engine.config import MidiConfig
from engine.control.midi_map import Control, MidiMap, Target, check_mappable

log = logging.getLogger(__name__)

OFF = "MIDI off"
DETACH_WAIT_S = 0.05  # how long stop() waits for a port's next message to cancel its callback
DRAIN_S = 0.01  # after cancelling a silent port's callback from stop(): a call just starting finishes
SAVER_JOIN_S = 2.0
# rtmidi's errors are C++ messages; these say the same for the VJ.
_BACKEND_REASONS = (
    ("creating alsa sequencer", "ALSA sequencer not available"),
    ("jack server not running", "JACK server not running"),
)


@dataclass(frozen=True)
class MidiState:
    """What the VJ page shows: is MIDI on, why not, which ports, what is learning, the mappings."""

    available: bool
    status: str
    ports: tuple[str, ...]
    learning: Target | None
    mappings: tuple[tuple[Control, Target], ...]


class _NoMidi(Exception):
    """Why MIDI input cannot start: ``status`` for the VJ, logged once at ``level``."""

    def __init__(self, status: str, level: int = logging.INFO) -> None:
        super().__init__(status)
        self.status = status
        self.level = level


def matching_ports(names: Iterable[str], wanted: str) -> list[str]:
    """The input ports to open: every one for ``"all"``, else those whose name contains ``wanted``
    (case-insensitive). A name listed twice is opened once."""
    unique = list(dict.fromkeys(names))
    if wanted.lower() == "all":
        return unique
    return [name for name in unique if wanted.lower() in name.lower()]


def _reason(err: BaseException) -> str:
    """A backend error in plain words (rtmidi's messages are long C++ lines)."""
    text = str(err).strip() or type(err).__name__
    lowered = text.lower()
    for needle, reason in _BACKEND_REASONS:
        if needle in lowered:
            return reason
    return text.splitlines()[0]


class _Port:
    """One open input port, and the way out of its callback (see "Closing" in the module docstring)."""

    def __init__(self) -> None:
        self.port: Any = None  # the mido port, once open_input returns
        self.closing = False
        self.detached = threading.Event()
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return str(getattr(self.port, "name", ""))

    def detach(self) -> None:
        """Cancel rtmidi's callback, once: from then on the backend thread queues messages in C."""
        with self._lock:
            if self.detached.is_set():
                return
            rt = getattr(self.port, "_rt", None)  # mido's rtmidi ports keep the rtmidi object here
            if rt is not None:
                try:
                    rt.cancel_callback()
                except Exception as err:
                    log.debug("MIDI: cancelling the callback of %s: %s", self.name, err)
            self.detached.set()

    def close(self) -> None:
        rt = getattr(self.port, "_rt", None)
        try:
            if rt is None:
                self.port.close()
                return
            rt.close_port()
            rt.delete()
            self.port.closed = True  # mido's close() (and __del__) would re-install its callback: skip it
        except Exception as err:
            log.debug("MIDI: closing %s: %s", self.name, err)


class MidiInput:
    def __init__(self, cfg: MidiConfig, commands: queue.SimpleQueue[Command],
                 on_change: Callable[[], None] = lambda: None, map_path: Path | None = None) -> None:
        self.cfg = cfg
        self.commands = commands
        self.on_change = on_change
        self.map_path = map_path if map_path is not None else Path(cfg.map_file)
        self._map = MidiMap.load(self.map_path)
        self._lock = threading.Lock()  # the map, the ports and the status
        self._save_lock = threading.Lock()  # saves land on disk in the order they were taken
        self._ports: list[_Port] = []
        self._available = False
        self._status = OFF
        self._reported: set[str] = set()
        self._saves: queue.SimpleQueue[bool] = queue.SimpleQueue()  # True: save now; False: saver, stop
        self._saver: threading.Thread | None = None

    # --- ports ---------------------------------------------------------------------------
    def start(self) -> None:
        """Open the configured input ports. Never raises: without MIDI the show goes on."""
        self.stop()
        wanted = self.cfg.input.strip()
        if wanted.lower() in ("", "none"):
            return
        try:
            backend = self._backend(wanted)
            ports = self._open(backend, wanted)
        except _NoMidi as why:
            log.log(why.level, "MIDI: %s; going on without MIDI", why.status)
            self._set_state([], False, why.status)
            return
        except Exception as err:  # a backend can fail in ways no one listed: still not worth the show
            log.warning("MIDI: cannot start (%s: %s); going on without MIDI", type(err).__name__, err)
            self._set_state([], False, f"MIDI failed to start ({_reason(err)})")
            return
        self._saver = threading.Thread(target=self._run_saver, name="midi-save", daemon=True)
        self._saver.start()
        names = ", ".join(port.name for port in ports)
        log.info("MIDI: listening on %s", names)
        self._set_state(ports, True, f"MIDI: {names}")

    def _level(self, wanted: str) -> int:
        """Only an explicit choice that fails deserves a warning: "all" on a machine without MIDI is normal."""
        return logging.WARNING if self.cfg.backend or wanted.lower() != "all" else logging.INFO

    def _backend(self, wanted: str) -> Any:
        """The mido backend object (never mido's global one); ``_NoMidi`` when it cannot load."""
        level = self._level(wanted)
        try:
            import mido
        except ImportError as err:
            raise _NoMidi("no MIDI support (mido is not installed)", level) from err
        try:
            return mido.Backend(self.cfg.backend or None, load=True)
        except (ImportError, OSError, ValueError) as err:  # module, rtmidi under it, or its shared library
            raise _NoMidi(f"no MIDI backend ({self.cfg.backend or 'default'}: {_reason(err)})", level) from err

    def _open(self, backend: Any, wanted: str) -> list[_Port]:
        """The wanted input ports, opened with our callback; ``_NoMidi`` when there are none."""
        level = self._level(wanted)
        try:
            available = list(backend.get_input_names())
        except (OSError, ValueError, RuntimeError) as err:  # rtmidi.SystemError is an OSError
            raise _NoMidi(f"no MIDI backend ({_reason(err)})", level) from err
        names = matching_ports(available, wanted)
        if not names:
            if wanted.lower() == "all":
                raise _NoMidi("no MIDI input ports", logging.INFO)
            listed = ", ".join(repr(n) for n in available) or "none"
            raise _NoMidi(f"no MIDI input matching {wanted!r} (ports: {listed})", logging.WARNING)
        ports: list[_Port] = []
        failures: list[str] = []
        for name in names:
            slot = _Port()
            try:
                slot.port = backend.open_input(name, callback=functools.partial(self._on_message, slot))
            except (OSError, ValueError, RuntimeError) as err:
                failures.append(f"{name!r} ({_reason(err)})")
                continue
            ports.append(slot)
        if failures and ports:
            log.warning("MIDI: could not open %s", ", ".join(failures))
        if not ports:
            raise _NoMidi(f"could not open MIDI input {', '.join(failures)}", logging.WARNING)
        return ports

    def _set_state(self, ports: list[_Port], available: bool, status: str) -> None:
        with self._lock:
            self._ports, self._available, self._status = ports, available, status

    def stop(self) -> None:
        """Close the ports (a learn already made is still saved); safe to call twice, or when never started."""
        with self._lock:
            ports, self._ports = self._ports, []
            self._available, self._status = False, OFF
        # Outside the lock: a callback under way may be waiting for it.
        for slot in ports:
            slot.closing = True
        deadline = time.monotonic() + DETACH_WAIT_S
        for slot in ports:  # a port with traffic cancels its own callback on its next message
            slot.detached.wait(max(0.0, deadline - time.monotonic()))
        silent = [slot for slot in ports if not slot.detached.is_set()]
        for slot in silent:
            slot.detach()
        if silent:
            time.sleep(DRAIN_S)  # releases the GIL: a call that was just starting finishes
        for slot in ports:
            slot.close()
        saver, self._saver = self._saver, None
        if saver is not None:
            self._saves.put(False)
            saver.join(SAVER_JOIN_S)

    # --- the backend's thread ------------------------------------------------------------
    def _on_message(self, slot: _Port, message: Any) -> None:
        try:
            if slot.closing:
                slot.detach()
                return
            with self._lock:
                was_learning = self._map.learning is not None
                command = self._map.handle(message)
                learned = was_learning and self._map.learning is None
            if command is not None:
                self.commands.put(command)
            if learned:
                self._saves.put(True)
        except Exception as err:
            self._report(err)

    def _run_saver(self) -> None:
        while self._saves.get():
            try:
                self._save()
                self.on_change()
            except Exception as err:
                self._report(err)

    def _report(self, err: Exception) -> None:
        """Log an unexpected error once per kind: a controller can send thousands of messages a minute."""
        kind = type(err).__name__
        if kind in self._reported:
            log.debug("MIDI: %s: %s", kind, err)
            return
        self._reported.add(kind)
        log.error("MIDI: error handling input (%s: %s); later ones of this kind are not logged",
                  kind, err, exc_info=err)

    # --- the VJ's hand on the mappings (any thread) ---------------------------------------
    def learn(self, target: Target | None) -> None:
        """The next control that moves is bound to ``target`` (its range already set); None cancels."""
        if target is not None:
            check_mappable(target)
        with self._lock:
            self._map.learning = target
        if target is not None:
            log.info("MIDI learn: move a control for %s", target.param or target.action)

    def forget(self, control: Control) -> None:
        """Unbind ``control``; the file is saved and ``on_change`` called. An unbound control is a no-op."""
        with self._lock:
            removed = self._map.mappings.pop(control, None)
        if removed is None:
            return
        log.info("MIDI: %s %d on channel %d unbound", control.kind, control.number, control.channel + 1)
        self._save()
        self.on_change()

    def snapshot(self) -> MidiState:
        with self._lock:
            return MidiState(available=self._available, status=self._status,
                             ports=tuple(port.name for port in self._ports), learning=self._map.learning,
                             mappings=tuple(self._map.mappings.items()))

    def _save(self) -> None:
        """Write the mappings file; a failure is a warning (the mappings still work until the engine stops)."""
        with self._save_lock:
            with self._lock:
                copy = MidiMap()
                copy.mappings = dict(self._map.mappings)
            try:
                copy.save(self.map_path)
            except OSError as err:
                log.warning("MIDI: cannot save mappings to %s (%s); they last until the engine stops",
                            self.map_path, err)

