"""lawcat: distill a pretrained transformer LM into LAWCAT linear attention (conv + gated, normalized GLA).

The model classes load on first use (`lawcat.LawcatForCausalLM`, `from lawcat import linearize`): importing the
package alone pulls in neither torch nor transformers, so `lawcat --help` and `lawcat --version` answer at once.
Loading them also registers "lawcat" with transformers' Auto classes.
"""
__version__ = "0.1.0"
_MODEL_EXPORTS = ("LawcatCache", "LawcatConfig", "LawcatForCausalLM", "linearize", "load_teacher")
__all__ = [*_MODEL_EXPORTS, "__version__"]


def __getattr__(name: str):
    import importlib

    if name in _MODEL_EXPORTS:
        return getattr(importlib.import_module(".models", __name__), name)
    if not name.startswith("__"):  # `import lawcat; lawcat.weights...`: the submodule, imported on demand
        try:
            return importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_MODEL_EXPORTS))


# Register with transformers' Auto classes at import when transformers is loaded already (so an Auto call right
# after `import lawcat` knows the model type); otherwise lawcat.models registers on first use, which keeps
# `lawcat --help` from importing torch. Saved students also name their classes in auto_map (trust_remote_code).
import sys as _sys  # noqa: E402

if "transformers" in _sys.modules:
    from . import models as _models  # noqa: E402,F401
