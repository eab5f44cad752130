"""Data: the TFRecord format (records), the tf.data input (pipeline), Lab colour (color), real collections (prepare,
faces) and the embedded synthetic portraits (synthetic). `make_dataset` / `load_artists` are what training reads.

They are imported lazily (PEP 562): `prepare`'s worker processes import this package and must not pay for loading
TensorFlow (about 6 s each) just to crop images."""

__all__ = ["load_artists", "make_dataset"]


def __getattr__(name):
    if name in __all__:
        from tf_gadn.data import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'tf_gadn.data' has no attribute {name!r}")
