"""`python -m tf_gadn.explore --model_dir M --out_dir D [--reference_images a.png,b.png] [--dims 0,1]`: the pictures of
the style-space paper's Sections 6.3-6.4 from a trained style-space run.

Figure 2: random style codes (columns) crossed with random content codes (rows), one noise code for all. Figure 3:
random styles for one content; bilinear interpolation between four corner styles. Figures 4-5: for each chosen style
dimension (default: the paper's, the 10th and 6th), random codes with that dimension set to -5, 0, +5, next to
training images ranked lowest and highest 10% on it among every training image. Figures 6-7: reconstruction G(u(x), v(x), 0) and style transfer G(u(y), v(x), 0) of training
images, and of --reference_images when given. On synthetic data also the style of an artist held out of training
(rendered with a style seed no training artist has), taken from that artist's images alone, with the true rendering
of each content in that style next to the transfer. Dimensions are 0-based code indices.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf
from PIL import Image, UnidentifiedImageError

from tf_gadn.data import color as colorspace
from tf_gadn.data import faces, pipeline, records, synthetic
from tf_gadn.evaluation import visualize
from tf_gadn.style_space.common import StyleSpace, load_style_space

SHOWN = 8  # images in reconstruction / transfer figures
HELD_OUT_IMAGES = 8  # images of the held-out artist that define its style
PAPER_DIMS = (9, 5)  # Figures 4 and 5: the 10th and the 6th style dimension, 0-based
FIGURE_2_CODES = 6  # random styles x random contents
POOL = 2048  # training images the reconstruction / transfer figures pick from (file order)


def default_dims(d_style: int) -> list[int]:
    """The paper's dimensions that the code has; the first ones when it has none of them (a small d_style)."""
    return [d for d in PAPER_DIMS if d < d_style] or list(range(min(d_style, 4)))


def split_batches(config, split: str = "train", with_factors: bool = False):
    """One in-order pass over a split in Lab."""
    return pipeline.make_dataset(
        config.data_dir,
        split,
        global_batch_size=64,
        image_size=config.image_size,
        color="lab",
        shuffle=False,
        repeat=False,
        drop_remainder=False,
        with_factors=with_factors,
    )


def style_codes_of_split(space: StyleSpace, max_images: int = 0) -> np.ndarray:
    """u of the first `max_images` training images (0: all of them, as the paper ranks), in file order; streamed, so
    only the codes are kept."""
    codes, seen = [], 0
    for batch in split_batches(space.config):
        codes.append(space.style(batch["image"].numpy()))
        seen += len(codes[-1])
        if max_images and seen >= max_images:
            break
    codes = np.concatenate(codes)
    return codes[:max_images] if max_images else codes


def images_at(config, indices) -> np.ndarray:
    """The training images at these file-order positions, in the order asked (a second streamed pass)."""
    wanted, found, offset = {int(i) for i in indices}, {}, 0
    for batch in split_batches(config):
        images = batch["image"].numpy()
        for k in wanted & set(range(offset, offset + len(images))):
            found[k] = images[k - offset]
        offset += len(images)
        if len(found) == len(wanted):
            break
    return np.stack([found[int(i)] for i in indices])


def to_model_space(rgb_uint8) -> np.ndarray:
    """uint8 RGB [N, S, S, 3] -> normalised Lab, what the style-space networks see."""
    return colorspace.to_model_space(
        tf.constant(np.asarray(rgb_uint8), tf.float32) / 127.5 - 1.0, "lab"
    ).numpy()


def training_images(
    config, max_images: int, with_factors: bool = False, split: str = "train"
) -> dict:
    """The first `max_images` images of a split (file order) in Lab, with artists (and both factors if asked)."""
    ds = split_batches(config, split, with_factors)
    parts: dict[str, list] = {}
    seen = 0
    for batch in ds:
        for key in ("image", "artist", "content_factors", "style_factors"):
            if key in batch:
                parts.setdefault(key, []).append(batch[key].numpy())
        seen += int(batch["image"].shape[0])
        if seen >= max_images:
            break
    return {key: np.concatenate(values)[:max_images] for key, values in parts.items()}


