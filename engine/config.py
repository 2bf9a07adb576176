"""config.toml → typed, validated, frozen dataclasses.

Every knob is declared once, here, with its default and what values it allows;
the same declaration validates the file and the command-line overrides, so a bad
value is one error naming the key wherever it came from. ``config.toml`` at the
root documents each key for users; a test keeps the two in step.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import re
import tomllib
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from engine.errors import ConfigError

log = logging.getLogger(__name__)

DEFAULT_PATH = Path("config.toml")


def knob(
    default: Any,
    *,
    min: float | None = None,
    max: float | None = None,
    doc: str = "",
    secret: bool = False,
) -> Any:
    """A config field with its allowed range; choices come from ``Literal`` types.

    A ``secret`` field (the API key) is left out of the dataclass's repr, so printing or
    logging a config can never show it.
    """
    return field(default=default, repr=not secret, metadata={"min": min, "max": max, "doc": doc})


Fit = Literal["letterbox", "cover"]
QrMode = Literal["always", "idle", "off"]
Backend = Literal["auto", "local", "stability", "procedural"]
Device = Literal["auto", "cuda", "mps", "cpu"]
Dtype = Literal["auto", "float16", "bfloat16", "float32"]
DreamSource = Literal["program", "image"]
AspectRatio = Literal["16:9", "1:1", "21:9", "2:3", "3:2", "4:5", "5:4", "9:16", "9:21"]
Img2Img = Literal["off", "previous", "program"]
StabilityApi = Literal["v2beta", "v1"]
StabilityEndpoint = Literal["core", "ultra", "sd3"]
Sd3Model = Literal["sd3.5-large", "sd3.5-large-turbo", "sd3.5-medium", "sd3.5-flash"]
OutputFormat = Literal["png", "jpeg", "webp"]
LogLevel = Literal["debug", "info", "warning", "error"]
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class WindowConfig:
    width: int = knob(1280, min=64, max=16384, doc="window width in pixels (windowed mode)")
    height: int = knob(720, min=64, max=16384, doc="window height in pixels (windowed mode)")
    fullscreen: bool = knob(False, doc="start fullscreen")
    screen: int = knob(0, min=0, max=64, doc="monitor index for fullscreen")
    vsync: bool = knob(True, doc="wait for the display's vertical sync")
    fps: float = knob(60.0, min=0.0, max=1000.0, doc="frame rate cap; 0 = vsync alone")


@dataclass(frozen=True)
class ShowConfig:
    transition: float = knob(2.0, min=0.0, max=60.0, doc="transition duration, seconds")
    hold: float = knob(8.0, min=0.0, max=3600.0, doc="least time an image stays before the next")
    hold_min: float = knob(3.0, min=0.0, max=3600.0, doc="shortest hold when the line is long (see max_wait)")
    max_wait: float = knob(180.0, min=0.0, max=86400.0,
                           doc="target seconds from a prompt to the screen: the hold shrinks as the line grows; "
                               "0 = always [show] hold")
    fit: Fit = knob("letterbox", doc="how images meet the screen's shape")
    blackout_fade: float = knob(1.0, min=0.0, max=30.0, doc="seconds to fade to black and back")
    transition_on: Literal["time", "beat", "bar"] = knob("time", doc="start transitions on a beat or a bar")
    transition_beats: int = knob(1, min=1, max=64, doc="with beat/bar sync: every N beats (or bars)")
    venue: str = knob("", doc="venue profile (projection mapping: warp, blend, masks); empty = unwarped")


@dataclass(frozen=True)
class ShadersConfig:
    dir: str = knob("shaders", doc="folder of ISF effects and transitions (and gl-transitions)")
    effects: tuple[str, ...] = knob(("glow",), max=3, doc="effect chain at start, up to 3 names")
    transition: str = knob("crossfade", doc="transition at start: crossfade or a library name")
    hot_reload: bool = knob(True, doc="watch the folder and reload shaders when saved")


@dataclass(frozen=True)
class AudienceConfig:
    max_length: int = knob(200, min=10, max=2000, doc="longest prompt, in characters")
    cooldown: float = knob(15.0, min=0.0, max=3600.0, doc="seconds between prompts from one phone")
    burst: int = knob(2, min=1, max=50, doc="prompts a phone may send at once before the cooldown")
    max_queue: int = knob(200, min=1, max=100000, doc="prompts waiting at most; then 'the queue is full'")
    max_pending_per_client: int = knob(3, min=1, max=100, doc="prompts one phone may have waiting")
    similarity: float = knob(0.85, min=0.5, max=1.0, doc="how alike two prompts from one phone count as the same")
    moderation: Literal["auto", "approve"] = knob("auto", doc="auto: blocklist only; approve: the VJ approves too")
    blocklist_file: str = knob("", doc="extra blocked words or phrases, one per line")
    feed: bool = knob(False, doc="send the prompts on screen to every phone")
    max_phones: int = knob(10000, min=10, max=1000000, doc="phones remembered at most; then idle ones are forgotten")
    max_phones_per_ip: int = knob(300, min=1, max=1000000, doc="phones remembered per address; new ids past it wait")
    phone_memory: float = knob(1800.0, min=1.0, max=86400.0, doc="seconds an idle phone's history is kept")
    ban_memory: float = knob(600.0, min=0.0, max=86400.0, doc="seconds new ids on a banned phone's address are banned")
    languages: tuple[str, ...] = knob(("en", "es"), max=16, doc="languages the phone page offers (web/i18n/)")
    default_language: str = knob("en", doc="the phone page's language when the browser asks for none offered")

    def __post_init__(self) -> None:
        for code in self.languages:
            if not (len(code) == 2 and code.isascii() and code.isalpha() and code.islower()):
                raise ConfigError("[audience] languages", f"got {code!r}, expected two-letter codes like \"es\"")
        if not self.languages:
            raise ConfigError("[audience] languages", "expected at least one language")
        if self.default_language not in self.languages:
            raise ConfigError("[audience] default_language",
                              f"got {self.default_language!r}, expected one of [audience] languages")


@dataclass(frozen=True)
class GenerationConfig:
    backend: Backend = knob("auto", doc="auto = local (model + GPU), else Stability (key), else procedural")
    width: int = knob(1024, min=128, max=2048, doc="image width for the procedural generator and v1")
    height: int = knob(1024, min=128, max=2048, doc="image height for the procedural generator and v1")
    aspect_ratio: AspectRatio = knob("1:1", doc="aspect ratio asked of Stability's v2beta API")
    negative_prompt: str = knob("", doc="what to keep out of every image")
    style_preset: str = knob("", doc="Stability style preset, e.g. neon-punk; empty for none")
    seed: int = knob(0, min=0, max=4294967294, doc="fixed seed; 0 = a new one each time")
    samples: int = knob(1, min=1, max=10, doc="images per prompt, all shown in turn")
    cfg_scale: float = knob(0.0, min=0.0, max=35.0, doc="prompt adherence; 0 = the model's default")
    steps: int = knob(30, min=10, max=50, doc="diffusion steps (v1 API)")
    img2img: Img2Img = knob("off", doc="evolve from the previous image or the program output")
    strength: float = knob(0.35, min=0.0, max=1.0, doc="image-to-image strength")
    in_flight: int = knob(2, min=1, max=16, doc="generations running at once")


@dataclass(frozen=True)
class StabilityConfig:
    api_key: str = knob("", secret=True, doc="API key; the STABILITY_API_KEY environment variable wins")
    api_host: str = knob("https://api.stability.ai", doc="API base URL; STABILITY_API_HOST wins")
    api: StabilityApi = knob("v2beta", doc="v2beta (current) or v1 (legacy knobs)")
    endpoint: StabilityEndpoint = knob("core", doc="v2beta endpoint")
    model: Sd3Model = knob("sd3.5-large", doc="model for the sd3 endpoint")
    engine: str = knob("stable-diffusion-xl-1024-v1-0", doc="v1 engine id")
    sampler: str = knob("", doc="v1 sampler; empty for the API's choice")
    output_format: OutputFormat = knob("png", doc="image format asked of the API")
    timeout: float = knob(60.0, min=1.0, max=600.0, doc="seconds before a request is given up")
    max_concurrency: int = knob(2, min=1, max=32, doc="requests in flight at once")
    rate_limit: int = knob(140, min=1, max=150, doc="requests per 10 s, kept under the API's 150")
    max_retries: int = knob(3, min=0, max=10, doc="retries on 429, 5xx, timeouts and network errors")
    backoff: float = knob(1.0, min=0.01, max=60.0, doc="first retry delay in seconds, doubling")
    backoff_max: float = knob(30.0, min=0.1, max=600.0, doc="longest retry delay (429 waits at least 60 s)")
    max_wait: float = knob(15.0, min=0.0, max=600.0,
                           doc="longest a prompt waits out a 429 pause before the offline generator paints it")
    breaker_failures: int = knob(5, min=1, max=100, doc="failures in a row that switch to procedural")
    breaker_cooldown: float = knob(30.0, min=1.0, max=3600.0, doc="seconds before probing Stability again")
    balance_interval: float = knob(60.0, min=0.0, max=3600.0, doc="credit balance poll period; 0 = off")


@dataclass(frozen=True)
class LocalConfig:
    model: str = knob("", doc="a diffusers folder or a preset name (models list); empty = no local model")
    models_dir: str = knob("models", doc="where presets live (models pull puts them here)")
    device: Device = knob("auto", doc="auto = cuda, else mps, else cpu")
    dtype: Dtype = knob("auto", doc="auto = float16 on a GPU, float32 on the CPU")
    tiny_vae: str = knob("", doc="a TAESD/TAESDXL folder or preset for fast decoding; empty = the model's VAE")
    steps: int = knob(0, min=0, max=100, doc="denoising steps; 0 = the model's own (1 for turbo models)")
    cfg_scale: float = knob(-1.0, min=-1.0, max=35.0, doc="guidance; -1 = the model's own (0 for turbo models)")
    size: int = knob(0, min=0, max=2048, doc="longest side in pixels, a multiple of 64; 0 = the model's own")
    safety: bool = knob(True, doc="run the model's safety checker when its folder has one")
    warmup: bool = knob(True, doc="one small image at load so the first prompt has no compile stall")


@dataclass(frozen=True)
class DreamConfig:
    enabled: bool = knob(False, doc="the live dream layer (needs the local model)")
    size: int = knob(512, min=128, max=1024, doc="dream frames' longest side in pixels")
    strength: float = knob(0.5, min=0.05, max=1.0, doc="how far each dream step moves from its source")
    fps: float = knob(20.0, min=1.0, max=60.0, doc="most dream frames per second")
    source: DreamSource = knob("program", doc="dream on the program output or on the current image")
    mix: float = knob(0.5, min=0.0, max=1.0, doc="the dream layer's opacity over the program")
    morph: float = knob(3.0, min=0.0, max=30.0, doc="seconds to morph from one prompt into the next")


@dataclass(frozen=True)
class StoreConfig:
    output_dir: str = knob("output", doc="images and the journal go to <output_dir>/<date>/")


@dataclass(frozen=True)
class RenderConfig:
    max_image_size: int = knob(2048, min=256, max=8192, doc="largest image side the show accepts")
    image_slots: int = knob(5, min=4, max=16, doc="preallocated image textures")
    upload_mb_per_frame: float = knob(4.0, min=0.25, max=256.0, doc="texture upload budget per frame")


@dataclass(frozen=True)
class OverlayConfig:
    hud: bool = knob(False, doc="show the HUD at start (key H toggles)")
    qr: QrMode = knob("always", doc="join QR code: always, only on the idle screen, or off")
    qr_size: float = knob(0.16, min=0.05, max=0.6, doc="corner QR height as a fraction of the screen")
    headline: str = knob("Send your prompt", doc="text over the join URL on the idle screen")
    captions: bool = knob(False, doc="show each image's prompt as a lower third")
    caption_font: str = knob("", doc="caption font file (.ttf/.otf); empty = DejaVu Sans Bold or Pillow's own")
    caption_size: float = knob(0.045, min=0.01, max=0.2, doc="caption text height as a fraction of the screen height")
    caption_position: Literal["bottom", "top"] = knob("bottom", doc="where the caption band sits")
    caption_seconds: float = knob(8.0, min=0.0, max=3600.0, doc="seconds a caption stays; 0 = as long as its image")
    caption_max_lines: int = knob(2, min=1, max=6, doc="longest caption, in lines; longer text is cut with an ellipsis")


@dataclass(frozen=True)
class ScenesConfig:
    dir: str = knob("scenes", doc="folder of scene files (saved looks), hot-reloaded")
    blend: float = knob(1.0, min=0.0, max=60.0, doc="seconds a recalled scene blends its parameters over; 0 = cut")


@dataclass(frozen=True)
class ServerConfig:
    host: str = knob("0.0.0.0", doc="address the audience server listens on")
    port: int = knob(3000, min=1, max=65535, doc="port of the audience server")
    public_url: str = knob("", doc="join URL to show instead of http://<LAN IP>:<port>")
    max_message_bytes: int = knob(4096, min=256, max=1048576, doc="largest WebSocket message accepted")
    max_connections_per_ip: int = knob(16, min=1, max=100000, doc="WebSocket connections one address may hold")
    max_connections: int = knob(12000, min=1, max=1000000, doc="WebSocket connections in all")
    idle_timeout: float = knob(120.0, min=1.0, max=86400.0, doc="seconds of silence before a phone is dropped")
    handshake_timeout: float = knob(10.0, min=1.0, max=120.0, doc="seconds to finish the HTTP/WebSocket opening")
    max_handshakes_per_ip: int = knob(8, min=1, max=10000, doc="openings one address may have unfinished at once")
    max_handshakes: int = knob(1024, min=1, max=100000, doc="unfinished openings in all")
    max_errors: int = knob(10, min=1, max=1000, doc="bad messages in 10 s before a client is disconnected")
    messages_per_s: float = knob(5.0, min=0.1, max=10000.0, doc="messages a second one connection may send")
    messages_burst: int = knob(20, min=1, max=100000, doc="messages a connection may send at once; more "
                               "dropped in 10 s close it")
    messages_per_s_per_ip: float = knob(20.0, min=0.1, max=100000.0, doc="messages a second from one address")
    messages_burst_per_ip: int = knob(80, min=1, max=1000000, doc="messages one address may send at once")
    backstage: Literal["process", "thread"] = knob(
        "process", doc="run the server, audience and generators in their own process, or as a thread")
    backstage_nice: int = knob(0, min=0, max=19, doc="how much the backstage process yields the CPU to the show")


@dataclass(frozen=True)
class DemoConfig:
    interval: float = knob(0.0, min=0.0, max=3600.0, doc="seconds between demo images when quiet; 0 = on Space only")


@dataclass(frozen=True)
class AudioConfig:
    device: str = knob("none", doc='input: "none", "default", a device index, or part of its name')
    file: str = knob("", doc="play this WAV/FLAC/OGG file as the input instead (rehearsal)")
    samplerate: int = knob(48000, min=8000, max=192000, doc="sample rate asked of the device")
    channels: int = knob(2, min=1, max=32, doc="input channels (mixed to mono for analysis)")
    blocksize: int = knob(512, min=64, max=8192, doc="frames per block from the device")
    latency: float = knob(0.0, min=0.0, max=1.0, doc="seconds from the room to the analysis; beats fire that early")
    link: bool = knob(False, doc="follow an Ableton Link session's tempo and beat (multicasts on the network)")


@dataclass(frozen=True)
class OscConfig:
    enabled: bool = knob(False, doc="listen for OSC control messages (docs/osc.md)")
    host: str = knob("127.0.0.1", doc="address the OSC listener binds; 0.0.0.0 for controllers on the LAN")
    port: int = knob(9000, min=1, max=65535, doc="OSC listening port (UDP)")
    target: str = knob("", doc='send beats and state to "host:port"; empty: send nothing')
    allow: tuple[str, ...] = knob((), doc="addresses or networks (CIDR) that may send OSC; empty: this machine only")

    def __post_init__(self) -> None:
        self.networks()  # a bad entry stops the engine at start, named, like any other bad value

    def networks(self) -> tuple[IpNetwork, ...]:
        """``allow`` parsed: a bare address is a network of one."""
        nets = []
        for entry in self.allow:
            try:
                nets.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                raise ConfigError("[osc] allow", f"got {entry!r}, expected an address or a network "
                                  "such as 192.168.1.0/24, 10.0.0.7 or fd00::/8") from None
        return tuple(nets)


@dataclass(frozen=True)
class VjConfig:
    token: str = knob("", secret=True, doc="control page token (8+ characters); empty = a random one per show")
    host: str = knob("", doc="address for the control page's own port (needs port); empty = the server's host")
    port: int = knob(0, min=0, max=65535, doc="port of the control page; 0 = the audience server's")
    preview_fps: float = knob(5.0, min=0.0, max=30.0, doc="preview frames per second to the control page; 0 = off")
    preview_width: int = knob(384, min=64, max=1920, doc="preview width in pixels")
    preview_quality: int = knob(70, min=10, max=95, doc="preview JPEG quality")
    max_connections: int = knob(8, min=1, max=64, doc="control pages open at once")


@dataclass(frozen=True)
class MidiConfig:
    input: str = knob("none", doc='MIDI input: "none", "all", or part of a port name')
    map_file: str = knob("midi-map.json", doc="MIDI mappings, saved by MIDI learn and loaded on start")
    backend: str = knob("", doc='mido backend, e.g. "mido.backends.rtmidi/UNIX_JACK"; empty = mido\'s default')


@dataclass(frozen=True)
class LogConfig:
    level: LogLevel = knob("info", doc="log verbosity")


def parse_wxh(key: str, text: str) -> tuple[int, int]:
    """'1920x1080' → (1920, 1080); an empty text → (0, 0), meaning "the program's size"."""
    if not text.strip():
        return (0, 0)
    w, sep, h = text.lower().partition("x")
    try:
        size = (int(w), int(h))
    except ValueError:
        size = (0, 0)
    if not sep or not (16 <= size[0] <= 8192 and 16 <= size[1] <= 8192):
        raise ConfigError(key, f"got {text!r}, expected WIDTHxHEIGHT like 1920x1080 (16..8192 each), or \"\"")
    return size


@dataclass(frozen=True)
class OutputConfig:
    ndi: str = knob("", doc="send the program as this NDI source; empty = off")
    ndi_alpha: bool = knob(False, doc="NDI with the program's alpha channel (else opaque)")
    virtualcam: bool = knob(False, doc="send the program to a virtual camera (v4l2loopback, OBS)")
    virtualcam_device: str = knob("", doc="virtual camera device, e.g. /dev/video10; empty = the first")
    syphon: str = knob("", doc="publish the program as this Syphon server (macOS); empty = off")
    spout: str = knob("", doc="publish the program as this Spout sender (Windows); empty = off")
    size: str = knob("", doc="WxH of the frames sent; empty = the program's size")
    fps: float = knob(0.0, min=0.0, max=240.0, doc="frames per second sent; 0 = every frame the show draws")

    def __post_init__(self) -> None:
        parse_wxh("[output] size", self.size)


RecordPreset = Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium"]


@dataclass(frozen=True)
class RecordConfig:
    enabled: bool = knob(False, doc="start recording when the show starts")
    file: str = knob("", doc="file of the first recording; empty = time-stamped in <output_dir>/recordings/")
    preset: RecordPreset = knob("veryfast", doc="x264 speed preset: faster ones cost less CPU, more bits")
    bitrate: int = knob(8000, min=0, max=200000, doc="video kbit/s; 0 = constant quality")
    size: str = knob("", doc="WxH recorded; empty = the program's size")
    fps: float = knob(0.0, min=0.0, max=240.0, doc="frames per second recorded; 0 = the show's frame rate")
    audio: bool = knob(True, doc="record the audio input with the picture, when there is one")

    def __post_init__(self) -> None:
        parse_wxh("[record] size", self.size)


@dataclass(frozen=True)
class InputConfig:
    camera: str = knob("", doc="camera offered as a live layer, e.g. /dev/video0; empty = none")
    camera_size: str = knob("", doc="WxH asked of the camera; empty = its default")
    camera_fps: float = knob(0.0, min=0.0, max=240.0, doc="frame rate asked of the camera; 0 = its default")
    ndi: str = knob("", doc="NDI source offered as a live layer (its name as NDI lists it); empty = none")
    max_size: int = knob(1280, min=64, max=4096, doc="live frames are scaled to at most this longest side")

    def __post_init__(self) -> None:
        parse_wxh("[input] camera_size", self.camera_size)


@dataclass(frozen=True)
class ClusterConfig:
    redis: str = knob("", doc='Redis URL for the intake/show/generate roles, e.g. "redis://host:6379/0"; empty = one '
                      "process, no Redis")
    show: str = knob("main", doc="the show (screen) this process belongs to: its prompts, statuses and images")
    claim_after: float = knob(300.0, min=5.0, max=86400.0, doc="seconds a generation job may stay unfinished before "
                              "another worker takes it over (longer than the slowest generation)")
    history_ttl: float = knob(86400.0, min=60.0, max=2592000.0, doc="seconds a phone's statuses and the show's "
                              "images stay in Redis after their last change")
    image_cache_mb: int = knob(512, min=16, max=65536, doc="Redis memory for images the intakes serve; the oldest "
                               "go first (the show's disk keeps them all)")
    intakes: tuple[str, ...] = knob((), max=64, doc="public URLs of every intake, for phones to move to when theirs "
                                    "goes away; empty = reconnect to the same address")
    workers: int = knob(1, min=1, max=64, doc="generations one generate process runs at once")

    def __post_init__(self) -> None:
        if self.redis and not re.fullmatch(r"(rediss?|unix)://\S+", self.redis):
            raise ConfigError("[cluster] redis", f"got {self.redis!r}, expected a URL like \"redis://host:6379/0\"")
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", self.show):
            raise ConfigError("[cluster] show", f"got {self.show!r}, expected 1 to 40 letters, digits, _ or -")
        for url in self.intakes:
            if not re.fullmatch(r"https?://[^\s/]+/?", url):
                raise ConfigError("[cluster] intakes", f"got {url!r}, expected URLs like \"http://10.0.0.5:3000\"")


@dataclass(frozen=True)
class Config:
    window: WindowConfig = field(default_factory=WindowConfig)
    show: ShowConfig = field(default_factory=ShowConfig)
    shaders: ShadersConfig = field(default_factory=ShadersConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    stability: StabilityConfig = field(default_factory=StabilityConfig)
    local: LocalConfig = field(default_factory=LocalConfig)
    dream: DreamConfig = field(default_factory=DreamConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    render: RenderConfig = field(default_factory=RenderConfig)
    overlay: OverlayConfig = field(default_factory=OverlayConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    audience: AudienceConfig = field(default_factory=AudienceConfig)
    demo: DemoConfig = field(default_factory=DemoConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)
    osc: OscConfig = field(default_factory=OscConfig)
    vj: VjConfig = field(default_factory=VjConfig)
    midi: MidiConfig = field(default_factory=MidiConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    record: RecordConfig = field(default_factory=RecordConfig)
    input: InputConfig = field(default_factory=InputConfig)
    scenes: ScenesConfig = field(default_factory=ScenesConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    log: LogConfig = field(default_factory=LogConfig)


def sections() -> dict[str, type]:
    """Section name → its dataclass, in declaration order."""
    hints = typing.get_type_hints(Config)
    return {f.name: hints[f.name] for f in dataclasses.fields(Config)}


def _describe(kind: Any, meta: Mapping[str, Any]) -> str:
    lo, hi = meta.get("min"), meta.get("max")
    if get_origin(kind) is Literal:
        return "one of " + ", ".join(f'"{c}"' for c in get_args(kind))
    if get_origin(kind) is tuple:
        return f"a list of at most {hi:g} names" if hi is not None else "a list of names"
    name = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}[kind]
    if lo is not None and hi is not None:
        return f"{name} from {lo:g} to {hi:g}"
    return name


def _coerce(key: str, kind: Any, meta: Mapping[str, Any], value: Any) -> Any:
    """Check one value against its declaration; return it in the declared type."""
    expected = _describe(kind, meta)
    if get_origin(kind) is tuple:
        hi = meta.get("max")
        if (not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value)
                or (hi is not None and len(value) > hi)):
            raise ConfigError(key, f"got {value!r}, expected {expected}")
        return tuple(value)
    if get_origin(kind) is Literal:
        if not isinstance(value, str) or value not in get_args(kind):
            raise ConfigError(key, f"got {value!r}, expected {expected}")
        return value
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    else:
        ok = isinstance(value, kind)
    if not ok:
        raise ConfigError(key, f"got {value!r}, expected {expected}")
    if kind in (int, float):
        lo, hi = meta.get("min"), meta.get("max")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise ConfigError(key, f"got {value!r}, expected {expected}")
        if value != value:  # NaN
            raise ConfigError(key, f"got {value!r}, expected {expected}")
    return float(value) if kind is float else value


def _build_section(name: str, cls: type, table: Any) -> Any:
    if not isinstance(table, dict):
        raise ConfigError(f"[{name}]", f"expected a table, got {table!r}")
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = [k for k in table if k not in fields]
    if unknown:
        allowed = ", ".join(fields)
        raise ConfigError(f"[{name}] {unknown[0]}", f"unknown key (allowed: {allowed})")
    values = {
        k: _coerce(f"[{name}] {k}", hints[k], fields[k].metadata, v) for k, v in table.items()
    }
    return cls(**values)


def from_mapping(data: Mapping[str, Any]) -> Config:
    """Validate a parsed TOML document into a Config."""
    secs = sections()
    unknown = [k for k in data if k not in secs]
    if unknown:
        raise ConfigError(unknown[0], f"unknown section (allowed: {', '.join(secs)})")
    return Config(**{name: _build_section(name, cls, data.get(name, {})) for name, cls in secs.items()})


def load(path: Path | None = None) -> Config:
    """Read a config file; a missing file gives the defaults, with a note in the log."""
    path = path if path is not None else DEFAULT_PATH
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        log.info("no config file at %s: using the defaults", path)
        return Config()
    except OSError as err:
        raise ConfigError(str(path), f"cannot read: {err.strerror}") from err
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(str(path), f"not valid TOML: {err}") from err
    return from_mapping(data)


def parse_override(text: str) -> tuple[str, Any]:
    """``section.key=value`` → (``section.key``, value); the value is read as TOML, else as text."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or "." not in key:
        raise ConfigError(text, "expected section.key=value")
    raw = raw.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key, value


