"""`python -m tf_gadn.evaluate_style_space` keeps working as README documents it; the code lives in `tf_gadn.style_space.evaluation`."""
import runpy

if __name__ == "__main__":
    runpy.run_module("tf_gadn.style_space.evaluation", run_name="__main__", alter_sys=True)
