"""The offline procedural generator: pictures made from the words of a prompt, no network, no model.

Why it exists: the show must never go dark. Without a Stability API key it is the
default backend, and when the API fails mid-show the pipeline falls back to it, so
what it makes goes on the big screen in front of an audience. It aims for pictures
that look designed rather than random:

* the words steer it. Colour words pick the palette ("ocean", "sunset", "red"),
  subject words pick one of eight compositions ("stars" → nebula, "city" →
  skyline, "flower" → mandala), mood and motion words ("calm", "storm", "rising",
  "swirl") set the energy and the direction of flow, and every word, hashed, moves
  the parameters, so any prompt, even one of unknown words, gets its own picture;
* it is deterministic: the same text and seed give the same pixels, and seed 0
  means "derive the seed from the text", with hashlib, stable across runs and machines;
* it is fast (well under 300 ms for 1024x1024 on one core): smooth fields are
  computed on a grid of at most ``WORK_SIDE`` px and upsampled bicubically; edges,
  stars and the final grade run at full resolution, mostly on 1-D profiles or in
  the rows where an edge actually is;
* it is clean on a projector: edges are antialiased analytically, a soft bloom,
  vignette and filmic tone curve finish it, and a blue-noise dither before the
  8-bit quantisation keeps gradients free of banding.

Everything is pure numpy (float32) plus Pillow's resize; ``procedural_image`` is a
pure function, so it may run on any worker thread.
"""

from __future__ import annotations

import asyncio
import colorsys
import hashlib
import io
import math
import re
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache, partial

import numpy as np
from PIL import Image, UnidentifiedImageError

from engine.gen.base import FailureKind, GeneratedImage, GenerationError, GenerationRequest

MIN_SIZE, MAX_SIZE = 128, 2048  # what the generator accepts per side; requests are clamped to it
WORK_SIDE = 512  # long side of the grid on which smooth fields are computed
MAX_SAMPLES = 10
GAMMA = 2.2

STYLES = ("flow", "nebula", "mountains", "waves", "skyline", "mandala", "crystal", "glow")

# --- the words ------------------------------------------------------------------------------------


def _words(table: dict[str, str]) -> dict[str, str]:
    """``{"value": "w1 w2 ..."}`` → ``{"w1": "value", "w2": "value", ...}``."""
    return {word: value for value, words in table.items() for word in words.split()}


STYLE_WORDS = _words({
    "flow": "flow river wind smoke silk ink liquid marble fluid paint painting abstract music jazz dance "
            "fire flame blaze inferno lava magma storm thunder lightning tornado hurricane aurora northern "
            "borealis hair "
            "swirl vortex whirlpool energy dream rave",
    "nebula": "star stars space galaxy nebula cosmos cosmic universe planet astronaut alien comet "
              "constellation milky supernova astral orbit rocket infinity",
    "mountains": "mountain hill peak alps valley landscape canyon desert volcano cliff forest tree woods "
                 "nature adventure travel dune hike everest",
    "waves": "wave ocean sea surf beach lake tide shore island boat ship sail pirate whale fish dolphin "
             "coast harbor harbour lagoon mermaid",
    "skyline": "city town skyline building street tokyo york london paris berlin cyberpunk urban downtown "
               "tower metropolis skyscraper car traffic",
    "mandala": "flower mandala lotus rose bloom petal kaleidoscope eye yoga meditation sacred pattern "
               "butterfly garden daisy sunflower snowflake ornament lace tulip orchid",
    "crystal": "crystal ice glass diamond gem jewel shard prism geometry geometric polygon mosaic stained "
               "cathedral cave frozen quartz amethyst honeycomb mirror glacier",
    "glow": "glow light sun orb portal halo heart soul spirit angel magic god heaven eclipse tunnel ring "
            "hypnotic pulse beat disco laser love hope firework fireworks explosion burst",
})
SECONDARY_STYLE_WORDS = _words({  # half a vote: these lean towards a composition but do not decide it
    "mountains": "sunset sunrise dawn dusk evening sky",
    "nebula": "night midnight dark starry moon",
    "skyline": "neon cyberpunk",
    "waves": "water blue",
    "flow": "wild chaos",
})

PALETTES: dict[str, tuple[str, ...]] = {  # sRGB, darkest to lightest
    "sunset": ("1b0f33", "53185b", "b3325c", "f0703d", "ffcf85"),
    "ocean": ("021528", "053a63", "0a6e94", "35adc0", "bdeee8"),
    "forest": ("07170f", "133b24", "2f6a38", "7ea455", "dfe8a8"),
    "neon": ("0c0422", "3b0d6e", "d6198f", "1fd2e6", "f2eeff"),
    "fire": ("150403", "5e0e06", "c4300b", "f7861a", "ffe597"),
    "ice": ("07182c", "1d4f7c", "5c9fcf", "b6e3f6", "f5fcff"),
    "gold": ("160e03", "4d3209", "a5741b", "e3bb4c", "fff2c4"),
    "night": ("03040f", "0c1536", "26336e", "5d72b3", "d2dbff"),
    "aurora": ("02101a", "073d4c", "13a37c", "7cf0a2", "f0d6ff"),
    "desert": ("2b1409", "7b3d1c", "c8763b", "e9b676", "fbe9ca"),
    "rose": ("1e0716", "611845", "b53c78", "ef8cb5", "ffe2ef"),
    "autumn": ("1e0b04", "5f1f0b", "aa4a1b", "da932f", "f4d88c"),
    "pastel": ("2d2444", "7465aa", "e592b9", "a2e4d7", "fff7e2"),
    "synthwave": ("130532", "4c1070", "ff3d8f", "ff9f4b", "5be7ff"),
    "storm": ("06080d", "1c2331", "3d4b5f", "7e8ea5", "e0e7f1"),
    "jungle": ("031a10", "065131", "0f8f4d", "63d66b", "f4f27c"),
    "cosmic": ("030212", "160d3d", "48217d", "b3449c", "ffd3ea"),
    "lava": ("100202", "4a0704", "a8200a", "ef5a0e", "ffc157"),
    "rainbow": ("1b0b3b", "c8283a", "f3bf1d", "27b072", "3f86dc"),
    "mint": ("041a17", "0f4d43", "1f9c85", "7fe0c3", "e9fff6"),
    "royal": ("0a0524", "2a1466", "5b2fb0", "c9a44a", "fff0c7"),
    "blood": ("0e0203", "3d0508", "860b12", "c81e24", "f2a08c"),
    "sky": ("0a1f3d", "1f5a9a", "4d97d6", "9ccff0", "f2f9ff"),
    "earth": ("1b120b", "4a3020", "86593a", "c09469", "eedcc0"),
    "silver": ("0d0f12", "2c3036", "5d646e", "a1a9b3", "eef1f5"),
}
PALETTE_WORDS = _words({
    "sunset": "sunset sundown dusk twilight evening sunrise dawn",
    "ocean": "ocean sea marine underwater lagoon tide",
    "forest": "forest woods woodland moss nature tree",
    "neon": "neon cyberpunk electric rave laser club disco party",
    "fire": "fire flame blaze inferno burning hot phoenix dragon",
    "ice": "ice frozen frost snow snowflake winter glacier arctic cold",
    "gold": "gold golden treasure sunlight honey brass sunflower",
    "night": "night midnight nocturnal moonlight",
    "aurora": "aurora borealis northern",
    "desert": "desert sand dune sahara canyon",
    "rose": "rose romance romantic love heart valentine lotus sakura blossom",
    "autumn": "autumn fall leaves harvest",
    "pastel": "pastel cotton cute kawaii baby candy",
    "synthwave": "synthwave retro vaporwave outrun eighties miami",
    "storm": "storm thunder stormy rain fog mist smoke grey gray",
    "jungle": "jungle tropical rainforest exotic parrot",
    "cosmic": "cosmic galaxy nebula universe space astral",
    "lava": "lava volcano magma molten hell",
    "rainbow": "rainbow pride colorful colourful psychedelic",
    "mint": "mint fresh",
    "royal": "royal king queen palace crown majestic",
    "blood": "blood vampire horror demon",
    "sky": "sky cloud clouds heaven air",
    "earth": "earth soil wood coffee chocolate",
    "silver": "silver metal chrome steel robot machine",
})
HUE_WORDS: dict[str, str] = {  # one colour each, sRGB
    "red": "d62839", "crimson": "b3132e", "scarlet": "e0301e", "ruby": "a3122b", "cherry": "c2183a",
    "orange": "f27a1c", "amber": "f0a21c", "yellow": "f2d22e", "lemon": "eee04a", "lime": "9bd42a",
    "green": "2fa54a", "emerald": "17a06a", "jade": "2f9c7a", "olive": "7d8a2e", "teal": "169c9c",
    "cyan": "1fc7d9", "turquoise": "2ed1c4", "aqua": "35d6d0", "blue": "2a5bd7", "azure": "2f8fe0",
    "navy": "1b2a6b", "sapphire": "1f47b8", "cobalt": "1f4fc2", "indigo": "4b2fb0", "violet": "7b3fd0",
    "purple": "8a2fb8", "lavender": "a98be8", "lilac": "b892e0", "magenta": "d42aa8", "fuchsia": "e0309b",
    "pink": "f06aa5", "coral": "f2705e", "peach": "f6a37a", "salmon": "f08070", "brown": "8a5a3a",
    "bronze": "a8692c", "copper": "b8612e", "white": "dfe6ee", "black": "262a33",
}
MOODS = _words({
    "dark": "dark darkness black shadow shadows noir gothic gloomy moody sinister night midnight",
    "bright": "bright light sunny day daylight morning happy shining radiant white luminous brilliant summer",
    "calm": "calm soft gentle peaceful quiet serene still slow dreamy dream tranquil zen lullaby sleep",
    "wild": "wild chaos chaotic storm crazy explosion explode party rave energy electric intense angry fury "
            "frenzy loud fast hyper thunder lightning",
})
NIGHT_WORDS = frozenset(["night", "midnight", "moon", "moonlight", "nocturnal", "starry", "stars", "star", "dark"])
MOTIONS = _words({
    "up": "rising rise up ascend ascending fly flying rocket fire flame flames upward soar float heaven aurora "
          "borealis",
    "down": "falling fall down rain waterfall descend drop sink dripping",
    "across": "wind windy breeze river flow flowing drift run running speed fast race travel journey",
    "swirl": "swirl spiral vortex whirl whirlpool tornado hurricane galaxy twist cyclone spin spinning",
    "burst": "burst explosion explode bang firework fireworks supernova blast",
})
DETAILS = _words({
    "trees": "forest tree woods woodland pine jungle",
    "glass": "stained glass cathedral church mosaic window",
})
_WORD = re.compile(r"[^\W\d_]+")


