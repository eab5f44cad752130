"""`python -m tf_gadn.tflite` keeps working as README documents it; the code lives in `tf_gadn.serving.tflite`."""

import runpy

if __name__ == "__main__":
    runpy.run_module("tf_gadn.serving.tflite", run_name="__main__", alter_sys=True)
