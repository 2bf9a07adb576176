"""Audio analysis for the show: features per block of samples, beats predicted ahead (sans-I/O)."""

from __future__ import annotations

from engine.audio.analysis import Analyzer, Features
from engine.audio.beat import BeatEvent, BeatTracker, TempoLock, TrackerConfig

__all__ = ["Analyzer", "BeatEvent", "BeatTracker", "Features", "TempoLock", "TrackerConfig"]