def words_of(prompt: str) -> list[str]:
    """The prompt's words, lower case, letters only."""
    return _WORD.findall(prompt.lower())


def _find(word: str, table: dict[str, str]) -> str | None:
    """``table[word]``, also for simple plurals ("stars", "waves", "cities")."""
    tries = [word]
    if word.endswith("s"):
        tries += [word[:-1], word[:-2]] + ([word[:-3] + "y"] if word.endswith("ies") else [])
    for w in tries:
        if len(w) >= 2 and w in table:
            return table[w]
    return None


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


def _normal_text(prompt: str) -> str:
    return " ".join(prompt.lower().split())


def seed_for(prompt: str, seed: int) -> int:
    """``seed`` as given, or for 0 a seed derived from the text (sha256, so the same on every machine)."""
    if seed < 0:
        raise ValueError(f"seed must be >= 0, not {seed}")
    if seed:
        return seed
    return int.from_bytes(_digest(_normal_text(prompt))[:4], "big") % (2**31 - 2) + 1


# --- colour ---------------------------------------------------------------------------------------


def _hex(c: str) -> tuple[float, float, float]:
    return int(c[0:2], 16) / 255.0, int(c[2:4], 16) / 255.0, int(c[4:6], 16) / 255.0


def _toward(h: float, target: float, amount: float) -> float:
    """Hue ``h`` moved ``amount`` of the short way round towards ``target``."""
    d = (target - h + 0.5) % 1.0 - 0.5
    return (h + d * amount) % 1.0


def _hue_ramp(rgb: tuple[float, float, float]) -> np.ndarray:
    """Five stops, dark to light, around one colour: cool shadows, warm highlights, like a painter's."""
    h, _, s = colorsys.rgb_to_hls(*rgb)
    stops = []
    for light, sat, shift in ((0.07, 0.75, -0.2), (0.2, 0.9, -0.1), (0.42, 1.0, 0.0), (0.64, 0.9, 0.1),
                              (0.87, 0.7, 0.2)):
        hue = _toward(h, 0.64 if shift < 0 else 0.13, abs(shift))
        stops.append(colorsys.hls_to_rgb(hue, light, min(1.0, s * sat)))
    return np.array(stops, dtype=np.float32)


def _rotate_ramp(ramp: np.ndarray, turn: float, sat: float = 1.0) -> np.ndarray:
    """The ramp with every hue turned by ``turn`` (0..1) and the saturation scaled."""
    out = []
    for r, g, b in ramp.tolist():
        h, light, s = colorsys.rgb_to_hls(r, g, b)
        out.append(colorsys.hls_to_rgb((h + turn) % 1.0, light, min(1.0, s * sat)))
    return np.array(out, dtype=np.float32)


def _palette_ramp(name: str) -> np.ndarray:
    return np.array([_hex(c) for c in PALETTES[name]], dtype=np.float32)


HASH_HUES = (0.0, 0.03, 0.07, 0.1, 0.13, 0.3, 0.37, 0.45, 0.5, 0.55, 0.6, 0.64, 0.69, 0.74, 0.8, 0.86, 0.92, 0.96)


def _hash_ramps(digest: bytes) -> tuple[np.ndarray, np.ndarray]:
    """A harmonious main and accent ramp for words that name no colour."""
    hue = HASH_HUES[digest[8] % len(HASH_HUES)] + (digest[13] / 255.0 - 0.5) * 0.03
    sat = 0.55 + 0.35 * digest[9] / 255.0
    second = [0.08, -0.1, 0.14, 0.5][digest[10] % 4]
    third = [0.5, 0.42, 0.58, 0.33, -0.33][digest[11] % 5]
    a = colorsys.hls_to_rgb(hue, 0.45, sat)
    b = colorsys.hls_to_rgb(_kind_hue(hue + second), 0.5, sat)
    main = np.concatenate([_hue_ramp(a)[:3], _hue_ramp(b)[3:]])
    accent = _hue_ramp(colorsys.hls_to_rgb(_kind_hue(hue + third), 0.5, sat))
    return main, accent


def _kind_hue(h: float) -> float:
    """``h`` wrapped to 0..1, moved off the sickly yellow-greens to gold or green."""
    h %= 1.0
    if 0.16 <= h < 0.27:
        return 0.13 if h < 0.215 else 0.3
    return h


# --- what the words ask for -----------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Look:
    """Everything the words decide; the seed then varies the geometry."""

    style: str
    main: np.ndarray  # (5, 3) sRGB stops, dark to light: most of the picture
    accent: np.ndarray  # (5, 3) sRGB stops: second colour (sun, second gas, lit windows...)
    energy: float  # 0 calm .. 1 wild
    exposure: float  # relative brightness (dark and bright words)
    key: float  # the mid-tone the exposure aims at: low for night and space
    night: bool
    angle: float  # direction of motion, radians, image axes (y down): -pi/2 is up
    stretch: float  # how far forms are drawn out along the motion (1 = not at all)
    swirl: float  # signed twist around the centre
    burst: bool  # forms radiate from the centre
    trees: bool  # forest words: trees on the near ridges
    glass: bool  # stained-glass words: dark leads between crystal facets


def style_for(prompt: str) -> str:
    """The composition style the prompt's words choose (see ``STYLES``)."""
    return _choose_style(words_of(prompt), _digest(_normal_text(prompt)))


SCENES = frozenset({"mountains", "waves", "skyline"})


def _choose_style(words: list[str], digest: bytes) -> str:
    votes: dict[str, float] = {}
    for i, word in enumerate(words):
        for table, weight in ((STYLE_WORDS, 1.0), (SECONDARY_STYLE_WORDS, 0.5)):
            style = _find(word, table)
            if style:
                scene = 1.25 if style in SCENES else 1.0  # a scene can hold the stars, moon or sun named too
                votes[style] = votes.get(style, 0.0) + weight * scene - i * 1e-3  # ties: the earlier word wins
    if votes:
        return max(votes, key=lambda s: votes[s])
    pool = ("flow", "flow", "glow", "mandala", "crystal", "nebula", "flow", "glow")
    return pool[digest[0] % len(pool)]


def _choose_palette(words: list[str], digest: bytes) -> tuple[np.ndarray, np.ndarray]:
    sources: list[tuple[str, np.ndarray]] = []
    for word in words:
        name = _find(word, PALETTE_WORDS)
        hue = HUE_WORDS.get(word) or (HUE_WORDS.get(word[:-1]) if word.endswith("s") else None)
        if name and all(n != name for n, _ in sources):
            sources.append((name, _palette_ramp(name)))
        elif hue and all(n != word for n, _ in sources):
            sources.append((word, _hue_ramp(_hex(hue))))
    if not sources:
        return _hash_ramps(digest)
    main = sources[0][1]
    if len(sources) == 1:  # an accent from the main colour's most vivid stop, turned round the wheel
        turn = [0.5, 0.1, -0.1, 0.18, -0.18, 0.42][digest[12] % 6]
        r, g, b = max(main.tolist(), key=lambda c: max(c) - min(c))
        h, _, sat = colorsys.rgb_to_hls(r, g, b)
        return main, _hue_ramp(colorsys.hls_to_rgb(_kind_hue(h + turn), 0.5, min(0.85, max(0.45, sat))))
    (n0, r0), (n1, r1) = sources[0], sources[1]
    if n0 in HUE_WORDS and n1 in HUE_WORDS:  # "blue and red": both colours in the main ramp
        main = np.concatenate([r0[:3], r1[3:]])
    return main, sources[-1][1]  # the first colour named leads, the last one accents


