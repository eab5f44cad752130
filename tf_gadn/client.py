"""`python -m tf_gadn.client --server localhost:8500 --model gadn --image in.png --artist NAME --out out.png [--rest]`:
draws the content of in.png in an artist's style through a model server (TF Serving or tf_gadn.serve). Thin CLI over
tf_gadn.serving.client."""

import sys

from absl import app, flags

from tf_gadn.serving import client

FLAGS = flags.FLAGS


def define_flags():
    flags.DEFINE_string(
        "server", "localhost:8500", "host:port of the gRPC API (with --rest: of the REST API)."
    )
    flags.DEFINE_bool("rest", False, "Use the REST API instead of gRPC.")
    flags.DEFINE_string("model", "gadn", "Model name in the server's models.config.")
    flags.DEFINE_integer("version", 0, "Model version (0: the newest, or --label).")
    flags.DEFINE_string("label", "", "Version label (e.g. stable, canary).")
    flags.DEFINE_string("image", None, "Input image (PNG or JPEG).")
    flags.DEFINE_string("artist", "", "Target artist's name (see the model's artists.json).")
    flags.DEFINE_integer("artist_id", None, "Target artist's id, instead of --artist.")
    flags.DEFINE_string("out", "out.png", "Where the transferred image goes (PNG).")
    flags.DEFINE_float("timeout", 60.0, "Seconds to wait for the answer.")
    flags.DEFINE_float(
        "strength",
        None,
        "Style strength: 0 the image's own style, 1 the artist's, > 1 exaggerated.",
    )
    flags.DEFINE_bool(
        "keep_colors",
        False,
        "Keep the image's colours (L from the output, a and b from the image).",
    )
    flags.DEFINE_integer(
        "source_artist_id", None, "GADN with --strength/--keep_colors: the image's own artist."
    )


def main(argv):
    del argv
    if not FLAGS.artist and FLAGS.artist_id is None:
        raise app.UsageError("give --artist NAME or --artist_id N")
    remote = (
        client.RestClient(FLAGS.server, FLAGS.timeout)
        if FLAGS.rest
        else client.GrpcClient(FLAGS.server, FLAGS.timeout)
    )
    with open(FLAGS.image, "rb") as f:
        image = f.read()
    try:
        png = client.transfer(
            remote,
            FLAGS.model,
            image,
            FLAGS.artist,
            FLAGS.artist_id,
            FLAGS.version,
            FLAGS.label,
            FLAGS.strength,
            FLAGS.keep_colors,
            FLAGS.source_artist_id,
        )
    except client.ServerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    with open(FLAGS.out, "wb") as f:
        f.write(png)
    print(FLAGS.out)
    return 0


if __name__ == "__main__":
    define_flags()
    flags.mark_flag_as_required("image")
    app.run(main)
