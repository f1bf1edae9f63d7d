"""lawcat: distill a pretrained transformer LM into LAWCAT linear attention (conv + gated, normalized GLA)."""
from .models import LawcatCache, LawcatConfig, LawcatForCausalLM, linearize, load_teacher

__version__ = "0.1.0"
__all__ = ["LawcatCache", "LawcatConfig", "LawcatForCausalLM", "linearize", "load_teacher", "__version__"]
