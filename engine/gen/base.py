"""The generator seam: one async protocol for every image backend.

A ``GenerationRequest`` goes in; a list of ``GeneratedImage`` comes out, or a
``GenerationError`` whose ``kind`` says what happened in terms the pipeline acts
on (retry, fall back, tell the sender "not allowed", tell the VJ). The pipeline
never looks at which backend ran.

    GenerationError (EngineError)
        kind: FailureKind       what happened
        user_message: str       what the person who sent the prompt is told
        vj_message: str         what the VJ sees, in plain words (never the API key)
        retry_after: float|None seconds to wait before trying again, when known
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

import numpy as np

from engine.errors import EngineError

ASPECT_RATIOS = ("16:9", "1:1", "21:9", "2:3", "3:2", "4:5", "5:4", "9:16", "9:21")


class FailureKind(StrEnum):
    MODERATED = "moderated"  # the prompt or the picture was not allowed: tell the sender, never retry
    BAD_REQUEST = "bad_request"  # our bug or bad config (400): log it, no retry
    UNAUTHORIZED = "unauthorized"  # missing or wrong key (401): backend unusable, tell the VJ
    PAYMENT = "payment"  # out of credits (402): tell the VJ, fall back
    TOO_LARGE = "too_large"  # request over the size cap (413): shrink, no blind retry
    UNPROCESSABLE = "unprocessable"  # well-formed but refused (422), e.g. the language: tell the sender
    RATE_LIMITED = "rate_limited"  # 429: back off, keep the queue
    SERVER = "server"  # 5xx: retry with backoff
    NETWORK = "network"  # connection failed or timed out: retry with backoff
    BAD_RESPONSE = "bad_response"  # an answer we cannot use (corrupt image, wrong shape)
    UNAVAILABLE = "unavailable"  # circuit open / backend off: fall back


RETRYABLE = frozenset({FailureKind.RATE_LIMITED, FailureKind.SERVER, FailureKind.NETWORK})


class GenerationError(EngineError):
    def __init__(self, kind: FailureKind, vj_message: str, user_message: str = "",
                 retry_after: float | None = None, status: int | None = None) -> None:
        super().__init__(f"{kind.value}: {vj_message}")
        self.kind = kind
        self.vj_message = vj_message
        self.user_message = user_message or default_user_message(kind)
        self.retry_after = retry_after
        self.status = status

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE


def default_user_message(kind: FailureKind) -> str:
    if kind is FailureKind.MODERATED:
        return "Sorry, that prompt is not allowed here. Try something else!"
    if kind is FailureKind.UNPROCESSABLE:
        return "Sorry, that prompt could not be used. English prompts work best."
    return "Sorry, something went wrong making your image. Please try again."


@dataclass(frozen=True)
class GenerationRequest:
    """What to make. Sizes are the show's wish; a backend maps them to what it supports."""

    prompt_id: str
    prompt: str
    negative_prompt: str = ""
    width: int = 1024
    height: int = 1024
    aspect_ratio: str = "1:1"
    seed: int = 0  # 0: the backend picks one (and reports it)
    samples: int = 1  # images per prompt
    style_preset: str = ""
    cfg_scale: float | None = None
    steps: int | None = None
    init_image: bytes | None = None  # PNG/JPEG for image-to-image
    strength: float = 0.35  # how far image-to-image may move from init_image (0..1)


@dataclass(frozen=True, eq=False)
class GeneratedImage:
    """One result: encoded bytes from an API, or pixels from a local generator (RGBA, top row first)."""

    data: bytes | None = None
    mime: str = "image/png"
    pixels: np.ndarray | None = None
    seed: int = 0
    metadata: dict[str, str] = field(default_factory=dict)


class Generator(Protocol):
    """Every backend: Stability, the offline procedural generator, test fakes."""

    name: str

    async def generate(self, request: GenerationRequest) -> list[GeneratedImage]:
        """Make the images for ``request``; raise GenerationError on failure."""
        ...

    async def aclose(self) -> None:
        """Release connections and workers."""
        ...
