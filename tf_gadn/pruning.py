"""`python -m tf_gadn.pruning` keeps working as README documents it; the code lives in `tf_gadn.style_space.pruning`."""
import runpy

if __name__ == "__main__":
    runpy.run_module("tf_gadn.style_space.pruning", run_name="__main__", alter_sys=True)
