"""`python -m tf_gadn.explore --model_dir M --out_dir D [--reference_images a.png,b.png] [--dims 0,1]`: the pictures of
the style-space paper's Sections 6.3-6.4 from a trained style-space run.

Figure 3: random styles for one content; bilinear interpolation between four corner styles. Figures 4-5: for each
chosen style dimension, random codes with that dimension set to -5, 0, +5, next to training images ranked lowest and
highest 10% on it. Figures 6-7: reconstruction G(u(x), v(x), 0) and style transfer G(u(y), v(x), 0) of training
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


def to_model_space(rgb_uint8) -> np.ndarray:
    """uint8 RGB [N, S, S, 3] -> normalised Lab, what the style-space networks see."""
    return colorspace.to_model_space(
        tf.constant(np.asarray(rgb_uint8), tf.float32) / 127.5 - 1.0, "lab"
    ).numpy()


def training_images(
    config, max_images: int, with_factors: bool = False, split: str = "train"
) -> dict:
    """The first `max_images` images of a split (file order) in Lab, with artists (and both factors if asked)."""
    ds = pipeline.make_dataset(
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
    max_images: int = 2048,
) -> dict[str, str]:
    """Writes every exploration figure as a PNG into out_dir (default MODEL_DIR/explore); returns name -> path."""
    space = load_style_space(model_dir)
    config = space.config
    out_dir = out_dir or os.path.join(model_dir, "explore")
    info = records.read_dataset_info(config.data_dir)
    synthetic_data = info.get("source") == "synthetic"
    train = training_images(config, max_images, with_factors=synthetic_data)
    if len(train["image"]) < 2 * SHOWN:
        raise ValueError(
            f"exploration needs at least {2 * SHOWN} training images, found {len(train['image'])}"
        )
    rng = np.random.default_rng(seed)
    d_style, d_content, d_noise = config.d_style, config.d_content, space.noise_dim
    dims = list(range(min(d_style, 4))) if dims is None else [int(d) for d in dims]
    path = lambda name: os.path.join(out_dir, name)  # noqa: E731
    written = {}

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

    train_styles = space.style(train["image"])
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
            train["image"][low],
            train["image"][high],
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
            "seed": seed,
            "layout": {
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
