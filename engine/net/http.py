"""HTTP answers both servers give (the audience server and the control page's own port).

Every answer carries the security headers; files are served only from a list made at start-up
(a request path is never joined onto a folder); images are looked up by id, off the loop when
the lookup is a coroutine (their bytes come from the journal's disk).
"""

from __future__ import annotations

import http
import inspect
import mimetypes
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Response

WEB_ROOT = Path(__file__).resolve().parent.parent.parent / "web"
CSP = ("default-src 'self'; img-src 'self' data: blob:; connect-src 'self' ws: wss:; style-src 'self'; "
       "script-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; object-src 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}

# image id → (bytes, content type), or None; a coroutine when the bytes come from the disk
Found = tuple[bytes, str] | None
ImageLookup = Callable[[str], Found | Awaitable[Found]]


def static_files(root: Path, exclude: tuple[str, ...] = ()) -> dict[str, Path]:
    """URL path → file for every regular file under ``root`` (no symlinks, nothing outside, not the
    top-level folders in ``exclude``)."""
    files: dict[str, Path] = {}
    if not root.is_dir():
        return files
    base = root.resolve()
    for path in root.rglob("*"):
        if path.is_symlink() or not path.is_file():
            continue
        real = path.resolve()
        parts = path.relative_to(root).parts
        if not real.is_relative_to(base) or any(part.startswith(".") for part in parts) or parts[0] in exclude:
            continue
        files["/" + path.relative_to(root).as_posix()] = real
    if "/index.html" in files:
        files["/"] = files["/index.html"]
    return files


def http_response(status: http.HTTPStatus, body: bytes, content_type: str, cache: str = "no-cache",
                  extra: Mapping[str, str] | None = None) -> Response:
    """An answer with the security headers; ``extra`` adds headers or replaces them (a page's own CSP)."""
    headers = Headers({"Content-Type": content_type, "Content-Length": str(len(body)), "Cache-Control": cache,
                       **SECURITY_HEADERS, **(extra or {})})
    return Response(status.value, status.phrase, headers, body)


def text_response(status: http.HTTPStatus, text: str, cache: str = "no-cache") -> Response:
    return http_response(status, (text + "\n").encode(), "text/plain; charset=utf-8", cache)


def content_type(file: Path) -> str:
    """A served file's Content-Type, with the charset for text."""
    mime = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    if mime.startswith("text/") or mime in ("application/javascript", "application/json"):
        mime += "; charset=utf-8"
    return mime


async def image_response(lookup: ImageLookup, image_id: str, cache: str, missing_cache: str = "no-cache"
                         ) -> Response:
    """An image by id, or 404; awaits the lookup when it reads the disk, so the loop never does."""
    found = lookup(image_id)
    if inspect.isawaitable(found):
        found = await found
    if found is None:
        return text_response(http.HTTPStatus.NOT_FOUND, "Not found", missing_cache)
    body, mime = found
    return http_response(http.HTTPStatus.OK, body, mime, cache)


def is_vj_path(path: str) -> bool:
    return path == "/vj" or path.startswith("/vj/")


def ip_of(connection: ServerConnection) -> str:
    addr = connection.remote_address
    return str(addr[0]) if addr else "unknown"
