"""Synthetic anime portraits: the embedded data set, so training, tests and the demo need no download.

A procedural renderer whose *style* factors are fixed per artist (with a small per-image jitter, as real artists vary)
and whose *content* factors are drawn per image. The style factors are the list of GADN Appendix A.2: saturation and
contrast, outline weight (including lineless), flat / cel / gradient shading, eye size and aspect, iris shape and
shine, upper-eyelid curve and thickness, eye tilt, face aspect, chin shape, blush, hair-strand granularity and
hair-highlight type. Because `render(content, style)` is known, any content can be drawn in any artist's style: the
ground truth a style transfer is scored against.

Everything is drawn as polygons at twice the output size, transformed by the head tilt, then downsampled
(anti-aliasing). `python -m tf_gadn.data.synthetic --output_dir D ...` writes the TFRecord data set and a preview grid.
"""

from __future__ import annotations

import dataclasses
import io
import math
import os
import sys
import time

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from tf_gadn.data import records

# (name, number of classes; 0 = continuous). Order = order of the stored factor vectors.
STYLE_FACTORS = (
    ("saturation", 0),
    ("contrast", 0),
    ("outline", 0),
    ("shading", 3),
    ("eye_size", 0),
    ("eye_aspect", 0),
    ("iris_angular", 2),
    ("shine", 4),
    ("eyelid_curve", 0),
    ("eyelid_thickness", 0),
    ("eye_tilt", 0),
    ("face_aspect", 0),
    ("chin_point", 0),
    ("blush", 0),
    ("hair_strands", 0),
    ("highlight", 4),
)
CONTENT_FACTORS = (
    ("hair_colour", 8),
    ("hair_cut", 3),
    ("bangs", 3),
    ("eye_colour", 6),
    ("head_tilt", 0),
    ("expression", 4),
    ("background", 6),
    ("accessory", 4),
)
_STYLE_RANGES = {  # continuous style factors: uniform ranges an artist is drawn from
    "saturation": (0.35, 1.35),
    "contrast": (0.7, 1.35),
    "outline": (0.0, 3.0),
    "eye_size": (0.75, 1.45),
    "eye_aspect": (0.7, 1.5),
    "eyelid_curve": (-0.2, 0.6),
    "eyelid_thickness": (0.5, 2.5),
    "eye_tilt": (-14.0, 14.0),
    "face_aspect": (0.85, 1.2),
    "chin_point": (0.0, 1.0),
    "blush": (0.0, 1.0),
    "hair_strands": (3.0, 11.0),
}
_JITTER = 0.04  # per-image jitter of continuous style factors, as a fraction of their range

HAIR_COLOURS = [
    (40, 30, 30),
    (230, 200, 120),
    (200, 60, 50),
    (70, 90, 200),
    (240, 150, 190),
    (230, 230, 235),
    (120, 70, 40),
    (90, 170, 110),
]
EYE_COLOURS = [
    (60, 110, 220),
    (200, 50, 60),
    (60, 160, 80),
    (150, 70, 200),
    (220, 160, 40),
    (110, 70, 40),
]
BACKGROUNDS = [
    (235, 235, 240),
    (170, 210, 240),
    (250, 220, 170),
    (200, 240, 200),
    (60, 60, 80),
    (240, 190, 200),
]
SKIN = (252, 226, 206)
LINE = (45, 30, 35)


@dataclasses.dataclass(frozen=True)
class Style:
    saturation: float
    contrast: float
    outline: float
    shading: int
    eye_size: float
    eye_aspect: float
    iris_angular: int
    shine: int
    eyelid_curve: float
    eyelid_thickness: float
    eye_tilt: float
    face_aspect: float
    chin_point: float
    blush: float
    hair_strands: float
    highlight: int


@dataclasses.dataclass(frozen=True)
class Content:
    hair_colour: int
    hair_cut: int
    bangs: int
    eye_colour: int
    head_tilt: float
    expression: int
    background: int
    accessory: int


def artist_style(seed: int, artist: int) -> Style:
    """The fixed style of one artist: every factor drawn once from (seed, artist)."""
    rng = np.random.default_rng([seed, artist, 7])
    values = {}
    for name, classes in STYLE_FACTORS:
        values[name] = (
            int(rng.integers(classes)) if classes else float(rng.uniform(*_STYLE_RANGES[name]))
        )
    return Style(**values)


