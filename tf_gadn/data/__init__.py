"""Data: the TFRecord format (records), the tf.data input (pipeline), Lab colour (color), real collections (prepare,
faces) and the embedded synthetic portraits (synthetic)."""
