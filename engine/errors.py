"""One exception tree for the whole engine.

    EngineError
    ├── ConfigError        a bad key, type or value in config.toml or on the command line
    ├── RenderError        the GL context or window could not be made
    │   └── ShaderError    a shader failed to compile or link (file, line, driver message)
    └── ImageError         an image that cannot be shown (wrong shape, too big)

Every error prints as one readable line: callers at the edge log ``str(err)``.
"""

from __future__ import annotations


class EngineError(Exception):
    """Base of every error the engine raises on purpose."""


class ConfigError(EngineError):
    """A configuration value is unknown, of the wrong type or out of range."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


class RenderError(EngineError):
    """The GL context, window or a GL resource could not be created."""


class ShaderError(RenderError):
    """A shader did not compile or link; carries where and why."""

    def __init__(self, file: str, line: int | None, message: str) -> None:
        where = f"{file}:{line}" if line is not None else file
        super().__init__(f"{where}: {message}")
        self.file = file
        self.line = line
        self.message = message


class ImageError(EngineError):
    """An image that the show cannot display."""
