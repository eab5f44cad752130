"""`prepare` on awkward collections (issue 10, item 8): each test builds the real thing in tmp_path (a FIFO, a socket,
a device link, a folder it cannot list, symbolic links back into the tree, undecodable file names, copied files,
16-bit and other pixel modes) and checks the data set and the report. Each of these once crashed the run, hung it,
or silently gave a wrong data set."""

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tf_gadn.data import prepare, records


def _rows(data_dir, split="train"):
    """[(artist, path, PNG bytes)] of one split."""
    rows = []
    for raw in tf.data.TFRecordDataset(records.shard_paths(str(data_dir), split)):
        example = records.parse_example(raw)
        rows.append((example["artist"].numpy().decode(), example["path"].numpy().decode(),
                     example["image"].numpy()))
    return rows


def _save(path, image, **options):
    image.save(path, **options)
    return path


def test_every_pixel_mode_comes_out_as_the_colour_it_shows(tmp_path):
    """16-bit greyscale PNGs (Pillow mode I;16) once came out near-white: Pillow's conversion clips at 255 instead of
    scaling. I;16 and I scale 0..65535 to 0..255 and F 0..1; the other modes with transparency or a different colour
    model are checked too, on real files through load_image (the one loader every file goes through)."""
    palette = Image.new("P", (4, 4), 1)
    palette.putpalette([255, 0, 0, 0, 0, 255])  # index 1: blue, made transparent below
    grey16 = np.full((4, 4), 32768, np.uint16)
    grey16[0, 0] = 0  # the transparent value below
    cases = {
        "I;16": (_save(tmp_path / "grey16.png", Image.fromarray(grey16)), (128, 128, 128)),
        "I;16 transparent": (_save(tmp_path / "grey16t.png", Image.fromarray(grey16), transparency=0),
                             (128, 128, 128)),
        "I": (_save(tmp_path / "grey32.tif", Image.fromarray(grey16.astype(np.int32), "I")), (128, 128, 128)),
        "F": (_save(tmp_path / "float.tif", Image.fromarray(np.full((4, 4), 0.5, np.float32), "F")), (128, 128, 128)),
        "LA": (_save(tmp_path / "la.png", Image.new("LA", (4, 4), (100, 255))), (100, 100, 100)),
        "LA transparent": (_save(tmp_path / "la0.png", Image.new("LA", (4, 4), (100, 0))), (255, 255, 255)),
        "P transparent": (_save(tmp_path / "p.png", palette, transparency=1), (255, 255, 255)),
        "CMYK": (_save(tmp_path / "cmyk.tif", Image.new("CMYK", (4, 4), (0, 255, 255, 0))), (255, 0, 0)),
        "RGBA half": (_save(tmp_path / "rgba.png", Image.new("RGBA", (4, 4), (0, 0, 0, 128))), (127, 127, 127)),
    }
    for mode, (path, colour) in cases.items():
        image = prepare.load_image(str(path))
        pixels = np.asarray(image, dtype=int)
        assert image.mode == "RGB", mode
        np.testing.assert_allclose(pixels[1:, 1:], np.broadcast_to(colour, (3, 3, 3)), atol=1, err_msg=mode)
    transparent = prepare.load_image(str(cases["I;16 transparent"][0]))
    assert transparent.getpixel((0, 0)) == (255, 255, 255)


def test_16_bit_png_is_mid_grey_in_the_data_set(tmp_path):
    """End to end: a mid-grey 16-bit greyscale PNG is stored mid-grey, not near-white."""
    (tmp_path / "in" / "alice").mkdir(parents=True)
    Image.fromarray(np.full((24, 24), 32768, np.uint16)).save(tmp_path / "in" / "alice" / "grey16.png")
    prepare.prepare(str(tmp_path / "out"), input_dir=str(tmp_path / "in"), image_size=16, min_images=1)
    (_, _, png), = _rows(tmp_path / "out")
    np.testing.assert_allclose(tf.io.decode_png(png).numpy(), 128, atol=1)
