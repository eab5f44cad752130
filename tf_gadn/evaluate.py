"""`python -m tf_gadn.evaluate` keeps working as README documents it; the code lives in `tf_gadn.gadn.evaluation`."""
import runpy

if __name__ == "__main__":
    runpy.run_module("tf_gadn.gadn.evaluation", run_name="__main__", alter_sys=True)