def load_reference_images(paths, image_size: int) -> np.ndarray:
    """Image files -> Lab model space, centre-cropped to a square and resized to the training size."""
    pictures = []
    for path in paths:
        try:
            picture = Image.open(path)
        except (FileNotFoundError, UnidentifiedImageError) as err:
            raise ValueError(f"reference image {path!r} cannot be read: {err}") from err
        with picture:
            pictures.append(np.asarray(faces.center_crop(picture.convert("RGB"), image_size)))
    return to_model_space(np.stack(pictures))


def held_out_artist(
    data_seed: int,
    artist: int,
    image_size: int,
    contents,
    seed: int = 0,
    salt: int = 4242,
    family: str = "portraits",
) -> dict:
    """Artist `artist` of the data set's seed -- with artist = the number of artists, one no training image was drawn
    by: HELD_OUT_IMAGES of its drawings (each with the same per-image jitter as the data set), and the true rendering
    of `contents` (synthetic.Content) in its style -- the ground truth a transfer into that style is compared against.
    `salt` keeps the drawings of different uses apart; `family` is the data set's (line art stays line art)."""
    style = synthetic.artist_style(data_seed, artist)
    rng = np.random.default_rng([seed, salt])
    drawings = np.stack(
        [
            synthetic.render(
                synthetic.sample_content(rng),
                synthetic.jitter_style(style, rng),
                image_size,
                family,
            )
            for _ in range(HELD_OUT_IMAGES)
        ]
    )
    truth = np.stack([synthetic.render(content, style, image_size, family) for content in contents])
    return {"images": to_model_space(drawings), "truth": to_model_space(truth)}


def transfer_grid(space: StyleSpace, content_images, style_codes) -> np.ndarray:
    """[n_content, n_style, S, S, 3]: G(u_j, v(x_i), 0) for every content image i and style code j."""
    v = space.content(content_images)
    u = np.asarray(style_codes, np.float32)
    fakes = space.generate(np.tile(u, (len(v), 1)), np.repeat(v, len(u), axis=0))
    return fakes.reshape((len(v), len(u)) + fakes.shape[1:])


