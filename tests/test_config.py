"""config.toml and command-line overrides → validated Config."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest

from engine import config
from engine.config import Config, ConfigError

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "config.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_shipped_config_toml_equals_defaults() -> None:
    """The documented config.toml sets every key to its default."""
    assert config.load(ROOT / "config.toml") == Config()


def test_shipped_config_toml_documents_every_key() -> None:
    """Every knob in the schema appears in config.toml, and nothing else does."""
    data = tomllib.loads((ROOT / "config.toml").read_text(encoding="utf-8"))
    in_file = {f"{s}.{k}" for s, table in data.items() for k in table}
    in_schema = {row[0] for row in config.describe_all()}
    assert in_file == in_schema


def test_every_knob_has_a_doc() -> None:
    """Each declared knob carries a description."""
    assert all(doc for _, _, _, doc in config.describe_all())


def test_missing_file_gives_defaults_with_a_note(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """No file: defaults, and the log says so."""
    caplog.set_level("INFO")
    assert config.load(tmp_path / "nope.toml") == Config()
    assert "using the defaults" in caplog.text


def test_values_are_read(tmp_path: Path) -> None:
    """Values from the file land in the typed sections; ints are accepted for floats."""
    cfg = config.load(write(tmp_path, '[window]\nwidth = 1920\nfps = 30\n[show]\nfit = "cover"\n'))
    assert cfg.window.width == 1920
    assert cfg.window.fps == 30.0 and isinstance(cfg.window.fps, float)
    assert cfg.show.fit == "cover"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[window]\nwidht = 10\n", r"\[window\] widht: unknown key \(allowed: width, height"),
        ("[windw]\n", r"windw: unknown section"),
        ('[window]\nwidth = "big"\n', r"\[window\] width: got 'big', expected an integer from 64 to 16384"),
        ("[window]\nwidth = 10\n", r"\[window\] width: got 10, expected an integer from 64 to 16384"),
        ("[window]\nfullscreen = 1\n", r"\[window\] fullscreen: got 1, expected true or false"),
        ("[window]\nwidth = true\n", r"\[window\] width: got True, expected an integer"),
        ('[show]\nfit = "stretch"\n', r'\[show\] fit: got \'stretch\', expected one of "letterbox", "cover"'),
        ("[show]\ntransition = -1\n", r"\[show\] transition: got -1, expected a number from 0 to 60"),
        ("[show]\ntransition = nan\n", r"\[show\] transition: got nan"),
        ("window = 3\n", r"\[window\]: expected a table"),
        ("[window\n", r"not valid TOML"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, text: str, match: str) -> None:
    """Each kind of mistake is one error that names the key and what is allowed."""
    with pytest.raises(ConfigError, match=match):
        config.load(write(tmp_path, text))


def test_overrides_replace_values() -> None:
    """section.key overrides apply over the file's values."""
    cfg = config.with_overrides(Config(), {"window.width": 800, "show.fit": "cover"})
    assert (cfg.window.width, cfg.show.fit) == (800, "cover")
    assert cfg.window.height == Config().window.height


def test_overrides_are_validated() -> None:
    """An override gets the same check as the file."""
    with pytest.raises(ConfigError, match=r"\[server\] port: got 0, expected an integer from 1 to 65535"):
        config.with_overrides(Config(), {"server.port": 0})
    with pytest.raises(ConfigError, match=r"nope.x: unknown section"):
        config.with_overrides(Config(), {"nope.x": 1})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("show.transition=1.5", ("show.transition", 1.5)),
        ("window.fullscreen=true", ("window.fullscreen", True)),
        ('show.fit="cover"', ("show.fit", "cover")),
        ("show.fit=cover", ("show.fit", "cover")),
        ("server.public_url=http://x:1", ("server.public_url", "http://x:1")),
    ],
)
def test_parse_override(text: str, expected: tuple[str, object]) -> None:
    """--set values are read as TOML, bare words as text."""
    assert config.parse_override(text) == expected


def test_parse_override_needs_a_dotted_key() -> None:
    """A --set without section.key= is refused."""
    with pytest.raises(ConfigError, match=r"expected section\.key=value"):
        config.parse_override("width=3")


def test_config_is_frozen() -> None:
    """Config objects cannot be changed after validation."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        Config().window.width = 3  # type: ignore[misc]


def test_api_key_never_appears_in_a_config_repr() -> None:
    """Printing or logging the config cannot leak the Stability key."""
    cfg = config.with_overrides(Config(), {"stability.api_key": "sk-secret-123"})
    assert cfg.stability.api_key == "sk-secret-123"
    assert "sk-secret-123" not in repr(cfg) and "sk-secret-123" not in str(cfg.stability)


def test_osc_allow_reads_addresses_and_networks(tmp_path: Path) -> None:
    """IPv4 and IPv6, networks and bare addresses (a network of one)."""
    cfg = config.load(write(tmp_path, '[osc]\nallow = ["192.168.1.0/24", "10.0.0.7", "fd00::/8"]\n'))
    assert [str(n) for n in cfg.osc.networks()] == ["192.168.1.0/24", "10.0.0.7/32", "fd00::/8"]


@pytest.mark.parametrize("entry", ["lights", "192.168.1.0/33", "300.1.1.1", ""])
def test_osc_allow_bad_entry_names_the_key(tmp_path: Path, entry: str) -> None:
    """An entry that is no address or network is one error naming [osc] allow and the entry."""
    with pytest.raises(ConfigError, match=rf"\[osc\] allow: got '{entry}', expected an address or a network"):
        config.load(write(tmp_path, f'[osc]\nallow = ["10.0.0.1", "{entry}"]\n'))


def test_osc_allow_from_the_command_line_is_checked_the_same() -> None:
    """--set osc.allow=[...] gets the same check as the file."""
    key, value = config.parse_override('osc.allow=["10.0.0.0/8"]')
    assert config.with_overrides(Config(), {key: value}).osc.allow == ("10.0.0.0/8",)
    with pytest.raises(ConfigError, match=r"\[osc\] allow: got 'x'"):
        config.with_overrides(Config(), {"osc.allow": ["x"]})
    with pytest.raises(ConfigError, match=r"\[osc\] allow: got '10.0.0.1', expected a list"):
        config.with_overrides(Config(), {"osc.allow": "10.0.0.1"})
