"""What the roles write into Redis and read back: stream entries and channel messages, encoded and checked.

Sans-I/O. Everything read from Redis is checked like any input from outside: a malformed entry (another
version, a hand-typed XADD) is a ``WireError`` naming the field, and the reader drops that entry and goes
on. Prompt ids are minted by the intake (``new_prompt_id``), so a prompt delivered twice (at least once,
after a crash or a Redis failover) is the same prompt to the show, and the ledger keeps it once.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from engine.contract import State
from engine.errors import EngineError
from engine.gen.base import GeneratedImage, GenerationRequest
from engine.net.protocol import CLIENT_ID, PromptStatus

PROMPT_ID = re.compile(r"p-[0-9a-f]{12}")
MAX_TEXT = 4000  # characters: far above any [audience] max_length, so only junk is refused here
MAX_IMAGES = 8
MAX_FIELD = 64


class WireError(EngineError):
    def __init__(self, what: str, problem: str) -> None:
        super().__init__(f"{what}: {problem}")
        self.what = what


def new_prompt_id() -> str:
    return f"p-{secrets.token_hex(6)}"


Fields = Mapping[bytes | str, bytes | str]


def _text(f: Fields, name: str, what: str, required: bool = True, most: int = MAX_FIELD) -> str:
    raw = f.get(name.encode(), f.get(name))
    if raw is None:
        if required:
            raise WireError(what, f"{name} is missing")
        return ""
    try:
        value = raw.decode() if isinstance(raw, bytes) else str(raw)
    except UnicodeDecodeError:
        raise WireError(what, f"{name} is not UTF-8") from None
    if len(value) > most:
        raise WireError(what, f"{name} is longer than {most} characters")
    return value


def _blob(f: Fields, name: str) -> bytes | None:
    raw = f.get(name.encode(), f.get(name))
    if raw is None:
        return None
    return raw if isinstance(raw, bytes) else raw.encode()


def _prompt_id(f: Fields, what: str) -> str:
    pid = _text(f, "id", what)
    if not PROMPT_ID.fullmatch(pid):
        raise WireError(what, f"id {pid[:20]!r} is not a prompt id")
    return pid


# --- prompts: intake → show ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class PromptEntry:
    id: str
    client_id: str
    ip: str
    text: str
    ref: str | None = None

    def fields(self) -> dict[str, str]:
        out = {"id": self.id, "client": self.client_id, "ip": self.ip, "text": self.text}
        if self.ref is not None:
            out["ref"] = self.ref
        return out


def read_prompt(f: Fields) -> PromptEntry:
    what = "prompt entry"
    pid = _prompt_id(f, what)
    client = _text(f, "client", what)
    if not CLIENT_ID.match(client):
        raise WireError(what, "client is not a client id")
    ref = _text(f, "ref", what, required=False) or None
    return PromptEntry(pid, client, _text(f, "ip", what), _text(f, "text", what, most=MAX_TEXT), ref)


# --- jobs: show → generate workers ----------------------------------------------------------------------------
REQUEST_FIELDS = tuple(f.name for f in fields(GenerationRequest) if f.name != "init_image")


def job_fields(request: GenerationRequest) -> dict[str, str | bytes]:
    params = {k: v for k, v in asdict(request).items() if k in REQUEST_FIELDS}
    out: dict[str, str | bytes] = {"id": request.prompt_id, "request": json.dumps(params)}
    if request.init_image is not None:
        out["init"] = request.init_image
    return out


def read_job(f: Fields) -> GenerationRequest:
    what = "job entry"
    pid = _prompt_id(f, what)
    try:
        params = json.loads(_text(f, "request", what, most=MAX_TEXT * 2))
    except json.JSONDecodeError as err:
        raise WireError(what, f"request is not JSON ({err.msg})") from None
    if not isinstance(params, dict) or set(params) - set(REQUEST_FIELDS):
        raise WireError(what, "request has unknown fields")
    params["prompt_id"] = pid
    try:
        return GenerationRequest(**params, init_image=_blob(f, "init"))
    except TypeError as err:
        raise WireError(what, f"request: {err}") from None


# --- results: generate workers → show -------------------------------------------------------------------------
@dataclass(frozen=True)
class Result:
    prompt_id: str
    images: tuple[GeneratedImage, ...] = ()
    error: str = ""  # a failure the worker could not get past (the show falls back to its offline generator)
    worker: str = ""


def result_fields(result: Result) -> dict[str, str | bytes]:
    out: dict[str, str | bytes] = {"id": result.prompt_id, "n": str(len(result.images)), "worker": result.worker}
    if result.error:
        out["error"] = result.error[:500]
    for i, image in enumerate(result.images):
        if image.data is None:
            raise WireError("result", "an image must be encoded (data) before it goes on the wire")
        out[f"img{i}"] = image.data
        out[f"mime{i}"] = image.mime
        out[f"seed{i}"] = str(image.seed)
        out[f"meta{i}"] = json.dumps(image.metadata)
    return out


def read_result(f: Fields) -> Result:
    what = "result entry"
    pid = _prompt_id(f, what)
    try:
        n = int(_text(f, "n", what))
    except ValueError:
        raise WireError(what, "n is not a number") from None
    if not 0 <= n <= MAX_IMAGES:
        raise WireError(what, f"n is {n}, expected 0 to {MAX_IMAGES}")
    images = []
    for i in range(n):
        data = _blob(f, f"img{i}")
        if not data:
            raise WireError(what, f"img{i} is missing")
        try:
            seed = int(_text(f, f"seed{i}", what))
            meta = json.loads(_text(f, f"meta{i}", what, most=MAX_TEXT))
        except (ValueError, json.JSONDecodeError):
            raise WireError(what, f"seed{i} or meta{i} is malformed") from None
        if not isinstance(meta, dict):
            raise WireError(what, f"meta{i} is not an object")
        images.append(GeneratedImage(data=data, mime=_text(f, f"mime{i}", what), seed=seed,
                                     metadata={str(k): str(v) for k, v in meta.items()}))
    error = _text(f, "error", what, required=False, most=500)
    if not images and not error:
        raise WireError(what, "neither images nor an error")
    return Result(pid, tuple(images), error, _text(f, "worker", what, required=False, most=200))


# --- statuses: show → intakes (Pub/Sub) and each phone's history ----------------------------------------------
def status_dict(s: PromptStatus) -> dict[str, Any]:
    d: dict[str, Any] = {"id": s.id, "text": s.text, "state": s.state.value}
    for name in ("position", "reason", "retry_after", "ref"):
        value = getattr(s, name)
        if value is not None:
            d[name] = value
    if s.image_urls:
        d["image_urls"] = list(s.image_urls)
    return d


def read_status(d: Any) -> PromptStatus:
    what = "status"
    if not isinstance(d, dict):
        raise WireError(what, "not an object")
    try:
        state = State(d["state"])
        pid, text = d["id"], d["text"]
        if not isinstance(pid, str) or not isinstance(text, str):
            raise TypeError
        position = d.get("position")
        retry = d.get("retry_after")
        urls = d.get("image_urls", [])
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
            raise TypeError
        return PromptStatus(pid, text, state, int(position) if position is not None else None,
                            d.get("reason"), float(retry) if retry is not None else None, tuple(urls), d.get("ref"))
    except (KeyError, ValueError, TypeError):
        raise WireError(what, "malformed") from None


def statuses_message(outbox: Sequence[tuple[str, PromptStatus]]) -> bytes:
    """One Pub/Sub message for a whole step's statuses: [[client, status], ...]."""
    return json.dumps([[c, status_dict(s)] for c, s in outbox], separators=(",", ":")).encode()


def read_statuses(data: bytes) -> list[tuple[str, PromptStatus]]:
    try:
        items = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise WireError("status message", "not JSON") from None
    if not isinstance(items, list):
        raise WireError("status message", "not a list")
    out = []
    for item in items:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
            raise WireError("status message", "an item is not [client, status]")
        out.append((item[0], read_status(item[1])))
    return out


def history_value(s: PromptStatus) -> bytes:
    return json.dumps(status_dict(s), separators=(",", ":")).encode()


def read_history(values: Mapping[bytes, bytes]) -> list[PromptStatus]:
    """A phone's history hash → its statuses, oldest prompt first (prompt ids do not sort by time: the
    status keeps no time, so the order is the hash's; the page sorts by its own)."""
    out = []
    for raw in values.values():
        try:
            out.append(read_status(json.loads(raw)))
        except (WireError, json.JSONDecodeError, UnicodeDecodeError):
            continue  # one damaged entry does not cost the phone its whole history
    return out