def jitter_style(style: Style, rng: np.random.Generator) -> Style:
    """One drawing's style: the artist's continuous factors moved a little (artists are not machines)."""
    changes = {}
    for name, classes in STYLE_FACTORS:
        if not classes:
            low, high = _STYLE_RANGES[name]
            changes[name] = float(
                np.clip(getattr(style, name) + rng.normal(0, _JITTER * (high - low)), low, high)
            )
    return dataclasses.replace(style, **changes)


def sample_content(rng: np.random.Generator) -> Content:
    return Content(
        **{
            name: (int(rng.integers(classes)) if classes else float(rng.uniform(-12, 12)))
            for name, classes in CONTENT_FACTORS
        }
    )


def style_vector(style: Style) -> list[float]:
    return [float(getattr(style, name)) for name, _ in STYLE_FACTORS]


def content_vector(content: Content) -> list[float]:
    return [float(getattr(content, name)) for name, _ in CONTENT_FACTORS]


def style_from_vector(vector) -> Style:
    return Style(
        **{name: (int(round(v)) if c else float(v)) for (name, c), v in zip(STYLE_FACTORS, vector)}
    )


def content_from_vector(vector) -> Content:
    return Content(
        **{
            name: (int(round(v)) if c else float(v))
            for (name, c), v in zip(CONTENT_FACTORS, vector)
        }
    )


# ---- drawing ----------------------------------------------------------------------------------------------------
class _Canvas:
    """Polygon drawing in unit coordinates ([0, 1] x [0, 1]), rotated by the head tilt about the neck."""

    def __init__(self, size: int, background, tilt_degrees: float, outline: float):
        self.px = size
        self.image = Image.new("RGB", (size, size), background)
        self.draw = ImageDraw.Draw(self.image, "RGBA")
        t = math.radians(tilt_degrees)
        self.cos, self.sin = math.cos(t), math.sin(t)
        self.line = int(round(outline * size / 128.0))

    def _xy(self, points):
        out = []
        for x, y in points:
            dx, dy = x - 0.5, y - 0.78  # rotate about the neck
            out.append(
                (
                    (0.5 + dx * self.cos - dy * self.sin) * self.px,
                    (0.78 + dx * self.sin + dy * self.cos) * self.px,
                )
            )
        return out

    def polygon(self, points, fill=None, outline=True, width=None):
        width = self.line if width is None else width
        self.draw.polygon(
            self._xy(points),
            fill=fill,
            outline=LINE if (outline and width) else None,
            width=max(width, 1) if (outline and width) else 1,
        )

    def line_(self, points, fill, width):
        if width > 0:
            self.draw.line(
                self._xy(points), fill=fill, width=max(int(round(width)), 1), joint="curve"
            )


def _ellipse(cx, cy, rx, ry, angle=0.0, n=28, start=0.0, end=2 * math.pi):
    a = math.radians(angle)
    pts = []
    for k in range(n + 1 if end - start < 2 * math.pi else n):
        t = start + (end - start) * k / (n if end - start < 2 * math.pi else n)
        x, y = rx * math.cos(t), ry * math.sin(t)
        pts.append((cx + x * math.cos(a) - y * math.sin(a), cy + x * math.sin(a) + y * math.cos(a)))
    return pts


def _shade(colour, factor):
    return tuple(int(max(0, min(255, c * factor))) for c in colour)


def _face_outline(style: Style, cx, cy, w, h):
    pts = []
    for k in range(40):
        t = 2 * math.pi * k / 40
        x, y = math.cos(t), math.sin(t)
        if y > 0:  # lower half narrows toward the chin: pointed chins narrow more
            x *= 1.0 - style.chin_point * 0.55 * y**1.5
            y *= 1.0 + 0.12 * style.chin_point
        pts.append((cx + x * w / 2, cy + y * h / 2))
    return pts


