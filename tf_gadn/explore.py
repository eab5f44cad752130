"""`python -m tf_gadn.explore` keeps working as README documents it; the code lives in `tf_gadn.style_space.explore`."""
import runpy

if __name__ == "__main__":
    runpy.run_module("tf_gadn.style_space.explore", run_name="__main__", alter_sys=True)
