"""tf_gadn: style/content disentanglement for anime portraits (GADN and metric-learned style space)."""

from setuptools import find_packages, setup

setup(
    name="tf_gadn",
    version="0.1.0",
    description="Disentangling style and content in anime portraits: GADN and style-space GAN in TensorFlow/Keras 3.",
    packages=find_packages(include=["tf_gadn", "tf_gadn.*"]),
    package_data={
        "tf_gadn.explorer": ["static/*.html", "static/*.js", "static/*.css"]
    },  # the explorer's page
    python_requires=">=3.11,<3.12",
    install_requires=[
        "tensorflow==2.21.*",
        "keras>=3.12,<4",
        "absl-py>=2.1",
        "tensorboard>=2.18",
        "numpy>=1.26",
        "pillow>=10",
        "grpcio>=1.60",
        "waitress>=3.0",  # REST transport of tf_gadn.serve
        "tensorflow-serving-api==2.21.*",
        "animeface>=2.0",
    ],
    extras_require={
        # selenium: the explorer's browser test
        "dev": [
            "pytest>=8",
            "pytest-xdist>=3.5",
            "ai-edge-litert>=1.0",
            "ruff==0.17.*",
            "selenium>=4.20",
        ],
        "gpu": ["tensorflow[and-cuda]==2.21.*"],
        # benchmarks/torch_reference.py: the PyTorch twin train_speed.py times tf_gadn against (any torch build;
        # a CPU-only one is enough, e.g. Debian's python3-torch run with --torch_python /usr/bin/python3)
        "bench": ["torch>=1.13"],
    },
)
