"""Stagecraft: a real-time visuals engine for live shows."""

from __future__ import annotations

NAME = "stagecraft"
__version__ = "0.1.0"