def _count(words: list[str], table: dict[str, str], value: str) -> int:
    return sum(1 for w in words if _find(w, table) == value)


def look_for(prompt: str, seed: int) -> Look:
    """What ``prompt`` asks for; ``seed`` only nudges the hues a little."""
    words = words_of(prompt)
    digest = _digest(_normal_text(prompt))
    style = _choose_style(words, digest)
    main, accent = _choose_palette(words, digest)
    jitter = ((seed * 2654435761) % 1000 / 1000.0 - 0.5) * 0.03  # samples vary, the palette stays
    main, accent = _rotate_ramp(main, jitter), _rotate_ramp(accent, jitter)
    wild, calm = _count(words, MOODS, "wild"), _count(words, MOODS, "calm")
    dark, bright = _count(words, MOODS, "dark"), _count(words, MOODS, "bright")
    energy = float(np.clip(0.45 + 0.25 * wild - 0.2 * calm + (digest[1] / 255.0 - 0.5) * 0.3, 0.0, 1.0))
    motions = [m for m in (_find(w, MOTIONS) for w in words) if m]
    angle = (digest[2] / 256.0) * 2 * math.pi
    stretch = 1.0 + 1.2 * digest[3] / 255.0
    swirl = 0.0
    if "up" in motions or "down" in motions:
        angle = -math.pi / 2 if motions.count("up") >= motions.count("down") else math.pi / 2
        angle += (digest[4] / 255.0 - 0.5) * 0.4
        stretch = 2.2 + 0.8 * digest[3] / 255.0
    elif "across" in motions:
        angle = (0.0 if digest[4] % 2 else math.pi) + (digest[5] / 255.0 - 0.5) * 0.3
        stretch = 2.4 + 1.0 * digest[3] / 255.0
    if "swirl" in motions:
        swirl = (1.0 if digest[6] % 2 else -1.0) * (1.2 + digest[7] / 255.0)
    night = any(w in NIGHT_WORDS for w in words) or bool(dark and style in SCENES)
    details = {_find(w, DETAILS) for w in words}
    return Look(
        style=style, main=main, accent=accent, energy=energy,
        exposure=0.85**dark * 1.1**bright,
        key=0.09 if night or style == "nebula" else 0.2,
        night=night,
        angle=angle, stretch=stretch, swirl=swirl, burst="burst" in motions,
        trees="trees" in details, glass="glass" in details,
    )


# --- grids, noise, palettes -----------------------------------------------------------------------


