"""Drive real X windows from tests: an Xvfb server, key presses, a window manager's close.

Uses Debian's Xvfb and xdotool, and libX11 through ctypes for WM_DELETE_WINDOW
(what a window manager sends when the user clicks the close button).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest


@dataclass
class XServer:
    display: str
    process: subprocess.Popen[bytes]

    def env(self) -> dict[str, str]:
        return {**os.environ, "DISPLAY": self.display}

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_xvfb(size: str = "1280x720x24") -> XServer:
    """Start Xvfb on a free display number (it picks one and tells us)."""
    exe = shutil.which("Xvfb")
    if exe is None:
        pytest.fail("Xvfb is required for window tests (Debian package xvfb); run `make test`", pytrace=False)
    r, w = os.pipe()
    proc = subprocess.Popen(
        [exe, "-displayfd", str(w), "-screen", "0", size, "-nolisten", "tcp"],
        pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    os.close(w)
    with os.fdopen(r) as f:
        number = f.readline().strip()
    if not number:
        proc.kill()
        pytest.fail("Xvfb did not start", pytrace=False)
    return XServer(f":{number}", proc)


def xdotool(server: XServer, *args: str) -> str:
    exe = shutil.which("xdotool")
    if exe is None:
        pytest.fail("xdotool is required for window tests (Debian package xdotool); run `make test`",
                    pytrace=False)
    out = subprocess.run([exe, *args], env=server.env(), capture_output=True, text=True, timeout=10)
    return out.stdout.strip()


def find_window(server: XServer, name: str, timeout: float = 20.0) -> int:
    """The id of the first visible window whose title matches ``name``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ids = xdotool(server, "search", "--onlyvisible", "--name", name).split()
        if ids:
            return int(ids[0])
        time.sleep(0.1)
    raise AssertionError(f"no window named {name!r} appeared within {timeout:.0f} s")


def press(server: XServer, window: int, key: str) -> None:
    """Focus the window and type one key, through XTEST like a real keyboard."""
    xdotool(server, "windowfocus", "--sync", str(window))
    xdotool(server, "key", key)


def press_until(server: XServer, name: str, key: str, done: Callable[[], bool], attempts: int = 5,
                wait: float = 3.0) -> None:
    """Press ``key`` on the window called ``name`` until ``done()``.

    pyglet recreates its X window when fullscreen changes, so a key sent while the
    new window is still being mapped can be lost; look the window up and try again.
    """
    for _ in range(attempts):
        press(server, find_window(server, name), key)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if done():
                return
            time.sleep(0.05)
    raise AssertionError(f"pressing {key} {attempts} times never took effect")


class _XClientMessageEvent(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("serial", ctypes.c_ulong),
        ("send_event", ctypes.c_int),
        ("display", ctypes.c_void_p),
        ("window", ctypes.c_ulong),
        ("message_type", ctypes.c_ulong),
        ("format", ctypes.c_int),
        ("data", ctypes.c_long * 5),
    ]


class _XEvent(ctypes.Union):
    _fields_ = [("xclient", _XClientMessageEvent), ("pad", ctypes.c_long * 24)]


def close_window(server: XServer, window: int) -> None:
    """Send WM_DELETE_WINDOW, as a window manager's close button does."""
    name = ctypes.util.find_library("X11")
    if name is None:
        pytest.fail("libX11 is required for window tests", pytrace=False)
    x11 = ctypes.CDLL(name)
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XInternAtom.restype = ctypes.c_ulong
    x11.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    x11.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long,
                               ctypes.POINTER(_XEvent)]
    x11.XFlush.argtypes = [ctypes.c_void_p]
    x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    dpy = x11.XOpenDisplay(server.display.encode())
    assert dpy, f"cannot open display {server.display}"
    try:
        ev = _XEvent()
        ev.xclient.type = 33  # ClientMessage
        ev.xclient.window = window
        ev.xclient.message_type = x11.XInternAtom(dpy, b"WM_PROTOCOLS", 0)
        ev.xclient.format = 32
        ev.xclient.data[0] = x11.XInternAtom(dpy, b"WM_DELETE_WINDOW", 0)
        x11.XSendEvent(dpy, window, 0, 0, ctypes.byref(ev))
        x11.XFlush(dpy)
    finally:
        x11.XCloseDisplay(dpy)
