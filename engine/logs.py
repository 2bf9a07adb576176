"""Logging for the show's process and the backstage process alike: one format, quiet libraries."""

from __future__ import annotations

import logging
import sys


def setup_logging(level: str) -> None:
    """Log ``level`` and up to stderr, one line each (both processes call this with the config's level)."""
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
        force=True,
    )
    # One line per phone connecting would drown the log at a busy show.
    logging.getLogger("websockets").setLevel(logging.WARNING)
