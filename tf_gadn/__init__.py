"""tf_gadn: GADN and the metric-learned style space in TensorFlow/Keras.

TensorFlow turns oneDNN's CPU kernels on by default only on CPUs with AVX-512 features; on an AVX2-only AMD EPYC they
made the GADN demo's float32 step 1.3x faster (BUILD.md "An AVX2-only CPU"), so importing the package turns them on
wherever TensorFlow is not loaded yet. `TF_ENABLE_ONEDNN_OPTS=0` in the environment still turns them off.
"""

import os

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
