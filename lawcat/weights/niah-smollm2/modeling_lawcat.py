"""Lets transformers' Auto classes load this lawcat student without `import lawcat`:

    AutoModelForCausalLM.from_pretrained("<this folder>", trust_remote_code=True)

The model code is not copied into the checkpoint: this module re-exports the classes of the `lawcat` package,
which must be installed in the environment that loads the folder (`pip install lawcat`, or `pip install -e .` in
its repository). lawcat's save_pretrained writes this file with every checkpoint.
"""
try:
    from lawcat.models.config import LawcatConfig
    from lawcat.models.modeling import LawcatForCausalLM
except ImportError as e:
    raise ImportError("this folder holds a lawcat student: install the `lawcat` package to load it "
                      f"(importing it failed: {e})") from e

__all__ = ["LawcatConfig", "LawcatForCausalLM"]
