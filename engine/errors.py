"""One exception tree for the whole engine.

    EngineError                      base of every error the engine raises on purpose (errors.py)
    ├── ConfigError                  a bad key, type or value in config.toml or on the command line
    ├── RenderError                  the GL context or window could not be made
    │   └── ShaderError              a shader failed to compile or link (file, line, driver message)
    ├── ImageError                   an image that cannot be shown or encoded (wrong shape, too big)
    ├── BackstageError               the backstage could not start (port, output folder, blocklist)
    ├── StoreError                   the journal cannot be used, or was called wrongly (store/errors.py)
    ├── GenerationError              an image backend failed; ``kind`` says whose fault (gen/base.py)
    ├── LocalModelError              the local model's folder or device cannot be used (gen/local/folder.py)
    ├── DreamError                   a dream step gave nothing to show: NaN, flagged (gen/local/dream.py)
    ├── ProtocolError                a phone's message the server cannot take; ``code`` (net/protocol.py)
    │   └── VjProtocolError          the same for the control page (net/vj_protocol.py)
    ├── ModerationError              a blocklist file that cannot be read (net/moderation.py)
    ├── LedgerError                  an operation on a prompt the ledger cannot act on (ledger.py)
    ├── OscError                     an OSC message with no meaning here (control/osc_map.py)
    ├── RecordError                  a recording could not start: folder, file or preset (output/record.py)
    ├── ClusterError                 Redis cannot be used by a cluster role: unreachable, refused (cluster/link.py)
    ├── WireError                    a Redis stream entry or message that cannot be read (cluster/wire.py)
    └── ParamError                   a shader parameter value out of its type or range (shaders/params.py)

Signals that never leave their module, and so stay outside the tree: ``usage.UsageError`` (a bad flag:
exit code 2, in every command),
``audio.input.AudioUnavailable`` (no sound input right now), ``output.sink.Unavailable`` and
``inputs.source.SourceUnavailable`` (an output's or live input's library, runtime or device is missing: a
status line), ``control.midi_input._NoMidi``,
``shaders.expr.ExprError`` (a ValueError, wrapped into ShaderError by its caller), and the loopback
mock's own ``ApiError`` and ``BadHttp`` (answers to its HTTP clients). ``tests/test_errors.py``
checks that this drawing and the code agree.

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


class BackstageError(EngineError):
    """The backstage could not start (server port, output folder, blocklist) or its process died at start."""
