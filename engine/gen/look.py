"""Words to look: what a prompt's words ask the procedural generator for.

Colour words pick the palette, subject words one of the ``STYLES`` (compositions), mood
and motion words the energy and the direction of flow; every word, hashed, moves the
rest, so a prompt of unknown words still gets its own look. Pure functions of the text
(and the seed, which only nudges the hues), stable across runs and machines.
"""

from __future__ import annotations

import colorsys
import hashlib
import math
import re
from dataclasses import dataclass

import numpy as np

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


def prompt_digest(prompt: str) -> bytes:
    """sha256 of the prompt, blind to case and spacing: every hash-driven choice starts here."""
    return hashlib.sha256(" ".join(prompt.lower().split()).encode("utf-8")).digest()


def seed_for(prompt: str, seed: int) -> int:
    """``seed`` as given, or for 0 a seed derived from the text (sha256, so the same on every machine)."""
    if seed < 0:
        raise ValueError(f"seed must be >= 0, not {seed}")
    if seed:
        return seed
    return int.from_bytes(prompt_digest(prompt)[:4], "big") % (2**31 - 2) + 1


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
    return _choose_style(words_of(prompt), prompt_digest(prompt))


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
    digest = prompt_digest(prompt)
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