@dataclass(frozen=True)
class Grid:
    """The output size and the coarser work grid. Units: the short side spans -1..1, y points down."""

    width: int
    height: int
    w: int
    h: int

    @staticmethod
    def of(width: int, height: int) -> Grid:
        f = max(1, round(max(width, height) / WORK_SIDE))
        return Grid(width, height, -(-width // f), -(-height // f))

    @property
    def px(self) -> float:
        """Output pixels per unit."""
        return min(self.width, self.height) / 2.0

    @property
    def aspect(self) -> float:
        return self.width / self.height

    def lo(self) -> tuple[np.ndarray, np.ndarray]:
        """Work-grid pixel centres in units: x as (1, w), y as (h, 1)."""
        x = ((np.arange(self.w, dtype=np.float32) + 0.5) * (self.width / self.w) - self.width / 2) / self.px
        y = ((np.arange(self.h, dtype=np.float32) + 0.5) * (self.height / self.h) - self.height / 2) / self.px
        return x[None, :], y[:, None]

    def hi(self) -> tuple[np.ndarray, np.ndarray]:
        """Output pixel centres in units: x as (1, width), y as (height, 1)."""
        x = (np.arange(self.width, dtype=np.float32) + 0.5 - self.width / 2) / self.px
        y = (np.arange(self.height, dtype=np.float32) + 0.5 - self.height / 2) / self.px
        return x[None, :], y[:, None]

    def up(self, field: np.ndarray) -> np.ndarray:
        """A (h, w) field, or (c, h, w) planes, bicubically resized to the output size."""
        if field.ndim == 3:
            return np.stack([self.up(p) for p in field])
        if field.shape == (self.height, self.width):
            return field
        im = Image.fromarray(np.ascontiguousarray(field, dtype=np.float32), "F")
        return np.asarray(im.resize((self.width, self.height), Image.Resampling.BICUBIC))




def _noise_texture(rng: np.random.Generator, n: int = 256, beta: float = 3.0,
                   k_low: float = 3.0, k_high: float = 48.0) -> np.ndarray:
    """A seamless (n, n) fractal noise tile, zero mean, unit deviation, band-limited so that
    bilinear lookups stay smooth: power falls as 1/k^beta between ``k_low`` and ``k_high`` cycles."""
    ky = np.fft.fftfreq(n) * n
    kx = np.fft.rfftfreq(n) * n
    k = np.hypot(ky[:, None], kx[None, :])
    k[0, 0] = 1.0
    amp = k ** (-beta / 2) * (1 - np.exp(-((k / k_low) ** 4))) * np.exp(-((k / k_high) ** 2))
    amp[0, 0] = 0.0
    spec = (rng.standard_normal(amp.shape) + 1j * rng.standard_normal(amp.shape)) * amp
    tex = np.fft.irfft2(spec, s=(n, n)).astype(np.float32)
    tex /= tex.std()
    pad = 4  # upsampled twice, wrapping: bilinear lookups then crease on a finer texel grid
    big = Image.fromarray(np.pad(tex, pad, mode="wrap"), "F").resize(
        (2 * (n + 2 * pad),) * 2, Image.Resampling.BICUBIC)
    return np.asarray(big)[2 * pad: 2 * (n + pad), 2 * pad: 2 * (n + pad)].copy()


def _sample(tex: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear, wrapping lookup of a noise tile at coordinates in its original texels."""
    n = tex.shape[0]
    m = n - 1
    x, y = np.broadcast_arrays(x * 2.0, y * 2.0)
    x0, y0 = np.floor(x), np.floor(y)
    tx, ty = x - x0, y - y0
    ix = x0.astype(np.int32)
    ix &= m
    r0 = y0.astype(np.int32)
    r0 &= m
    r1 = r0 + 1
    r1 &= m
    r0 *= n
    r1 *= n
    ix1 = ix + 1
    ix1 &= m
    flat = tex.ravel()
    a: np.ndarray = np.take(flat, r0 + ix)
    b = np.take(flat, r0 + ix1)
    c, d = np.take(flat, r1 + ix), np.take(flat, r1 + ix1)
    b -= a
    b *= tx
    a += b
    d -= c
    d *= tx
    c += d
    c -= a
    c *= ty
    a += c
    return a


def _noise_1d(rng: np.random.Generator, n: int, beta: float, k_low: float, k_high: float) -> np.ndarray:
    """A 1-D fractal profile of ``n`` samples, zero mean, unit deviation; ``k_*`` in cycles per n."""
    m = 2 * n
    k = np.fft.rfftfreq(m) * n
    k[0] = 1.0
    amp = k ** (-beta / 2) * (1 - np.exp(-((k / k_low) ** 4))) * np.exp(-((k / k_high) ** 2))
    amp[0] = 0.0
    spec = (rng.standard_normal(amp.shape) + 1j * rng.standard_normal(amp.shape)) * amp
    sig = np.fft.irfft(spec, m)[:n]
    out: np.ndarray = ((sig - sig.mean()) / (sig.std() + 1e-9)).astype(np.float32)
    return out


def _ramp(stops: np.ndarray, t: np.ndarray | float) -> np.ndarray:
    """Colours along a ramp of sRGB stops at ``t`` in 0..1, as linear-light planes (3, *t.shape)."""
    t = np.asarray(t, dtype=np.float32)
    k = stops.shape[0] - 1
    s = np.clip(t, 0.0, 1.0) * k
    i = np.minimum(s.astype(np.int32), k - 1)
    f = s - i
    lo, hi = stops.T[:, i], stops.T[:, i + 1]  # views when t is a scalar: never write to them
    out: np.ndarray = np.power(lo + (hi - lo) * f, np.float32(GAMMA))
    return out


def _colour(stops: np.ndarray, t: float) -> np.ndarray:
    """One linear colour on the ramp, shaped (3, 1, 1) to broadcast over planes."""
    return _ramp(stops, t).reshape(3, 1, 1)


ROWS = 48  # rows per block when working at full resolution: temporaries stay small and in cache


def _blocks(height: int) -> list[slice]:
    return [slice(y0, min(height, y0 + ROWS)) for y0 in range(0, height, ROWS)]


def _smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) * (1.0 / (e1 - e0)), 0.0, 1.0)
    out: np.ndarray = t * t * (3 - 2 * t)
    return out


def _mix(a: np.ndarray, b: np.ndarray, t: np.ndarray | float) -> np.ndarray:
    out: np.ndarray = a + (b - a) * t
    return out


def _rotate(x: np.ndarray, y: np.ndarray, angle: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    c, s = np.cos(angle), np.sin(angle)
    return x * c + y * s, y * c - x * s


@dataclass(frozen=True, eq=False)
class Scene:
    """One picture being made: its size, what the words asked for, and the seeded randomness."""

    grid: Grid
    look: Look
    rng: np.random.Generator

    def u(self, lo: float = 0.0, hi: float = 1.0) -> float:
        return float(self.rng.uniform(lo, hi))


# --- motion ---------------------------------------------------------------------------------------


def _flow_frame(sc: Scene, x: np.ndarray, y: np.ndarray, scale: float,
                radial: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Texel coordinates (``scale`` per unit) in which the words' motion is a straight drift along
    u, stretched; a swirl twists them round a centre; a burst (if ``radial``) makes them polar,
    the angle spanning 512 texels, two periods of a noise tile, so the seam never shows."""
    look = sc.look
    x, y = np.broadcast_arrays(x, y)
    cx, cy = sc.u(-0.3, 0.3), sc.u(-0.25, 0.25)
    x, y = x - cx, y - cy
    if look.burst and radial:
        r = np.sqrt(x * x + y * y) + 0.05
        return np.log(r) * (0.9 * look.stretch * scale), np.arctan2(y, x) * (512 / (2 * math.pi))
    if look.swirl:
        r2 = x * x + y * y
        x, y = _rotate(x, y, look.swirl * 2.2 * np.exp(-r2 / 0.9))
    u, v = _rotate(x, y, look.angle)
    return u * (scale / look.stretch), v * scale


# --- styles ---------------------------------------------------------------------------------------


def _grad(f: np.ndarray, step: int) -> tuple[np.ndarray, np.ndarray]:
    """Central differences ``step`` cells apart (per cell): wide enough to smooth over the texel
    grid of a bilinear lookup, whose own derivative jumps from texel to texel."""
    s = max(1, min(step, (min(f.shape) - 1) // 2))
    p = np.pad(f, s, mode="edge")
    gx = (p[s:-s, 2 * s:] - p[s:-s, : -2 * s]) * (0.5 / s)
    gy = (p[2 * s:, s:-s] - p[: -2 * s, s:-s]) * (0.5 / s)
    return gx, gy


def _flow_lines(img: np.ndarray, g: Grid, f: np.ndarray, spacing: float, colour: np.ndarray,
                width: float, fade: np.ndarray, step: int) -> None:
    """Fine lines of even width along evenly spaced level sets of the work-grid field ``f``, like
    threads in silk, drawn at full resolution: the field and its gradient are upsampled and the
    line shape is applied after, so the lines stay crisp. ``fade`` (work grid) weights them."""
    gx, gy = _grad(f, step)
    grad = np.sqrt(gx * gx + gy * gy) * (g.w / g.width)  # field change per output pixel
    grad = np.maximum(grad, max(float(np.percentile(grad, 10)), 1e-6))
    fade = fade * _smoothstep(3.0 * width, 9.0 * width, spacing / grad)  # lines too close: fade, no moiré
    grad *= width / spacing
    big_f, big_g, big_fade = g.up(f), g.up(grad), g.up(fade)
    for rows in _blocks(g.height):
        k = big_f[rows] * (1.0 / spacing)
        k -= np.floor(k + 0.5)  # -0.5..0.5: where between two levels
        k /= big_g[rows]
        line = np.exp(-(k * k))
        line *= big_fade[rows]
        img[:, rows] += colour * line


def _flow(sc: Scene) -> np.ndarray:
    """Domain-warped noise: marbled ink with fine flow lines, drawn out along the words' motion."""
    g, look = sc.grid, sc.look
    x, y = g.lo()
    tex = _noise_texture(sc.rng, beta=3.2 - 0.6 * look.energy, k_low=2.0, k_high=40.0)
    ts = sc.u(14, 19) * (0.85 + 0.4 * look.energy) / look.stretch**0.3  # texels per unit
    u, v = _flow_frame(sc, x, y, ts)
    warp = ts * (0.3 + 0.3 * look.energy)
    o = sc.rng.uniform(0, 256, 10)
    q1, q2 = _sample(tex, u + o[0], v + o[1]), _sample(tex, u + o[2], v + o[3])
    r1 = _sample(tex, u + warp * q1 + o[4], v + warp * q2 + o[5])
    r2 = _sample(tex, u + warp * q1 + o[6], v + warp * q2 + o[7])
    f = _sample(tex, u + warp * r1 + o[8], v + warp * r2 + o[9])
    t = 0.5 + 0.5 * np.tanh(f * 0.8 + sc.u(-0.3, 0.3))
    img = _ramp(look.main, 0.1 + 0.72 * t)
    acc = _smoothstep(0.5, 1.7, np.sqrt(q1 * q1 + q2 * q2)) * _smoothstep(-0.2, 1.0, r1)
    img = _mix(img, _ramp(look.accent, 0.3 + 0.5 * t), acc * 0.6)
    step = round(g.w / g.width * g.px / ts * 0.4)  # about a texel, in work cells
    gx, gy = _grad(f, step)
    la = look.angle + sc.u(0.5, 1.2)
    shade = np.clip(1.0 + (gx * math.cos(la) + gy * math.sin(la)) * (g.w / 6.0), 0.6, 1.5)
    img = g.up(img * shade)
    fade = _smoothstep(-0.6, 1.4, _sample(tex, u * 0.5 + o[1], v * 0.5 + o[0])) * (0.25 + 0.35 * t)
    _flow_lines(img, g, f, sc.u(0.18, 0.3), _colour(look.accent, 0.92), g.px / 420.0, fade, step)
    return img


def _stars(sc: Scene, count: int, out: np.ndarray, rows: int | None = None) -> None:
    """Adds ``count`` stars to the (3, H, W) planes above row ``rows``: most faint, a few bright,
    each a small Gaussian placed to the subpixel."""
    g, rng = sc.grid, sc.rng
    hh = g.height if rows is None else min(rows, g.height)
    if count <= 0 or hh <= 6:
        return
    xs, ys = rng.uniform(2, g.width - 3, count), rng.uniform(2, hh - 3, count)
    bright = np.minimum(0.03 * rng.pareto(1.5, count) + 0.008, 3.0).astype(np.float32)
    sigma = np.clip(0.5 + 0.25 * np.sqrt(bright) * g.px / 512, 0.5, 1.3).astype(np.float32)
    ix, iy = np.floor(xs).astype(np.intp), np.floor(ys).astype(np.intp)
    fx, fy = (xs - ix).astype(np.float32), (ys - iy).astype(np.float32)
    d = np.arange(-2, 3, dtype=np.float32)
    wx = np.exp(-((d[None, :] - fx[:, None] + 0.5) ** 2) / (2 * sigma[:, None] ** 2))
    wy = np.exp(-((d[None, :] - fy[:, None] + 0.5) ** 2) / (2 * sigma[:, None] ** 2))
    stamp = wy[:, :, None] * wx[:, None, :]
    stamp *= (bright / stamp.sum(axis=(1, 2)) * 2.5)[:, None, None]
    di = d.astype(np.intp)
    idx = ((iy[:, None, None] + di[None, :, None]) * g.width + ix[:, None, None] + di[None, None, :]).ravel()
    temp = rng.uniform(0, 1, count)
    tint = np.stack([0.7 + 0.3 * temp, 0.82 + 0.1 * temp, 1.0 - 0.35 * temp]).astype(np.float32)
    flat = stamp.reshape(count, -1)
    for c in range(3):
        np.add.at(out[c].reshape(-1), idx, (flat * tint[c][:, None]).ravel())


def _nebula(sc: Scene) -> np.ndarray:
    """Deep space: glowing gas in two colours with dark dust lanes along a band or a spiral, stars."""
    g, look = sc.grid, sc.look
    x, y = g.lo()
    gas = _noise_texture(sc.rng, beta=3.0, k_low=2.0, k_high=48.0)
    dust = _noise_texture(sc.rng, beta=2.6, k_low=3.0, k_high=64.0)
    ts = sc.u(16, 24)
    u, v = _flow_frame(sc, x, y, ts)  # factors below are multiples of 1/2: a burst's seam stays hidden
    o = sc.rng.uniform(0, 256, 8)
    wu = _sample(gas, u * 0.5 + o[0], v * 0.5 + o[1]) * (ts * 0.3)
    wv = _sample(gas, u * 0.5 + o[2], v * 0.5 + o[3]) * (ts * 0.3)
    band = np.exp(-(((v + 0.3 * wv) / ts - sc.u(-0.2, 0.2)) ** 2) / (2 * sc.u(0.3, 0.55) ** 2))
    n1 = _sample(gas, u + wu + o[4], v + wv + o[5])
    n2 = _sample(gas, u * 2.0 - wv + o[6], v * 2.0 + wu + o[7])
    d = _sample(dust, u * 1.5 + wu, v * 1.5 + wv)
    e1 = n1 * 1.1 + band * 2.2
    e2 = n2 * 1.2 + band * 1.4
    dens1 = np.exp(e1 - 2.6)
    dens2 = np.exp(e2 - 3.0) * _smoothstep(-0.3, 0.8, n1)
    lanes = np.exp(-2.2 * _smoothstep(0.2, 1.4, d) * (0.3 + band))
    bg = _ramp(look.main, 0.02 + 0.05 * (1 + y / 2.0) + 0.08 * band)
    gas1 = _ramp(look.main, np.minimum(0.4 + 0.08 * e1, 0.78)) * dens1
    gas2 = _ramp(look.accent, np.minimum(0.45 + 0.08 * e2, 0.8)) * dens2
    img = g.up(bg + (gas1 + gas2) * lanes)
    _stars(sc, int(g.width * g.height / 1e6 * sc.u(1500, 2600)), img)
    return img


def _sky(sc: Scene, horizon: float) -> tuple[np.ndarray, tuple[float, float, float]]:
    """A sky down to ``horizon`` (units) on the work grid, with its sun or moon glow and thin
    clouds; returns the planes and the sun (x, y, radius)."""
    g, look = sc.grid, sc.look
    x, y = g.lo()
    t = np.broadcast_to(np.clip((y + 1.0) / (horizon + 1.0), 0.0, 1.0) ** 1.5, (g.h, g.w))
    lo, hi = (0.05, 0.42) if look.night else (0.28, 0.8)
    img = _ramp(look.main, lo + (hi - lo) * t)
    sun_r = sc.u(0.06, 0.1) if look.night else sc.u(0.09, 0.16)
    sx = sc.u(-0.55, 0.55) * g.aspect
    sy = horizon - sc.u(0.3, 0.6)
    d = np.sqrt((x - sx) ** 2 + (y - sy) ** 2)
    glow = np.exp(-d / (sun_r * 2.0)) * 0.7 + np.exp(-d / (sun_r * 7)) * 0.4
    halo = _colour(look.main, 0.75) * 0.5 if look.night else _colour(look.accent, 0.85)
    img += halo * glow
    img += _colour(look.accent, 0.7) * np.exp(-np.abs(y - horizon) / 0.15) * (0.08 if look.night else 0.25)
    if sc.u() < 0.8:  # thin streaks of cloud, lit from the sun's side
        tex = _noise_texture(sc.rng, beta=2.8, k_low=2.0, k_high=64.0)
        cu = _sample(tex, x * 10 + sc.u(0, 256), y * 70 + sc.u(0, 256))
        cover = _smoothstep(0.5, 1.9, cu) * _smoothstep(-0.95, -0.5, y) * _smoothstep(horizon, horizon - 0.3, y)
        lit = (_colour(look.main, 0.35) if look.night else _colour(look.accent, 0.9)) * (0.4 + glow)
        img = _mix(img, lit, cover * 0.5)
    return img, (sx, sy, sun_r)


def _disc(img: np.ndarray, g: Grid, sun: tuple[float, float, float], colour: np.ndarray) -> None:
    """Draws the sun or moon disc, antialiased, touching only the pixels around it."""
    sx, sy, r = sun
    cx, cy, rp = g.width / 2 + sx * g.px, g.height / 2 + sy * g.px, r * g.px
    x0, x1 = max(0, int(cx - rp - 2)), min(g.width, int(cx + rp + 3))
    y0, y1 = max(0, int(cy - rp - 2)), min(g.height, int(cy + rp + 3))
    if x0 >= x1 or y0 >= y1:
        return
    xx = np.arange(x0, x1, dtype=np.float32)[None, :] + 0.5 - cx
    yy = np.arange(y0, y1, dtype=np.float32)[:, None] + 0.5 - cy
    cov = np.clip(rp - np.sqrt(xx * xx + yy * yy) + 0.5, 0.0, 1.0)
    region = img[:, y0:y1, x0:x1]
    region += (colour - region) * cov


def _silhouette(img: np.ndarray, prof: np.ndarray, colour: Callable[[np.ndarray], np.ndarray],
                rim: np.ndarray | None = None, rim_px: float = 3.0, walls: bool = False) -> None:
    """Fills the (3, H, W) planes below the row profile ``prof`` (a row per column, y down) with
    ``colour(rows)`` → (3, n, 1). The edge is antialiased by its distance in pixels; only the
    rows the edge crosses are computed per pixel. ``rim`` lights a band just under the edge;
    ``walls``: the profile steps on whole pixels (buildings), so only its roofs need smoothing."""
    h = img.shape[1]
    top = max(0, int(np.floor(prof.min())) - 1)
    if top >= h:
        return
    slope = np.zeros_like(prof) if walls else np.gradient(prof)
    inv = (1.0 / np.sqrt(1.0 + slope * slope)).astype(np.float32)
    bottom = min(h, int(np.ceil(prof.max())) + 2)
    rows = np.arange(top, h, dtype=np.float32) + 0.5
    col = colour(rows)
    dist = (rows[: bottom - top, None] - prof[None, :]) * inv[None, :]
    cov = np.clip(dist + 0.5, 0.0, 1.0)
    fill = col[:, : bottom - top]
    if rim is not None:
        fill = fill + rim * np.exp(-np.maximum(dist, 0.0) * (1.0 / rim_px))
    edge = img[:, top:bottom]
    edge += (fill - edge) * cov
    if bottom < h:
        rest = col[:, bottom - top:]
        if rim is not None:
            depth = (rows[bottom - top:, None] - prof[None, :]) * inv[None, :]
            rest = rest + rim * np.exp(-depth * (1.0 / rim_px))
        img[:, bottom:] = rest


def _layer_colour(near: np.ndarray, fog: np.ndarray, depth: float, ridge: float, fade_px: float,
                  haze: float) -> Callable[[np.ndarray], np.ndarray]:
    """Colour by row for one ridge: aerial perspective by ``depth`` (0 far .. 1 near) and mist
    gathering towards its foot."""
    base = _mix(fog, near, depth**0.7)

    def at(rows: np.ndarray) -> np.ndarray:
        mist = np.clip((rows - ridge) / fade_px, 0.0, 1.0) ** 1.3 * haze
        return _mix(base, fog, mist[None, :, None])

    return at


def _mountains(sc: Scene) -> np.ndarray:
    """Layered ridges fading into mist under a sky with a low sun or a moon (pines for forests)."""
    g, look = sc.grid, sc.look
    horizon = sc.u(0.0, 0.25)
    sky, sun = _sky(sc, horizon)
    img = g.up(sky)
    hz = g.height / 2 + horizon * g.px
    span = (g.height - hz) / g.px / (1.0 - horizon)  # 1 for square and landscape, more for portrait
    if look.night:
        _stars(sc, int(g.width * g.height / 1e6 * 900), img, int(hz))
    _disc(img, g, sun, _colour(look.main if look.night else look.accent, 0.97) * 1.5)
    fog = _colour(look.main, 0.45 if look.night else 0.72)
    near = _colour(look.main, 0.0) * 0.5
    layers = int(sc.u(4, 6))
    for k in range(layers):
        depth = k / (layers - 1)
        base = hz - g.px * (0.12 - 0.5 * depth**1.4 * span)
        amp = g.px * (0.16 - 0.06 * depth) * sc.u(0.7, 1.3)
        prof = base - amp * _noise_1d(sc.rng, g.width, 2.3 + 0.5 * depth, 1.0, 14.0 + 10 * (1 - depth))
        prof -= amp * 0.12 * _noise_1d(sc.rng, g.width, 1.6, 20.0, 200.0)  # fine rock detail
        if look.trees and k >= layers - 2:
            prof = _trees(sc, prof, g.px * (0.06 + 0.08 * depth))
        colour = _layer_colour(near, fog, 0.12 + 0.88 * depth, float(prof.min()), g.px * 0.5, 0.65 - 0.4 * depth)
        _silhouette(img, prof, colour)
    return img


def _trees(sc: Scene, prof: np.ndarray, size: float) -> np.ndarray:
    """The ridge with pines standing on it: a row profile, y down."""
    w = prof.shape[0]
    n = max(4, int(w / size * 1.6))
    xs = np.sort(sc.rng.uniform(0, w, n)).astype(np.float32)
    hs = (size * sc.rng.uniform(0.6, 1.4, n)).astype(np.float32)
    half = hs * 0.25
    cols = np.arange(w, dtype=np.float32)[None, :] + 0.5
    t = np.abs(cols - xs[:, None]) / half[:, None]  # 0 at the trunk, 1 at the tree's edge
    tiers = 1.0 - 0.2 * ((t * 3.0) % 1.0)
    height = np.where(t < 1.0, hs[:, None] * (1.0 - t) * tiers, -1e6)
    ground = prof[np.clip(xs.astype(np.intp), 0, w - 1)]
    out: np.ndarray = np.minimum(prof, (ground[:, None] - height).min(axis=0))
    return out


def _waves(sc: Scene) -> np.ndarray:
    """Rows of rolling waves under a sky, lit along their crests, with the sun's glitter."""
    g, look = sc.grid, sc.look
    horizon = sc.u(-0.2, 0.1)
    sky, sun = _sky(sc, horizon)
    img = g.up(sky)
    hz = g.height / 2 + horizon * g.px
    if look.night:
        _stars(sc, int(g.width * g.height / 1e6 * 900), img, int(hz))
    _disc(img, g, sun, _colour(look.main if look.night else look.accent, 0.97) * 1.5)
    fog = _colour(look.main, 0.35 if look.night else 0.55) * 0.85
    deep = _colour(look.main, 0.1) * 0.8
    crest = _colour(look.main, 0.92) * (0.35 if look.night else 0.6)
    cols = (np.arange(g.width, dtype=np.float32) + 0.5 - g.width / 2) / g.px
    span = g.height - hz
    layers = int(sc.u(6, 9))
    drift = math.cos(look.angle)
    for k in range(layers):
        depth = k / (layers - 1)
        base = hz + span * (0.015 + 0.985 * depth**1.7)
        lam = (0.1 + 0.85 * depth**1.3) * sc.u(0.8, 1.25)  # wavelength in units
        amp = g.px * lam * sc.u(0.05, 0.08)
        prof = np.full(g.width, base, dtype=np.float32)
        for j in range(3):
            freq = 2 * math.pi / (lam * sc.u(0.8, 1.2) / 1.8**j)
            wave = 0.5 + 0.5 * np.cos(cols * freq + sc.u(0, 6.3) + drift * j)
            prof -= amp * 0.55**j * wave ** sc.u(1.2, 1.8)
        colour = _layer_colour(deep, fog, 0.15 + 0.85 * depth, float(prof.min()), span * 0.25, 0.35)
        _silhouette(img, prof, colour, crest * (0.5 + 0.5 * depth), rim_px=1.0 + 7.0 * depth * g.px / 512)
    _glitter(sc, img, sun, hz)
    return img


def _glitter(sc: Scene, img: np.ndarray, sun: tuple[float, float, float], hz: float) -> None:
    """The sun's broken reflection in a column on the water below the horizon."""
    g, look = sc.grid, sc.look
    top = int(max(0, hz))
    if top >= g.height:
        return
    x, _ = g.hi()
    col = np.exp(-((x - sun[0]) ** 2) / (2 * (sun[2] * 1.3) ** 2))
    rows = np.arange(top, g.height, dtype=np.float32)[:, None] + 0.5 - hz
    tex = _noise_texture(sc.rng, beta=2.0, k_low=2.0, k_high=96.0)
    scale = 256.0 / g.px
    ripple = _sample(tex, x * (g.px * scale * 0.08), rows * scale * 0.5 * (1.0 + 30.0 / (rows + 8.0)))
    sparkle = _smoothstep(0.7, 2.2, ripple) * col * np.exp(-rows / (g.px * 1.2))
    img[:, top:] += _colour(look.main if look.night else look.accent, 0.95) * sparkle * (0.8 if look.night else 1.5)


def _skyline(sc: Scene) -> np.ndarray:
    """A city at dusk or night: three rows of towers in aerial perspective, lit windows, city glow."""
    g, look = sc.grid, sc.look
    horizon = sc.u(0.25, 0.45)
    sky, sun = _sky(sc, horizon)
    _, y = g.lo()
    sky += _colour(look.accent, 0.75) * np.exp(-np.abs(y - horizon + 0.2) / 0.3) * 0.3
    img = g.up(sky)
    hz = g.height / 2 + horizon * g.px
    if look.night:
        _stars(sc, int(g.width * g.height / 1e6 * 500), img, int(hz - 0.6 * g.px))
    _disc(img, g, sun, _colour(look.main if look.night else look.accent, 0.97) * 1.3)
    fog = _colour(look.main, 0.3 if look.night else 0.5)
    near = _colour(look.main, 0.0) * 0.3
    for k in range(3):
        depth = k / 2
        height = g.px * (0.7 - 0.25 * depth) * sc.u(0.8, 1.15)
        ground = hz + depth * 0.35 * g.px * (g.height - hz) / (g.px * (1.0 - horizon))
        prof, building = _towers(sc, g.width, ground, height, g.px * (0.06 + 0.06 * depth))
        colour = _layer_colour(near, fog, 0.2 + 0.8 * depth, float(prof.min()), g.px * 0.9, 0.55 - 0.35 * depth)
        _silhouette(img, prof, colour, walls=True)
        if k > 0:
            _windows(sc, img, prof, building, g.px * (0.018 + 0.008 * depth), 0.22 - 0.1 * depth)
    return img


def _towers(sc: Scene, w: int, ground: float, height: float, width: float) -> tuple[np.ndarray, np.ndarray]:
    """A row of buildings: the roof row per column (walls on whole pixels, so never jagged) and
    which building each column belongs to."""
    edges = [0]
    while edges[-1] < w:
        edges.append(edges[-1] + max(3, int(width * sc.u(0.5, 1.6))))
    n = len(edges) - 1
    tops = ground - height * sc.rng.uniform(0.2, 1.0, n) ** 1.7
    building = np.repeat(np.arange(n), np.diff(edges))[:w]
    prof = tops[building].astype(np.float32)
    for i in np.flatnonzero(sc.rng.uniform(0, 1, n) < 0.12):  # a few spires
        mid = (edges[i] + edges[i + 1]) // 2
        thin = max(1, int(width * 0.06))
        prof[mid - thin // 2: mid - thin // 2 + thin] -= height * sc.u(0.08, 0.25)
    return prof, building


def _windows(sc: Scene, img: np.ndarray, prof: np.ndarray, building: np.ndarray, pitch: float, lit: float) -> None:
    """Lit windows in a grid on each building, softly antialiased, most warm, some cool."""
    g, look = sc.grid, sc.look
    top = int(max(0, prof.min()))
    if top >= g.height or pitch < 2.5:
        return
    cols = np.arange(g.width, dtype=np.float32) + 0.5
    rows = np.arange(top, g.height, dtype=np.float32)[:, None] + 0.5
    cx, cy = cols / pitch, rows / (pitch * 1.4)
    ax = pitch * 0.5  # pixels per half cell: edges ~1 px soft
    wx = np.clip((0.3 - np.abs(cx - np.floor(cx) - 0.5)) * (2 * ax) + 0.5, 0.0, 1.0)
    wy = np.clip((0.28 - np.abs(cy - np.floor(cy) - 0.5)) * (2 * ax * 1.4) + 0.5, 0.0, 1.0)
    cell = (np.floor(cx).astype(np.int64)[None, :] * 73856093) ^ (np.floor(cy).astype(np.int64) * 19349663)
    cell = ((cell ^ (building.astype(np.int64)[None, :] * 83492791) ^ int(sc.u(0, 1e6))) * 2654435761) >> 7
    cell %= 1000
    on = (cell < lit * 1000) * wx * wy * (rows > prof[None, :] + pitch * 1.2)
    lamp = np.array([1.0, 0.62, 0.25], dtype=np.float32).reshape(3, 1, 1)  # warm incandescent
    warm = _mix(_colour(look.accent, 0.9), lamp, 0.6)
    colour = np.where(cell % 5 > 0, warm, _colour(look.main, 0.85))
    img[:, top:] += colour * on * 0.8


@dataclass(frozen=True)
class _Petals:
    """One ring of petals: radius bounds (units), count, shape and colours at base and tip."""

    inner: float
    outer: float
    n: int
    sharp: float
    turn: float
    base: np.ndarray
    tip: np.ndarray
    dots: float  # radius of a ring of dots just outside, 0 for none


def _mandala(sc: Scene) -> np.ndarray:
    """A radial flower: rings of petals in n-fold symmetry, shaded from base to tip and outlined
    twice, rings of dots between them, over a soft glow with faint rays. Drawn at full
    resolution, block by block, so every edge is crisp."""
    g, look = sc.grid, sc.look
    folds = [6, 8, 10, 12, 16][int(sc.u(0, 5))]
    layers = int(sc.u(4, 7))
    outer0, shift = sc.u(0.85, 0.97), sc.u(-0.12, 0.12)
    rings = []
    for k in range(layers):
        outer = outer0 * (1 - k / (layers + 0.5)) ** 1.05
        n = folds * (2 if k % 3 == 2 else 1)
        sharp, inner = sc.u(0.5, 2.2), outer * sc.u(0.5, 0.72)
        tone = 0.2 + 0.38 * k / max(1, layers - 1) + (shift if k % 2 else 0.0)
        base, tip = _colour(look.main, tone), _colour(look.main, tone + 0.28)
        if k % 3 == 1:
            base = _mix(base, _colour(look.accent, tone), 0.6)
            tip = _mix(tip, _colour(look.accent, tone + 0.3), 0.6)
        dots = outer * 1.04 if k % 2 == 1 and k < layers - 1 else 0.0
        rings.append(_Petals(inner, outer, n, sharp, (math.pi / n) * (k % 2), base, tip, dots))
    img = np.empty((3, g.height, g.width), dtype=np.float32)
    x, y = g.hi()
    for rows in _blocks(g.height):
        _mandala_block(img[:, rows], g, x, y[rows], look, folds, rings, outer0)
    return img


def _mandala_block(img: np.ndarray, g: Grid, x: np.ndarray, y: np.ndarray, look: Look, folds: int,
                   rings: list[_Petals], outer0: float) -> None:
    r = np.sqrt(x * x + y * y) + 1e-6
    th = np.arctan2(np.broadcast_to(y, r.shape), np.broadcast_to(x, r.shape))
    if look.swirl:
        th += look.swirl * 0.5 * r
    glow = np.exp(-r * 1.8)
    glow += np.abs(np.cos(th * folds)) ** 24 * glow * 0.3  # faint rays
    dark, light = _colour(look.main, 0.07), _colour(look.main, 0.42)
    img[:] = dark + (light - dark) * glow
    line_colour = _colour(look.accent, 0.93) * 0.7
    r_min = float(r.min())
    for p in rings:
        if r_min > p.outer + 0.05:
            continue
        a = (th + p.turn) * (p.n / 2)
        ac = np.abs(np.cos(a))
        bump = ac**p.sharp
        rad = p.inner + (p.outer - p.inner) * bump
        slope = (p.outer - p.inner) * p.sharp * (bump / np.maximum(ac, 1e-3)) * np.abs(np.sin(a)) * (p.n / 2)
        dist = (r - rad) / np.sqrt(1 + (slope / r) ** 2) * g.px  # ~ signed pixels to the petal's edge
        cov = np.clip(0.5 - dist, 0.0, 1.0)
        fill = p.base + (p.tip - p.base) * (r * (1.0 / p.outer))
        img += (fill - img) * cov
        d1, d2 = dist * (1 / 1.2), dist + 7 * g.px / 512
        img += line_colour * (np.exp(-(d1 * d1)) + 0.45 * np.exp(-(d2 * d2)) * cov)
        if p.dots and r_min < p.dots + 0.05:
            _dots(img, g, r, th, p.dots, p.n * 2, 2.5 / 512 + 0.006, line_colour)
    core = np.exp(-((r / (outer0 / (len(rings) + 1))) ** 2))
    img += _colour(look.accent, 0.96) * core


def _dots(img: np.ndarray, g: Grid, r: np.ndarray, th: np.ndarray, radius: float, n: int, size: float,
          colour: np.ndarray) -> None:
    """A ring of ``n`` small discs at ``radius`` (units), antialiased."""
    a = th * (n / (2 * math.pi))
    dx = (a - np.floor(a) - 0.5) * (2 * math.pi * radius / n)
    dy = r - radius
    cov = np.clip((size - np.sqrt(dx * dx + dy * dy)) * g.px + 0.5, 0.0, 1.0)
    img += colour * cov


def _crystal(sc: Scene) -> np.ndarray:
    """Cut-glass facets (a jittered Voronoi diagram): each facet a flat shade lit from one side,
    with glowing edges, or dark leads for stained glass."""
    g, look = sc.grid, sc.look
    x, y = g.lo()
    cells = sc.u(3.5, 6.0) * (0.8 + 0.5 * look.energy) * (1.5 if look.glass else 1.0)
    u, v = _flow_frame(sc, x, y, cells, radial=False)
    u, v = u + 64, v + 64
    n = 256
    jx = sc.rng.uniform(0.1, 0.9, n * n).astype(np.float32)
    jy = sc.rng.uniform(0.1, 0.9, n * n).astype(np.float32)
    cu, cv = np.floor(u), np.floor(v)
    icu, icv = cu.astype(np.int32), cv.astype(np.int32)
    best = np.full(u.shape, 9.0, dtype=np.float32)
    second = best.copy()
    bx, by = np.zeros_like(best), np.zeros_like(best)
    ox, oy = np.zeros_like(best), np.zeros_like(best)
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            cell = ((icv + dj) & (n - 1)) * n + ((icu + di) & (n - 1))
            px = np.take(jx, cell)
            px += cu + di
            py = np.take(jy, cell)
            py += cv + dj
            d = (px - u) ** 2 + (py - v) ** 2
            closer = d < best
            between = (d < second) & ~closer
            for dst, src in ((second, d), (ox, px), (oy, py)):
                np.copyto(dst, src, where=between)
            for dst, src in ((second, best), (ox, bx), (oy, by), (best, d), (bx, px), (by, py)):
                np.copyto(dst, src, where=closer)
    mx, my = bx - ox, by - oy
    ln = np.sqrt(mx * mx + my * my) + 1e-6
    edge = np.abs(((ox + bx) * 0.5 - u) * mx + ((oy + by) * 0.5 - v) * my) / (ln * cells)  # units
    h = np.sin(bx * 12.9898 + by * 78.233) * 43758.5453
    rnd = h - np.floor(h)
    la = look.angle + 2.0
    facet = np.clip(((u - bx) * math.cos(la) + (v - by) * math.sin(la)) * 0.6 + 0.5, 0.0, 1.0)
    lx, ly = sc.u(-0.4, 0.4), sc.u(-0.4, 0.4)
    light = np.exp(-((x - lx) ** 2 + (y - ly) ** 2) * 0.7)
    if look.glass:  # backlit jewel colours from both ramps, dark leads
        pick = rnd * 7.0 - np.floor(rnd * 7.0)
        jewel = np.where(rnd < 0.55, _ramp(look.main, 0.45 + 0.45 * pick), _ramp(look.accent, 0.4 + 0.5 * pick))
        big = g.up(jewel * (0.35 + 0.65 * light) * (0.8 + 0.4 * facet))
        e = g.up(edge)
        for rows in _blocks(g.height):
            big[:, rows] *= np.clip(e[rows] * g.px - g.px * 0.012 + 0.5, 0.0, 1.0)  # dark leads
        return big
    t = 0.08 + 0.3 * rnd * light + 0.35 * light + 0.2 * facet * light
    img = _mix(_ramp(look.main, t), _ramp(look.accent, 0.45 + 0.45 * light * facet), (rnd > 0.88) * 0.8)
    big, e, lit = g.up(img), g.up(edge), g.up(0.25 + light)
    colour = _colour(look.accent, 0.95)
    for rows in _blocks(g.height):
        px = np.maximum(e[rows], 0.0) * g.px  # output pixels to the nearest edge
        glow = np.exp(-px * 0.9) * 0.8 + np.exp(-px * 0.12) * 0.15
        big[:, rows] += colour * (glow * lit[rows])
    return big


def _glow(sc: Scene) -> np.ndarray:
    """A source of light: a bright core, rays turning with the words' swirl, rings rippling out
    (or a tunnel of them), sometimes drifting bokeh as from stage lights out of focus."""
    g, look = sc.grid, sc.look
    x, y = g.lo()
    cx, cy = math.cos(look.angle) * sc.u(0.0, 0.25), math.sin(look.angle) * sc.u(0.0, 0.2)
    dx, dy = x - cx, y - cy
    r = np.sqrt(dx * dx + dy * dy) + 1e-4
    th = np.arctan2(dy, dx) + look.swirl * 0.8 * r
    tex = _noise_texture(sc.rng, beta=2.2, k_low=2.0, k_high=80.0)
    spokes = 256 * int(sc.u(1, 3)) / (2 * math.pi)  # whole periods round the circle: no seam
    ray = _sample(tex, th * spokes, np.log(r) * sc.u(3, 9) + sc.u(0, 256))
    rays = _smoothstep(-0.2, 2.2, ray) ** sc.u(1.2, 3.0) * np.exp(-r * 1.1)
    img = _ramp(look.main, 0.04 + 0.6 * np.exp(-r * sc.u(1.2, 2.2)))
    img += _colour(look.accent, 0.75) * (rays * sc.u(0.3, 0.8))
    img += _colour(look.accent, 0.97) * (np.exp(-((r / sc.u(0.06, 0.14)) ** 2)) * 2.5)
    if sc.u() < 0.5:
        _bokeh(sc, img, x, y)
    img = g.up(img)
    if sc.u() < 0.3:  # a tunnel: many thin rings, closer and closer
        r0, q = sc.u(0.08, 0.15), sc.u(1.25, 1.45)
        rings = [(r0 * q**i, sc.u(0.8, 2.0) / g.px, 0.5) for i in range(int(math.log(2.5 / r0, q)))]
    else:
        rings = [(sc.u(0.25, 1.3), sc.u(1.2, 5.0) / g.px, sc.u(0.15, 0.5)) for _ in range(int(sc.u(0, 6)))]
    ring_colour = _colour(look.main, 0.9)
    xh, yh = g.hi()
    for rows in _blocks(g.height):
        rh = np.sqrt((xh - cx) ** 2 + (yh[rows] - cy) ** 2)
        light = np.zeros_like(rh)
        for rad, width, strength in rings:
            k = (rh - rad) * (1.0 / width)
            light += np.exp(-(k * k)) * (strength * math.exp(-rad))
        img[:, rows] += ring_colour * light
    return img


def _bokeh(sc: Scene, img: np.ndarray, x: np.ndarray, y: np.ndarray) -> None:
    """Soft discs of out-of-focus light with brighter rims, added on the work grid."""
    g, look = sc.grid, sc.look
    cell = (g.width / g.w) / g.px  # units per work cell
    for _ in range(int(sc.u(12, 30))):
        bx, by = sc.u(-1, 1) * g.aspect, sc.u(-1, 1)
        rad = sc.u(0.04, 0.2)
        colour = _colour(look.accent if sc.u() < 0.5 else look.main, sc.u(0.55, 0.95)) * sc.u(0.05, 0.22)
        i0, i1 = np.searchsorted(x[0], [bx - rad - cell * 2, bx + rad + cell * 2])
        j0, j1 = np.searchsorted(y[:, 0], [by - rad - cell * 2, by + rad + cell * 2])
        if i0 >= i1 or j0 >= j1:
            continue
        d = np.sqrt((x[:, i0:i1] - bx) ** 2 + (y[j0:j1] - by) ** 2)
        disc = np.clip((rad - d) / (cell * 2.5) + 0.5, 0.0, 1.0) * (0.7 + 0.3 * (d / rad) ** 4)
        img[:, j0:j1, i0:i1] += colour * disc


RENDER: dict[str, Callable[[Scene], np.ndarray]] = {
    "flow": _flow, "nebula": _nebula, "mountains": _mountains, "waves": _waves,
    "skyline": _skyline, "mandala": _mandala, "crystal": _crystal, "glow": _glow,
}


# --- finishing ------------------------------------------------------------------------------------


def _resize(planes: np.ndarray, w: int, h: int) -> np.ndarray:
    return np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(p), "F").resize(
        (w, h), Image.Resampling.BILINEAR)) for p in planes])


def _bloom(img: np.ndarray, g: Grid, strength: float) -> np.ndarray:
    """A soft halo around the brightest parts (threshold, blur by shrinking), at output size."""
    sw, sh = max(4, g.width // 16), max(4, g.height // 16)
    bright = np.maximum(_resize(img, sw, sh) - 0.6, 0.0)
    blurred = _resize(_resize(bright, max(2, sw // 3), max(2, sh // 3)), sw, sh) * 0.6 + bright * 0.4
    blurred *= strength
    return Grid(g.width, g.height, sw, sh).up(blurred)


@lru_cache(maxsize=4)
def _dither(h: int, w: int) -> np.ndarray:
    """Interleaved gradient noise (blue-noise-like) in 0..1, three columns wider than the image
    so each channel can take a shifted window of it."""
    x = np.arange(w + 6, dtype=np.float64)[None, :]
    y = np.arange(h, dtype=np.float64)[:, None]
    a = 0.06711056 * x + 0.00583715 * y
    b = 52.9829189 * (a - np.floor(a))
    out = (b - np.floor(b)).astype(np.float32)
    out.setflags(write=False)
    return out


def _gain(img: np.ndarray, g: Grid, key: float) -> float:
    """Exposure that puts the highlights near the shoulder and keeps mid-tones from washing out."""
    step = max(1, min(g.width, g.height) // 160)
    sub = img[:, ::step, ::step]
    lum = 0.2126 * sub[0] + 0.7152 * sub[1] + 0.0722 * sub[2]
    hi, mid = np.percentile(lum, [99.0, 50.0])
    return float(np.clip(min(1.3 / max(float(hi), 1e-4), key / max(float(mid), 1e-4)), 0.3, 8.0))


def _finish(img: np.ndarray, sc: Scene) -> np.ndarray:
    """Exposure, bloom, vignette, filmic tone curve, gamma and dither, block by block:
    (3, H, W) linear float → (H, W, 4) uint8."""
    g, look = sc.grid, sc.look
    np.nan_to_num(img, copy=False, nan=0.0, posinf=64.0, neginf=0.0)
    np.clip(img, 0.0, 64.0, out=img)
    img *= np.float32(_gain(img, g, look.key) * look.exposure)
    halo = _bloom(img, g, 0.3 + 0.25 * look.energy)
    x, y = g.hi()
    dither = _dither(g.height, g.width)
    out = np.empty((g.height, g.width, 4), dtype=np.uint8)
    out[..., 3] = 255
    for rows in _blocks(g.height):
        p = img[:, rows]
        p += halo[:, rows]
        p *= 1.0 - 0.45 * _smoothstep(0.3, 2.0, (x * x) / g.aspect + y[rows] ** 2 * g.aspect)  # vignette
        den = p * 2.43  # Narkowicz's ACES fit: a soft toe and shoulder, no hard clip
        den += 0.59
        den *= p
        den += 0.14
        num = p * 2.51
        num += 0.03
        num *= p
        num /= den
        np.clip(num, 0.0, 1.0, out=num)
        np.power(num, np.float32(1 / GAMMA), out=num)
        num *= 255.0
        for c in range(3):
            num[c] += dither[rows, 2 * c: 2 * c + g.width]
        np.minimum(num, 255.0, out=num)
        out[rows, :, :3] = num.transpose(1, 2, 0)
    return out


def procedural_image(prompt: str, seed: int, width: int, height: int) -> np.ndarray:
    """The picture for ``prompt`` and ``seed`` (0 = derived from the text): (height, width, 4)
    uint8 RGBA, top row first, opaque. The same arguments always give the same pixels."""
    if not (16 <= width <= 4096 and 16 <= height <= 4096):
        raise ValueError(f"size {width}x{height} is outside 16..4096")
    seed = seed_for(prompt, seed)
    look = look_for(prompt, seed)
    text = int.from_bytes(_digest(_normal_text(prompt))[16:24], "big")
    sc = Scene(Grid.of(width, height), look, np.random.default_rng([seed, text]))
    img = np.array(RENDER[look.style](sc), dtype=np.float32, order="C")
    return _finish(img, sc)


# --- the generator --------------------------------------------------------------------------------


def _colour_wash(pixels: np.ndarray, init_image: bytes, strength: float) -> np.ndarray:
    """Blends a little of an init image's broad colour into ``pixels`` (no image-to-image here:
    the init image only tints). Less ``strength`` = stay closer to it = more tint."""
    try:
        with Image.open(io.BytesIO(init_image)) as im:
            small = im.convert("RGB").resize((8, 8), Image.Resampling.BOX)
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise GenerationError(FailureKind.BAD_REQUEST, f"init image unreadable: {err}") from err
    h, w = pixels.shape[:2]
    wash = np.asarray(small.resize((w, h), Image.Resampling.BICUBIC), dtype=np.float32)
    k = 0.3 * (1.0 - float(np.clip(strength, 0.0, 1.0)))
    out = pixels.copy()
    out[..., :3] = np.clip(pixels[..., :3] * (1 - k) + wash * k + 0.5, 0, 255).astype(np.uint8)
    return out


class ProceduralGenerator:
    """The offline backend: ``procedural_image`` on a worker thread, one call per sample.

    Sizes are clamped to ``MIN_SIZE``..``MAX_SIZE``. There is no image-to-image: an
    ``init_image`` only tints the result with its broad colours (less ``strength``, more tint).
    ``negative_prompt``, ``style_preset``, ``cfg_scale`` and ``steps`` do not apply and are ignored.
    """

    name = "procedural"

    def __init__(self, executor: Executor | None = None) -> None:
        self._executor = executor
        self._owned: ThreadPoolExecutor | None = None

    def _pool(self) -> Executor:
        if self._executor is not None:
            return self._executor
        if self._owned is None:
            self._owned = ThreadPoolExecutor(max_workers=2, thread_name_prefix="procedural")
        return self._owned

    def _make(self, request: GenerationRequest, seed: int, width: int, height: int) -> GeneratedImage:
        pixels = procedural_image(request.prompt, seed, width, height)
        if request.init_image:
            pixels = _colour_wash(pixels, request.init_image, request.strength)
        return GeneratedImage(pixels=pixels, seed=seed, mime="image/png",
                              metadata={"generator": self.name, "style": style_for(request.prompt)})

    async def generate(self, request: GenerationRequest) -> list[GeneratedImage]:
        """``request.samples`` pictures with consecutive seeds, made off the event loop."""
        if not request.prompt.strip():
            raise GenerationError(FailureKind.BAD_REQUEST, "empty prompt", "Please type something to see!")
        if not 1 <= request.samples <= MAX_SAMPLES:
            raise GenerationError(FailureKind.BAD_REQUEST, f"samples must be 1..{MAX_SAMPLES}, not {request.samples}")
        try:
            seed = seed_for(request.prompt, request.seed)
        except ValueError as err:
            raise GenerationError(FailureKind.BAD_REQUEST, str(err)) from err
        width = min(MAX_SIZE, max(MIN_SIZE, request.width))
        height = min(MAX_SIZE, max(MIN_SIZE, request.height))
        loop = asyncio.get_running_loop()
        pool = self._pool()
        jobs = [loop.run_in_executor(pool, partial(self._make, request, seed + i, width, height))
                for i in range(request.samples)]
        return list(await asyncio.gather(*jobs))

    async def aclose(self) -> None:
        """Stops the worker threads, if this generator made them."""
        if self._owned is not None:
            self._owned.shutdown(wait=False, cancel_futures=True)
            self._owned = None