def _draw_eye(c: _Canvas, style: Style, content: Content, cx, cy, side: int, w):
    ew = w * 0.25 * style.eye_size
    eh = ew * style.eye_aspect * 0.8
    tilt = -style.eye_tilt * side  # outer corners up for positive tilt
    c.polygon(_ellipse(cx, cy, ew / 2, eh / 2, tilt), fill=(255, 255, 255), width=0)
    iris_colour = EYE_COLOURS[content.eye_colour]
    ir_x, ir_y = ew * 0.3, eh * 0.45
    if style.iris_angular:
        iris = _ellipse(cx, cy + eh * 0.05, ir_x, ir_y, tilt, n=6)
    else:
        iris = _ellipse(cx, cy + eh * 0.05, ir_x, ir_y, tilt)
    c.polygon(iris, fill=iris_colour, width=0)
    c.polygon(
        _ellipse(cx, cy + eh * 0.08, ir_x * 0.45, ir_y * 0.5, tilt),
        fill=_shade(iris_colour, 0.35),
        width=0,
    )
    for k in range(style.shine):
        r = ir_x * (0.32 - 0.07 * k)
        c.polygon(
            _ellipse(cx - ir_x * 0.35 * side * (1 - k), cy - ir_y * (0.35 - 0.5 * k), r, r),
            fill=(255, 255, 255),
            width=0,
        )
    # Upper eyelid: an arc whose curvature and thickness are the artist's.
    lid = [
        (
            cx + ew / 2 * math.cos(t),
            cy - eh / 2 * (math.sin(t) * (0.6 + style.eyelid_curve)) - eh * 0.05,
        )
        for t in np.linspace(0, math.pi, 12)
    ]
    a = math.radians(tilt)
    lid = [
        (
            cx + (x - cx) * math.cos(a) - (y - cy) * math.sin(a),
            cy + (x - cx) * math.sin(a) + (y - cy) * math.cos(a),
        )
        for x, y in lid
    ]
    c.line_(lid, LINE, style.eyelid_thickness * c.px / 64.0)


