"""Square training crops from illustrations: AnimeFace face crops, rotated upright, and the plain centre crop.

Both papers build their data sets this way (GADN §4 "Dataset"; style-space paper §5.1): AnimeFace 2009 detects each
face, the face is rotated into an upright position, the detected face box is cropped out (black where it extends
beyond the image) and scaled to 256x256. The geometry here is pure numpy/PIL so it can be tested with known eye
positions; only `detect` touches AnimeFace.

Conventions. Points are (x, y) in image pixels, y pointing down; boxes are (x, y, width, height). `left_eye` and
`right_eye` are the *character's* eyes, as AnimeFace names them, so in an upright face the left eye is on the image's
right. The eye angle is the direction of the line from the right eye to the left eye, in degrees, measured like
image coordinates (0 = level, positive = the face is turned clockwise on screen); the upright crop undoes it.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.metadata
import math
from collections.abc import Sequence

import numpy as np
from PIL import Image

Point = Sequence[float]  # (x, y)
Box = Sequence[float]  # (x, y, width, height)

# Supersampling cap for the rotated crop: faces up to 4x the output size are rotated at full resolution and then
# shrunk with an anti-aliasing filter; larger ones are rotated at 4x (bounded work per face, no visible aliasing).
_MAX_SUPERSAMPLE = 4


def _as_pil(image) -> Image.Image:
    if isinstance(image, Image.Image):
        return image.convert("RGB") if image.mode != "RGB" else image
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[-1] != 3 or array.dtype != np.uint8:
        raise ValueError(f"expected a uint8 [H, W, 3] image, got {array.dtype} {array.shape}")
    return Image.fromarray(array)


def box_center(box: Box) -> tuple[float, float]:
    x, y, width, height = box
    return x + width / 2.0, y + height / 2.0


def eye_angle(left_eye: Point, right_eye: Point) -> float:
    """Degrees of the line from the character's right eye to their left eye (0 when the eyes are level)."""
    return math.degrees(math.atan2(left_eye[1] - right_eye[1], left_eye[0] - right_eye[0]))


def rotated_square(
    image, center: Point, side: float, angle_degrees: float, size: int
) -> np.ndarray:
    """uint8 [size, size, 3]: the square of `side` pixels centred at `center` whose x axis points along
    `angle_degrees`, resampled upright; where the square leaves the image the pixels are black (paper)."""
    if size < 1 or side <= 0:
        raise ValueError(f"size and side must be positive, got size={size}, side={side}")
    pil = _as_pil(image)
    # Rotate at (up to) the face's own resolution, then shrink: an affine warp straight to a much smaller size
    # would alias the line art.
    work = int(min(max(size, math.ceil(side)), _MAX_SUPERSAMPLE * size))
    theta = math.radians(angle_degrees)
    cos, sin, step, half = math.cos(theta), math.sin(theta), side / work, side / 2.0
    cx, cy = center
    # PIL's affine map takes output (u, v) to input (a*u + b*v + c, d*u + e*v + f): the face frame's x axis is
    # (cos, sin) in the image, its y axis (-sin, cos).
    coefficients = (
        step * cos,
        -step * sin,
        cx - half * cos + half * sin,
        step * sin,
        step * cos,
        cy - half * sin - half * cos,
    )
    crop = pil.transform(
        (work, work),
        Image.Transform.AFFINE,
        coefficients,
        resample=Image.Resampling.BICUBIC,
        fillcolor=(0, 0, 0),
    )
    if work != size:
        crop = crop.resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(crop, dtype=np.uint8)


def upright_crop(
    image, left_eye: Point, right_eye: Point, face_box: Box, size: int, margin: float = 0.0
) -> np.ndarray:
    """The face rotated so the eyes are level, cropped square and resized to `size`.

    Centre = centre of `face_box`; side = the box's longer side times (1 + 2 * margin). margin=0 crops exactly the
    detected face box, as the papers do; a positive margin adds that fraction of the box on every side.
    """
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    side = max(face_box[2], face_box[3]) * (1.0 + 2.0 * margin)
    return rotated_square(image, box_center(face_box), side, eye_angle(left_eye, right_eye), size)


