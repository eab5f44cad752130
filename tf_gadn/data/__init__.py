"""Data: the TFRecord format (records), the tf.data input (pipeline), Lab colour (color), real collections (prepare,
faces) and the embedded synthetic portraits (synthetic). `make_dataset` / `load_artists` are what training reads."""
from tf_gadn.data.pipeline import load_artists, make_dataset

__all__ = ["load_artists", "make_dataset"]
