"""Face crops (GADN §4 "Dataset"): the upright-crop geometry against scenes built with a known placement, black
padding outside the image, and AnimeFace itself on synthetic portraits."""

import dataclasses
import math

import numpy as np
import pytest
from PIL import Image

from tf_gadn.data import faces, synthetic

SIDE = 64  # portrait size in the geometry tests
EYE_DX, EYE_Y = 0.11, 0.55  # level eye points of an untilted portrait, as fractions of its side
SCENE_COLOUR = (120, 150, 120)
# Mean absolute error (0..255 scale) allowed between the portrait and its crop back out of a scene: the round trip
# resamples twice (scale + rotate when the scene is built, rotate + shrink when it is cropped). Measured: 2.2-3.4; the
# same crops left unrotated: 52-85.
TOLERANCE = 6.0


def _portrait(seed=0, size=SIDE, artist=0):
    """A synthetic portrait with head_tilt=0, so its eyes are level."""
    content = dataclasses.replace(
        synthetic.sample_content(np.random.default_rng(seed)), head_tilt=0.0
    )
    return synthetic.render(content, synthetic.artist_style(1, artist), size)


def _place(portrait, center, scale, rotation_ccw, scene_size=(260, 220)):
    """The portrait scaled by `scale`, rotated `rotation_ccw` degrees counter-clockwise on screen (PIL's rotate) and
    pasted with its centre at `center` into a plain scene. Returns the scene, the scene positions of the character's
    left and right eyes, and the axis-aligned face box (x, y, w, h) a detector would report."""
    side = round(portrait.shape[0] * scale)
    scaled = (
        Image.fromarray(portrait).resize((side, side), Image.Resampling.LANCZOS).convert("RGBA")
    )
    rotated = scaled.rotate(rotation_ccw, resample=Image.Resampling.BICUBIC, expand=True)
    corner = (round(center[0] - rotated.width / 2), round(center[1] - rotated.height / 2))
    scene = Image.new("RGB", scene_size, SCENE_COLOUR)
    scene.paste(rotated, corner, rotated)
    true_center = (corner[0] + rotated.width / 2, corner[1] + rotated.height / 2)
    phi = math.radians(rotation_ccw)

    def to_scene(
        u, v
    ):  # portrait fractions -> scene pixels; y down, so a CCW turn maps (x, y) to (xc+ys, -xs+yc)
        dx, dy = (u - 0.5) * side, (v - 0.5) * side
        return (
            true_center[0] + dx * math.cos(phi) + dy * math.sin(phi),
            true_center[1] - dx * math.sin(phi) + dy * math.cos(phi),
        )

    left_eye, right_eye = (
        to_scene(0.5 + EYE_DX, EYE_Y),
        to_scene(0.5 - EYE_DX, EYE_Y),
    )  # character's left = image right
    box = (true_center[0] - side / 2, true_center[1] - side / 2, side, side)
    return np.asarray(scene), left_eye, right_eye, box


def _mae(a, b):
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


@pytest.mark.parametrize(
    "center, scale, rotation_ccw",
    [
        ((130, 110), 2.0, 0.0),
        ((120, 100), 1.5, 30.0),
        ((140, 115), 2.5, -50.0),
        ((100, 90), 1.25, 135.0),
    ],
)
def test_upright_crop_recovers_the_portrait(center, scale, rotation_ccw):
    portrait = _portrait()
    scene, left_eye, right_eye, box = _place(portrait, center, scale, rotation_ccw)
    # The documented convention: positive eye angle = face turned clockwise on screen.
    assert faces.eye_angle(left_eye, right_eye) == pytest.approx(-rotation_ccw)
    crop = faces.upright_crop(scene, left_eye, right_eye, box, SIDE)
    assert crop.shape == (SIDE, SIDE, 3) and crop.dtype == np.uint8
    assert _mae(crop, portrait) < TOLERANCE
    if rotation_ccw:  # the tolerance means something: the same box left unrotated is far off
        unrotated = faces.rotated_square(scene, faces.box_center(box), box[2], 0.0, SIDE)
        assert _mae(unrotated, portrait) > 3 * TOLERANCE


