"""The audience protocol without sockets: frames in, messages and replies out.

Documented for page authors in ``docs/protocol.md``. Nothing here imports
``websockets`` or ``asyncio``: the server only pumps frames between the socket
and these functions, so every rule is tested with plain calls.

Every reason a phone can read comes with a stable code (``error.code``, ``status.reason_code``) and
its parameters, which the page renders in its own language from ``web/i18n/``; the English text
stays in the message for older pages and for people reading the wire.
"""

from __future__ import annotations

import functools
import json
import re
import secrets
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.contract import FINAL_STATES as FINAL_STATES  # re-exported: the wire's words
from engine.contract import State as State
from engine.errors import EngineError

CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
MAX_REF = 64
ERROR_WINDOW_S = 10.0


class ProtocolError(EngineError):
    """A message the server cannot take; ``code`` is the machine-readable name from docs/protocol.md."""

    def __init__(self, code: str, message: str, ref: str | None = None,
                 params: Mapping[str, int | str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.ref = ref
        self.params = dict(params or {})  # what the page's own words for ``code`` need (max_length)


@dataclass(frozen=True)
class PromptMsg:
    text: str
    ref: str | None = None


@dataclass(frozen=True)
class PingMsg:
    pass


Message = PromptMsg | PingMsg


def parse(frame: str | bytes, max_length: int) -> Message:
    """One frame from a phone → a message; ProtocolError says what is wrong with it."""
    if isinstance(frame, bytes | bytearray | memoryview):
        raise ProtocolError("binary_not_allowed", "Only text messages are accepted.")
    try:
        data = json.loads(frame)
    except (json.JSONDecodeError, RecursionError):
        raise ProtocolError("bad_json", "That message was not valid JSON.") from None
    if not isinstance(data, dict):
        raise ProtocolError("bad_json", "A message must be a JSON object with a type.")
    raw_ref = data.get("ref")
    ref = raw_ref if isinstance(raw_ref, str) and len(raw_ref) <= MAX_REF else None
    try:
        return _parse_object(data, max_length, ref)
    except ProtocolError as err:
        err.ref = ref
        raise


def _parse_object(data: dict[str, Any], max_length: int, ref: str | None) -> Message:
    kind = data.get("type")
    if kind == "ping":
        return PingMsg()
    if kind != "prompt":
        raise ProtocolError("unknown_type", "Unknown message type." if kind is not None else "A message needs a type.")
    if "text" not in data:
        raise ProtocolError("missing_field", "A prompt needs a text.")
    text = data["text"]
    if not isinstance(text, str):
        raise ProtocolError("wrong_type", "The prompt text must be a string.")
    if data.get("ref") is not None and ref is None:
        raise ProtocolError("wrong_type", f"ref must be a string of at most {MAX_REF} characters.")
    text = clean_text(text)
    if not text:
        raise ProtocolError("empty", "Type something first!")
    if len(text) > max_length:
        raise ProtocolError("too_long", f"That prompt is too long: {max_length} characters at most.",
                            params={"max_length": max_length})
    return PromptMsg(text, ref)


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u202a-\u202e\u2066-\u2069]")


def clean_text(text: str) -> str:
    """Prompt text as data: control and bidi-override characters out, whitespace collapsed."""
    return " ".join(_CONTROL.sub(" ", text).split())


def client_id_or_new(candidate: str | None) -> tuple[str, bool]:
    """The phone's own id if it is well-formed, else a fresh one; (id, whether it is new)."""
    if candidate and CLIENT_ID.match(candidate):
        return candidate, False
    return secrets.token_urlsafe(18), True


# --- reasons ------------------------------------------------------------------------------------------
REASONS: dict[str, str] = {
    # refused on arrival (net/audience.py, net/moderation.py)
    "slow_down": "Slow down! You can send another prompt in {seconds} s.",
    "duplicate": "You already sent that one. Try something new!",
    "too_many_waiting": "You have enough prompts waiting. Send more once they are on screen!",
    "queue_full": "The queue is full, try again in a minute.",
    "too_many_phones": "Too many phones are sending from your network right now. Try again in a minute.",
    "busy": "The show is very busy right now. Try again in a minute.",
    "banned": "Sorry, you can't send prompts at this show.",
    "blocked": "Sorry, that prompt isn't allowed here. Try something else!",
    # the VJ's hand (net/audience.py)
    "vj_rejected": "Not this time, sorry!",
    "removed": "Removed from the queue by the VJ.",
    # the generator's answer (gen/base.py default_user_message, gen/pipeline.py)
    "generator_refused": "Sorry, that prompt is not allowed here. Try something else!",
    "unusable": "Sorry, that prompt could not be used. English prompts work best.",
    "generation_failed": "Sorry, something went wrong making your image. Please try again.",
    "image_failed": "The image could not be made. Please try again.",
    "internal": "Something went wrong ({error}).",
}
"""Reason code → its English text, ``{name}`` for a parameter. The phone page has the same keys as
``reason.<code>`` in every catalog (``web/i18n/``); tests hold the English there equal to this."""
CUSTOM_REASON = "custom"
"""The code of a reason no table knows: words the VJ typed. The page shows ``reason`` as it is."""


def reason_text(code: str, **params: int | str) -> str:
    """The English reason for ``code`` with its parameters filled in."""
    text = REASONS[code]
    for name, value in params.items():
        text = text.replace("{" + name + "}", str(value))
    return text


def _pattern(template: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>.+?)", re.escape(template)))


_EXACT = {text: code for code, text in REASONS.items() if "{" not in text}
_PATTERNS = tuple((code, _pattern(text)) for code, text in REASONS.items() if "{" in text)


@functools.lru_cache(maxsize=1024)  # a crowd's refusals say the same few dozen things
def _reason_code(text: str) -> tuple[str, tuple[tuple[str, int | str], ...]]:
    code = _EXACT.get(text)
    if code is not None:
        return code, ()
    for code, pattern in _PATTERNS:
        match = pattern.fullmatch(text)
        if match is not None:
            return code, tuple((k, int(v) if v.isdigit() else v) for k, v in match.groupdict().items())
    return CUSTOM_REASON, ()


def reason_code(text: str) -> tuple[str, dict[str, int | str]]:
    """The code and parameters of a reason, read back from its English text; ``custom`` when none fits.

    Reasons travel as text, from the audience, the moderator, the generators and the VJ through the
    ledger into the journal and back after a restart; reading the code at the edge, from the one
    table above, gives every one of them a code without threading one through each of those hands.
    """
    code, params = _reason_code(text)
    return code, dict(params)


@dataclass(frozen=True)
class PromptStatus:
    """What a phone is told about one of its prompts."""

    id: str
    text: str
    state: State
    position: int | None = None
    reason: str | None = None
    retry_after: float | None = None
    image_urls: tuple[str, ...] = ()
    ref: str | None = None

    def to_message(self, per_place: float = 0.0) -> dict[str, Any]:
        """The wire form; ``per_place``: seconds the screen takes per image, for a queued prompt's ``wait``."""
        msg: dict[str, Any] = {"type": "status", "id": self.id, "text": self.text, "state": self.state.value}
        if self.ref is not None:
            msg["ref"] = self.ref
        if self.state is State.QUEUED:
            msg["position"] = self.position
            if self.position is not None and per_place > 0:
                msg["wait"] = round(self.position * per_place)
        if self.reason is not None:
            msg["reason"] = self.reason
            code, params = reason_code(self.reason)
            msg["reason_code"] = code
            if params:
                msg["reason_params"] = params
        if self.retry_after is not None:
            msg["retry_after"] = round(self.retry_after, 1)
        if self.image_urls:
            msg["image_url"] = self.image_urls[-1] if self.state is State.SHOWING else self.image_urls[0]
            if len(self.image_urls) > 1:
                msg["images"] = list(self.image_urls)
        return msg


def encode(message: dict[str, Any]) -> str:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))


