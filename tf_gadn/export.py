"""`python -m tf_gadn.export` keeps working as README documents it; the code lives in `tf_gadn.serving.export`."""
import runpy

if __name__ == "__main__":
    runpy.run_module("tf_gadn.serving.export", run_name="__main__", alter_sys=True)