def command_line_overrides(sets: Iterable[str], named: Mapping[str, Any]) -> dict[str, Any]:
    """A command line's ``--set`` pairs, then its named flags (those given: not None), which win."""
    out = dict(parse_override(item) for item in sets)
    out.update({k: v for k, v in named.items() if v is not None})
    return out


def with_overrides(cfg: Config, overrides: Mapping[str, Any]) -> Config:
    """Apply ``{"section.key": value}`` on top of a Config, validating each value."""
    secs = sections()
    grouped: dict[str, dict[str, Any]] = {}
    for dotted, value in overrides.items():
        name, _, key = dotted.partition(".")
        if name not in secs:
            raise ConfigError(dotted, f"unknown section (allowed: {', '.join(secs)})")
        grouped.setdefault(name, {})[key] = value
    for name, table in grouped.items():
        current = dataclasses.asdict(getattr(cfg, name))
        merged = _build_section(name, secs[name], {**current, **table})
        cfg = dataclasses.replace(cfg, **{name: merged})
    return cfg


def describe_all() -> list[tuple[str, str, Any, str]]:
    """(dotted key, allowed values, default, doc) for every knob: used by docs and tests."""
    rows = []
    for name, cls in sections().items():
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            allowed = _describe(hints[f.name], f.metadata)
            rows.append((f"{name}.{f.name}", allowed, f.default, f.metadata["doc"]))
    return rows

