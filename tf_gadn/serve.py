"""`python -m tf_gadn.serve` keeps working as README documents it; the code lives in `tf_gadn.serving.server`."""
import runpy

if __name__ == "__main__":
    runpy.run_module("tf_gadn.serving.server", run_name="__main__", alter_sys=True)