def center_crop(image, size: int) -> np.ndarray:
    """The largest centred square, resized to `size`: the crop for collections that are already portraits."""
    pil = _as_pil(image)
    width, height = pil.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    square = pil.crop((left, top, left + side, top + side))
    return np.asarray(square.resize((size, size), Image.Resampling.LANCZOS), dtype=np.uint8)


# ---- AnimeFace --------------------------------------------------------------------------------------------------
class _LegacyImaging(ctypes.Structure):
    """Pillow's image header as animeface's compiled extension (<= 2.0.3) expects it: `mode` was still a char[7].

    Pillow now stores the mode as an enum, so the extension, handed a current `Image.getdata()`, reads the image
    height from the wrong field (0) and silently finds no face in any image. The extension only reads this header and
    the row pointers, so we hand it a header in the old layout that points at our own RGBX rows. A ctypes instance
    works as the "image object" because its data pointer sits right after the Python object header, exactly where
    the extension looks for the Imaging pointer.
    """

    _fields_ = [
        ("mode", ctypes.c_char * 7),
        ("type", ctypes.c_int),
        ("depth", ctypes.c_int),
        ("bands", ctypes.c_int),
        ("xsize", ctypes.c_int),
        ("ysize", ctypes.c_int),
        ("palette", ctypes.c_void_p),
        ("image8", ctypes.c_void_p),
        ("image32", ctypes.c_void_p),
        ("image", ctypes.c_void_p),
        ("block", ctypes.c_void_p),
        ("blocks", ctypes.c_void_p),
        ("pixelsize", ctypes.c_int),
        ("linesize", ctypes.c_int),
        ("destroy", ctypes.c_void_p),
    ]


@functools.cache
def _needs_legacy_header() -> bool:
    version = importlib.metadata.version("animeface")
    parts = tuple(int(p) for p in version.split(".")[:3] if p.isdigit())
    return parts <= (2, 0, 3)


def detect(image) -> list:
    """AnimeFace faces (`animeface.Face`: .face.pos box, .left_eye.pos / .right_eye.pos boxes, .likelihood)."""
    import animeface

    pil = _as_pil(image)
    if not _needs_legacy_header():
        return animeface.detect(pil)
    from animeface import _nvxs

    width, height = pil.size
    rows_rgbx = np.ascontiguousarray(np.asarray(pil.convert("RGBX"), dtype=np.uint8))
    base, stride = rows_rgbx.ctypes.data, rows_rgbx.strides[0]
    row_pointers = (ctypes.c_void_p * height)(*[base + y * stride for y in range(height)])
    header = _LegacyImaging(
        mode=b"RGB",
        type=0,
        depth=8,
        bands=3,
        xsize=width,
        ysize=height,
        image32=ctypes.cast(row_pointers, ctypes.c_void_p).value,
        image=ctypes.cast(row_pointers, ctypes.c_void_p).value,
        pixelsize=4,
        linesize=4 * width,
    )
    results = _nvxs.detect(header)
    del rows_rgbx, row_pointers  # kept alive until the extension has returned
    return [animeface.Face(result) for result in results]


def detect_and_crop(image, size: int, margin: float = 0.0) -> list[np.ndarray]:
    """One upright [size, size, 3] crop per face AnimeFace finds (eye centres = centres of its eye boxes)."""
    crops = []
    for face in detect(image):
        left_eye, right_eye = face.left_eye.pos, face.right_eye.pos
        box = face.face.pos
        crops.append(
            upright_crop(
                image,
                box_center((left_eye.x, left_eye.y, left_eye.width, left_eye.height)),
                box_center((right_eye.x, right_eye.y, right_eye.width, right_eye.height)),
                (box.x, box.y, box.width, box.height),
                size,
                margin,
            )
        )
    return crops