def test_margin_widens_the_crop_around_the_same_centre():
    portrait = _portrait()
    scene, left_eye, right_eye, box = _place(portrait, (130, 110), 2.0, 20.0)
    wide = faces.upright_crop(scene, left_eye, right_eye, box, 2 * SIDE, margin=0.5)
    # with margin 0.5 the side doubles, so the middle half of a 2*SIDE crop is the portrait at SIDE pixels
    assert (
        _mae(wide[SIDE // 2 : SIDE // 2 + SIDE, SIDE // 2 : SIDE // 2 + SIDE], portrait) < TOLERANCE
    )
    with pytest.raises(ValueError, match="margin"):
        faces.upright_crop(scene, left_eye, right_eye, box, SIDE, margin=-0.1)


def test_box_leaving_the_image_is_padded_black():
    white = np.full((100, 100, 3), 255, np.uint8)
    # box x in [-10, 30): its left quarter lies outside the image
    crop = faces.rotated_square(white, center=(10.0, 50.0), side=40.0, angle_degrees=0.0, size=40)
    assert crop[:, :8].max() == 0 and crop[:, 12:].min() == 255
    # turned 90 degrees clockwise the crop's x axis points down the image: box y in [-15, 25) puts the outside part
    # (y < 0) into the crop's first 15 columns
    crop = faces.rotated_square(white, center=(50.0, 5.0), side=40.0, angle_degrees=90.0, size=40)
    assert crop[:, :13].max() == 0 and crop[:, 17:].min() == 255
    # a portrait pasted half outside the scene comes back with its visible part intact and black elsewhere
    portrait = _portrait()
    scene, left_eye, right_eye, box = _place(portrait, (0, 110), 2.0, 0.0)
    crop = faces.upright_crop(scene, left_eye, right_eye, box, SIDE)
    # (the rotation is done at 2x and shrunk with a Lanczos filter, which smears the edge over ~3 pixels)
    assert crop[:, : SIDE // 2 - 4].max() == 0
    assert _mae(crop[:, SIDE // 2 + 4 :], portrait[:, SIDE // 2 + 4 :]) < TOLERANCE


def test_center_crop_takes_the_middle_square():
    image = np.zeros((40, 80, 3), np.uint8)
    image[:, 20:60] = 200
    crop = faces.center_crop(image, 20)
    assert crop.shape == (20, 20, 3) and crop.min() == 200


# ---- AnimeFace itself ---------------------------------------------------------------------------------------------
# AnimeFace finds most synthetic portraits at 128-256 px (benchmarks/synthetic_speed.py has the rate), but its eye
# boxes on *turned* faces vary by portrait: for some it reports level eyes on a face turned 30 degrees. This portrait
# (seed 2) it finds upright and turned 15 degrees either way with the eyes within 2 degrees.
DETECTED_SEED, DETECTED_SIZE = 2, 256


def _eye_centres(face):
    boxes = [(p.x, p.y, p.width, p.height) for p in (face.left_eye.pos, face.right_eye.pos)]
    return [faces.box_center(b) for b in boxes]


def test_animeface_finds_the_synthetic_face_and_its_eyes():
    portrait = _portrait(DETECTED_SEED, DETECTED_SIZE, artist=DETECTED_SEED)
    found = faces.detect(portrait)
    assert len(found) == 1 and found[0].likelihood > 0.5
    box = found[0].face.pos
    assert (
        box.x < DETECTED_SIZE / 2 < box.x + box.width
        and box.y < DETECTED_SIZE / 2 < box.y + box.height
    )
    left_eye, right_eye = _eye_centres(found[0])
    assert (
        left_eye[0] > DETECTED_SIZE / 2 > right_eye[0]
    )  # the character's left eye is on the image's right
    assert abs(faces.eye_angle(left_eye, right_eye)) < 3.0


@pytest.mark.parametrize("rotation_ccw", [-15.0, 15.0])
def test_animeface_eye_angle_follows_a_turned_face(rotation_ccw):
    portrait = _portrait(DETECTED_SEED, DETECTED_SIZE, artist=DETECTED_SEED)
    scene, *_ = _place(portrait, (210, 200), 1.0, rotation_ccw, scene_size=(420, 400))
    found = faces.detect(scene)
    assert len(found) == 1
    # AnimeFace's eye boxes are coarse (whole pixels, loose fits): the tolerance is its accuracy, not ours
    assert faces.eye_angle(*_eye_centres(found[0])) == pytest.approx(-rotation_ccw, abs=4.0)
    crops = faces.detect_and_crop(scene, 64)
    assert len(crops) == 1 and crops[0].shape == (64, 64, 3)


def test_animeface_finds_nothing_where_there_is_no_face():
    noise = np.random.default_rng(0).integers(0, 256, (200, 200, 3), dtype=np.uint8)
    assert faces.detect(noise) == []
    assert faces.detect(np.full((1, 1, 3), 128, np.uint8)) == []
    assert faces.detect_and_crop(noise, 32) == []