def welcome(client_id: str, max_length: int, cooldown: float, prompts: list[PromptStatus], feed: bool,
            per_place: float = 0.0, best_language: str | None = "en", captions: bool = False,
            intakes: tuple[str, ...] = ()) -> str:
    """The server's first words; ``best_language``: the prompt language the generator in use works best
    with (``i18n.best_language_for``), None when any language does as well; ``captions``: a prompt's words
    are shown with its image on the big screen (``[overlay] captions``); ``intakes``: the addresses a phone
    may move to when this one goes away (``[cluster] intakes``; only sent when there are some)."""
    msg = {"type": "welcome", "client_id": client_id, "max_length": max_length, "cooldown": cooldown,
           "prompts": [p.to_message(per_place) for p in prompts], "feed": feed,
           "best_language": best_language, "captions": captions}
    if intakes:
        msg["intakes"] = list(intakes)
    return encode(msg)


def error(code: str, message: str, ref: str | None = None, params: Mapping[str, int | str] | None = None) -> str:
    msg: dict[str, Any] = {"type": "error", "code": code, "message": message}
    if params:
        msg["params"] = dict(params)
    if ref is not None:
        msg["ref"] = ref
    return encode(msg)


def status(s: PromptStatus, per_place: float = 0.0) -> str:
    return encode(s.to_message(per_place))


def feed(text: str) -> str:
    return encode({"type": "feed", "text": text})


PONG = encode({"type": "pong"})
TOO_FAST = error("too_fast", "Too many messages: slow down.")  # the frame was not read, so it has no ref


class ErrorBudget:
    """Counts one connection's bad messages; past ``limit`` in 10 s the client is abusive."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._times: deque[float] = deque()

    def record(self, now: float) -> bool:
        """Note one error; True when the client should be disconnected."""
        self._times.append(now)
        while self._times and now - self._times[0] > ERROR_WINDOW_S:
            self._times.popleft()
        return len(self._times) > self.limit