def explore(
    model_dir: str,
    out_dir: str = "",
    reference_images=(),
    dims=None,
    seed: int = 0,
    max_images: int = 0,
) -> dict[str, str]:
    """Writes every exploration figure as a PNG into out_dir (default MODEL_DIR/explore); returns name -> path.
    max_images: training images ranked per swept dimension (0 = all, the paper)."""
    space = load_style_space(model_dir)
    config = space.config
    out_dir = out_dir or os.path.join(model_dir, "explore")
    info = records.read_dataset_info(config.data_dir)
    synthetic_data = info.get("source") == "synthetic"
    train = training_images(config, POOL, with_factors=synthetic_data)
    if len(train["image"]) < 2 * SHOWN:
        raise ValueError(
            f"exploration needs at least {2 * SHOWN} training images, found {len(train['image'])}"
        )
    rng = np.random.default_rng(seed)
    d_style, d_content, d_noise = config.d_style, config.d_content, space.noise_dim
    dims = default_dims(d_style) if dims is None else [int(d) for d in dims]
    path = lambda name: os.path.join(out_dir, name)  # noqa: E731
    written = {}

    # Figure 2 from codes, not images: rows share a random content code, columns a random style code.
    u = rng.standard_normal((FIGURE_2_CODES, d_style)).astype(np.float32)
    v = rng.standard_normal((FIGURE_2_CODES, d_content)).astype(np.float32)
    w = np.repeat(rng.standard_normal((1, d_noise)).astype(np.float32), FIGURE_2_CODES**2, 0)
    crossed = space.generate(np.tile(u, (FIGURE_2_CODES, 1)), np.repeat(v, FIGURE_2_CODES, 0), w)
    visualize.cells_to_png(
        [
            list(crossed[r * FIGURE_2_CODES : (r + 1) * FIGURE_2_CODES])
            for r in range(FIGURE_2_CODES)
        ],
        path("style_x_content_random.png"),
    )
    written["style_x_content_random"] = path("style_x_content_random.png")

    content, noise = rng.standard_normal(d_content), rng.standard_normal(d_noise)
    visualize.random_styles_figure(
        space.generate,
        content,
        noise,
        rng.standard_normal((24, d_style)),
        path("random_styles.png"),
    )
    written["random_styles"] = path("random_styles.png")
    visualize.interpolation_figure(
        space.generate, content, noise, rng.standard_normal((4, d_style)), path("interpolation.png")
    )
    written["interpolation"] = path("interpolation.png")

    train_styles = style_codes_of_split(space, max_images)
    for dim in dims:
        codes = (
            rng.standard_normal((4, d_style)),
            rng.standard_normal((4, d_content)),
            rng.standard_normal((4, d_noise)),
        )
        low, high = visualize.extreme_indices(
            train_styles[:, dim], len(visualize.SWEEP_VALUES), 0.1, seed + dim
        )
        name = f"dimension_{dim:02d}"
        visualize.dimension_sweep_figure(
            space.generate,
            codes,
            dim,
            images_at(config, low),
            images_at(config, high),
            path(name + ".png"),
        )
        written[name] = path(name + ".png")

    picked = np.linspace(0, len(train["image"]) - 1, SHOWN).astype(int)  # spread over artists
    shown = train["image"][picked]
    visualize.reconstruction_figure(
        shown, space.generate(space.style(shown), space.content(shown)), path("reconstruction.png")
    )
    written["reconstruction"] = path("reconstruction.png")
    contents, styles = shown[: SHOWN // 2], shown[SHOWN // 2 :]
    visualize.style_transfer_figure(
        contents,
        styles,
        transfer_grid(space, contents, space.style(styles)),
        path("style_transfer.png"),
    )
    written["style_transfer"] = path("style_transfer.png")

    if len(reference_images):
        references = load_reference_images(reference_images, config.image_size)
        visualize.reconstruction_figure(
            references,
            space.generate(space.style(references), space.content(references)),
            path("reference_reconstruction.png"),
        )
        written["reference_reconstruction"] = path("reference_reconstruction.png")
        visualize.style_transfer_figure(
            contents,
            references,
            transfer_grid(space, contents, space.style(references)),
            path("reference_style_transfer.png"),
        )
        written["reference_style_transfer"] = path("reference_style_transfer.png")

    if synthetic_data and "content_factors" in train:
        sources = shown[:6]
        factors = train["content_factors"][picked[:6]]
        artist = held_out_artist(
            info["seed"],
            len(records.read_artists(config.data_dir)),
            config.image_size,
            [synthetic.content_from_vector(f) for f in factors],
            seed,
            family=info.get("family", "portraits"),
        )
        style = space.style(artist["images"]).mean(
            axis=0, keepdims=True
        )  # the style of the artist's images
        transfers = transfer_grid(space, sources, style)[:, 0]
        triples = [[c, t, truth] for c, t, truth in zip(sources, transfers, artist["truth"])]
        cells = [list(artist["images"][:6])] + [
            triples[i] + triples[i + 1] for i in range(0, len(triples), 2)
        ]
        visualize.cells_to_png(cells, path("held_out_artist.png"))
        written["held_out_artist"] = path("held_out_artist.png")

    records.write_json(
        path("index.json"),
        {
            "figures": written,
            "dims": dims,
            "ranked_images": int(len(train_styles)),
            "seed": seed,
            "layout": {
                "style_x_content_random": "rows: one random content code each, columns: one random style code "
                "each, one noise code for all (Figure 2)",
                "random_styles": "one content, a random style per cell (Figure 3 left)",
                "interpolation": "styles bilinear between the four corners (Figure 3 right)",
                "dimension_NN": "rows: groups (-5, 0, +5) of one code; last row: training images lowest | highest "
                "10% on that dimension (Figures 4-5)",
                "reconstruction": "pairs (image, G(u(x), v(x), 0)) (Figure 6)",
                "style_transfer": "header row = style sources, header column = content sources (Figure 7)",
                "held_out_artist": "top row: drawings of an artist never seen in training; then groups (content "
                "source, transfer into that artist's style, true rendering)",
            },
        },
    )
    return written