def _draw_mouth(c: _Canvas, expression: int, cx, cy, w):
    mw = w * 0.12
    if expression == 0:  # smile
        c.line_(
            _ellipse(cx, cy - mw * 0.3, mw / 2, mw * 0.35, 0, 10, 0.15 * math.pi, 0.85 * math.pi),
            LINE,
            c.px / 90,
        )
    elif expression == 1:  # open
        c.polygon(
            _ellipse(cx, cy, mw * 0.35, mw * 0.3, 0, 12, 0, math.pi) + [(cx - mw * 0.35, cy)],
            fill=(170, 60, 70),
            width=max(1, c.line // 2),
        )
    elif expression == 2:  # neutral
        c.line_([(cx - mw * 0.3, cy), (cx + mw * 0.3, cy)], LINE, c.px / 100)
    else:  # frown
        c.line_(
            _ellipse(cx, cy + mw * 0.3, mw / 2, mw * 0.3, 0, 10, 1.15 * math.pi, 1.85 * math.pi),
            LINE,
            c.px / 90,
        )


def _draw_bangs(c: _Canvas, style: Style, content: Content, cx, top, w, hair):
    strands = max(int(round(style.hair_strands)), 2)
    left, right = cx - w * 0.58, cx + w * 0.58
    pts = [(left, top + w * 0.45)] + _ellipse(
        cx, top + w * 0.45, w * 0.58, w * 0.55, 0, 20, math.pi, 2 * math.pi
    )
    pts.append((right, top + w * 0.45))
    tips = []
    for k in range(strands + 1):
        x = right - (right - left) * k / strands
        depth = 0.5 if content.bangs != 1 else 0.38 + 0.22 * k / strands
        if content.bangs == 2 and abs(x - cx) < w * 0.12:
            depth = 0.3
        tips.append((x, top + w * depth))
        if k < strands:
            tips.append((x - (right - left) / strands / 2, top + w * (depth - 0.14)))
    c.polygon(pts + tips, fill=hair)
    light = _shade(hair, 1.45) if sum(hair) < 500 else _shade(hair, 0.8)
    y = top + w * 0.18
    if style.highlight == 1:
        for k in range(5):
            c.polygon(
                _ellipse(cx - w * 0.3 + k * w * 0.15, y, w * 0.02, w * 0.02), fill=light, width=0
            )
    elif style.highlight == 2:
        c.line_(
            _ellipse(cx, y + w * 0.25, w * 0.36, w * 0.25, 0, 14, 1.2 * math.pi, 1.8 * math.pi),
            light,
            c.px / 70,
        )
    elif style.highlight == 3:
        band = _ellipse(cx, y + w * 0.25, w * 0.38, w * 0.25, 0, 14, 1.15 * math.pi, 1.85 * math.pi)
        inner = _ellipse(cx, y + w * 0.3, w * 0.36, w * 0.2, 0, 14, 1.15 * math.pi, 1.85 * math.pi)
        c.polygon(band + inner[::-1], fill=light, width=0)


def _draw_accessory(c: _Canvas, accessory: int, cx, top, w, eye_y, eye_dx):
    if accessory == 1:  # ribbon
        x, y = cx + w * 0.42, top + w * 0.12
        c.polygon(
            [(x, y), (x + w * 0.18, y - w * 0.1), (x + w * 0.18, y + w * 0.1)], fill=(220, 40, 60)
        )
        c.polygon(
            [(x, y), (x - w * 0.18, y - w * 0.1), (x - w * 0.18, y + w * 0.1)], fill=(220, 40, 60)
        )
    elif accessory == 2:  # glasses
        for side in (-1, 1):
            x = cx + side * eye_dx
            c.line_(
                [
                    (x - w * 0.13, eye_y - w * 0.08),
                    (x + w * 0.13, eye_y - w * 0.08),
                    (x + w * 0.13, eye_y + w * 0.09),
                    (x - w * 0.13, eye_y + w * 0.09),
                    (x - w * 0.13, eye_y - w * 0.08),
                ],
                (60, 60, 70),
                c.px / 80,
            )
        c.line_(
            [(cx - eye_dx + w * 0.13, eye_y), (cx + eye_dx - w * 0.13, eye_y)],
            (60, 60, 70),
            c.px / 80,
        )
    elif accessory == 3:  # cat ears
        for side in (-1, 1):
            x = cx + side * w * 0.35
            c.polygon(
                [
                    (x - w * 0.14, top + w * 0.12),
                    (x + side * w * 0.06, top - w * 0.22),
                    (x + w * 0.14, top + w * 0.1),
                ],
                fill=(60, 50, 50),
            )


def _colour_grade(image: np.ndarray, style: Style) -> np.ndarray:
    """The artist's overall saturation and contrast."""
    x = image.astype(np.float32) / 255.0
    grey = x.mean(axis=-1, keepdims=True)
    x = grey + (x - grey) * style.saturation
    x = 0.5 + (x - 0.5) * style.contrast
    return np.clip(x * 255.0 + 0.5, 0, 255).astype(np.uint8)


FAMILIES = ("portraits", "lineart")


def _ink(canvas: Image.Image, style: Style, size: int) -> np.ndarray:
    """The line-art family: the portrait's edges inked dark on white paper, every fill gone. The artist's pen is the
    outline weight (line width) and the contrast (ink darkness); colour factors vanish, as in real line art."""
    edges = canvas.convert("L").filter(ImageFilter.FIND_EDGES)
    if style.outline > 1.5:  # a broad pen: 3 px strokes at twice the output size
        edges = edges.filter(ImageFilter.MaxFilter(3))
    darkness = 1.2 * style.contrast
    paper = edges.point(lambda v: 255 - min(255, int(v * darkness)))
    return np.repeat(
        np.asarray(paper.resize((size, size), Image.Resampling.BOX))[..., None], 3, axis=-1
    )


def render(content: Content, style: Style, size: int, family: str = "portraits") -> np.ndarray:
    """uint8 [size, size, 3] picture of `content` drawn in `style` (any size from 32 to 256): a colour portrait, or
    its line art (family "lineart": mostly white paper, dark strokes)."""
    if not 16 <= size <= 1024:
        raise ValueError(f"size must be in [16, 1024], got {size}")
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    big = size * 2
    c = _Canvas(big, BACKGROUNDS[content.background], content.head_tilt, style.outline)
    hair = HAIR_COLOURS[content.hair_colour]
    w = 0.5 * (1.0 / style.face_aspect) ** 0.3
    h = w * style.face_aspect * 1.05
    cx, cy = 0.5, 0.5
    top = cy - h / 2 - w * 0.12
    # Shoulders, then hair behind the head (the cut decides its length and shape).
    c.polygon(
        [(0.12, 1.02), (0.2, 0.86), (0.4, 0.8), (0.6, 0.8), (0.8, 0.86), (0.88, 1.02)],
        fill=(60, 70, 110),
    )
    if content.hair_cut == 1:  # long
        c.polygon(
            _ellipse(cx, cy + h * 0.25, w * 0.68, h * 0.85, 0, 30, math.pi, 2 * math.pi)
            + [(cx + w * 0.7, 0.98), (cx - w * 0.7, 0.98)],
            fill=_shade(hair, 0.85),
        )
    elif content.hair_cut == 2:  # twin tails
        for side in (-1, 1):
            c.polygon(
                _ellipse(cx + side * w * 0.72, cy + h * 0.25, w * 0.2, h * 0.6, side * 8),
                fill=_shade(hair, 0.85),
            )
    c.polygon(_ellipse(cx, cy - h * 0.05, w * 0.6, h * 0.58), fill=_shade(hair, 0.85), width=0)
    # Neck and face.
    c.polygon(
        [
            (cx - w * 0.14, cy + h * 0.3),
            (cx + w * 0.14, cy + h * 0.3),
            (cx + w * 0.14, 0.84),
            (cx - w * 0.14, 0.84),
        ],
        fill=_shade(SKIN, 0.9),
    )
    face = _face_outline(style, cx, cy, w, h)
    c.polygon(face, fill=SKIN)
    if style.shading == 1:  # cel: a hard-edged shadow on one side of the face
        c.polygon(
            [p for p in face if p[0] >= cx + w * 0.18] + [(cx + w * 0.18, cy + h * 0.4)],
            fill=(205, 150, 140, 110),
            width=0,
        )
    elif style.shading == 2:  # gradient: soft darkening toward the jaw
        for k in range(6):
            c.polygon(
                _face_outline(
                    style,
                    cx,
                    cy + h * (0.06 + 0.04 * k),
                    w * (0.98 - 0.08 * k),
                    h * (0.9 - 0.1 * k),
                ),
                fill=(190, 120, 120, 14),
                width=0,
            )
    eye_y, eye_dx = cy + h * 0.08, w * 0.22
    if style.blush > 0.05:
        for side in (-1, 1):
            c.polygon(
                _ellipse(cx + side * eye_dx * 1.05, eye_y + h * 0.17, w * 0.1, w * 0.045),
                fill=(240, 110, 120, int(170 * style.blush)),
                width=0,
            )
    for side in (-1, 1):
        _draw_eye(c, style, content, cx + side * eye_dx, eye_y, side, w)
    c.line_(
        [(cx + w * 0.01, cy + h * 0.25), (cx - w * 0.01, cy + h * 0.27)],
        _shade(SKIN, 0.7),
        big / 120,
    )
    _draw_mouth(c, content.expression, cx, cy + h * 0.36, w)
    _draw_bangs(c, style, content, cx, top, w, hair)
    _draw_accessory(c, content.accessory, cx, top, w, eye_y, eye_dx)
    if family == "lineart":
        return _ink(c.image, style, size)
    small = c.image.resize((size, size), Image.Resampling.BOX)
    return _colour_grade(np.asarray(small), style)


# ---- data set ---------------------------------------------------------------------------------------------------
def _png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def test_count(images_per_artist: int) -> int:
    """The papers' held-out rule: 10% of an artist's images or 10 images, whichever is larger."""
    return max(int(math.ceil(0.1 * images_per_artist)), 10)


def preview_grid(
    num_artists: int, num_contents: int, size: int, seed: int, family: str = "portraits"
) -> np.ndarray:
    """Rows = artists, columns = the same contents: what a person looks at to judge the data set."""
    from tf_gadn.data.images import tile

    rng = np.random.default_rng([seed, 99])
    contents = [sample_content(rng) for _ in range(num_contents)]
    grid = np.stack(
        [
            np.stack([render(content, artist_style(seed, a), size, family) for content in contents])
            for a in range(num_artists)
        ]
    )
    return tile(grid)


def generate_dataset(
    out_dir: str,
    num_artists: int,
    images_per_artist: int,
    image_size: int,
    seed: int = 1,
    test_split: bool = True,
    num_shards: int = 2,
    overwrite: bool = False,
    progress: bool = True,
    family: str = "portraits",
) -> dict:
    """Writes the synthetic data set (TFRecords, artists.json, dataset.json, preview.png) atomically."""
    if num_artists < 1 or images_per_artist < 1:
        raise ValueError("num_artists and images_per_artist must be >= 1")
    held_out = test_count(images_per_artist) if test_split else 0
    if images_per_artist - held_out < 1:
        raise ValueError(
            f"{images_per_artist} images per artist leave no training image after holding out "
            f"{held_out} for the test split; use more images or --no_test_split"
        )
    started, total = time.time(), num_artists * images_per_artist
    with records.atomic_output_dir(out_dir, overwrite) as tmp:
        with (
            records.ShardedWriter(tmp, "train", num_shards) as train,
            records.ShardedWriter(tmp, "test", max(1, num_shards // 2)) as test,
        ):
            for index in range(total):
                artist, k = index % num_artists, index // num_artists
                rng = np.random.default_rng([seed, artist, k])
                style = jitter_style(artist_style(seed, artist), rng)
                content = sample_content(rng)
                example = records.encode_example(
                    _png(render(content, style, image_size, family)),
                    artist,
                    f"artist_{artist:02d}",
                    f"synthetic://{seed}/{artist}/{k}",
                    content_vector(content),
                    style_vector(style),
                )
                (test if k < held_out else train).write(example)
                _progress(index + 1, total, started, progress)
        artists = [
            {
                "id": a,
                "name": f"artist_{a:02d}",
                "count": images_per_artist - held_out,
                "test_count": held_out,
            }
            for a in range(num_artists)
        ]
        records.write_artists(tmp, artists)
        records.write_json(
            os.path.join(tmp, records.DATASET_FILE),
            {
                "image_size": image_size,
                "source": "synthetic",
                "seed": seed,
                "family": family,
                "content_factors": [n for n, _ in CONTENT_FACTORS],
                "content_classes": [c for _, c in CONTENT_FACTORS],
                "style_factors": [n for n, _ in STYLE_FACTORS],
                "style_classes": [c for _, c in STYLE_FACTORS],
            },
        )
        Image.fromarray(
            preview_grid(min(num_artists, 8), 6, min(image_size, 96), seed, family)
        ).save(os.path.join(tmp, "preview.png"))
    return {
        "images": total,
        "train": num_artists * (images_per_artist - held_out),
        "test": num_artists * held_out,
        "seconds": time.time() - started,
    }


def _progress(done: int, total: int, started: float, enabled: bool) -> None:
    """One line rewritten in place on a terminal; in a log file, a line per 10% (no carriage returns)."""
    tty = sys.stdout.isatty()
    if not enabled or (done < total and done % (50 if tty else max(1, -(-total // 10)))):
        return
    message = f"rendered {done}/{total} images ({done / max(time.time() - started, 1e-9):.0f}/s)"
    sys.stdout.write(("\r" + message + ("\n" if done == total else "")) if tty else message + "\n")
    sys.stdout.flush()


def main(argv):
    from absl import flags

    del argv
    f = flags.FLAGS
    summary = generate_dataset(
        f.output_dir,
        f.num_artists,
        f.images_per_artist,
        f.image_size,
        f.seed,
        test_split=not f.no_test_split,
        num_shards=f.num_shards,
        overwrite=f.overwrite,
        family=f.family,
    )
    print(
        f"wrote {summary['train']} train + {summary['test']} test images to {f.output_dir} "
        f"in {summary['seconds']:.1f}s; preview: {os.path.join(f.output_dir, 'preview.png')}"
    )


if __name__ == "__main__":
    from absl import app, flags

    flags.DEFINE_string("output_dir", None, "Where the data set goes.")
    flags.DEFINE_integer("num_artists", 8, "Number of artists (styles).")
    flags.DEFINE_integer("images_per_artist", 100, "Images per artist.")
    flags.DEFINE_integer("image_size", 64, "Image size in pixels (32..256).")
    flags.DEFINE_integer("seed", 1, "Seed: same seed, same data set.")
    flags.DEFINE_integer("num_shards", 2, "TFRecord shards of the train split.")
    flags.DEFINE_bool("no_test_split", False, "Keep every image for training (no held-out split).")
    flags.DEFINE_bool("overwrite", False, "Replace an existing output directory.")
    flags.DEFINE_enum(
        "family", "portraits", FAMILIES, "portraits (colour) or lineart (dark strokes on white)."
    )
    flags.mark_flag_as_required("output_dir")
    app.run(main)
