"""Models: config, the student model with its recurrent cache, linearize(), teacher loading, checkpoints."""
from transformers import AutoConfig, AutoModelForCausalLM

from ..errors import (
    CheckpointError,
    LawcatError,
    TeacherLoadError,
    TeacherMismatchError,
    UnknownModelError,
    UnsupportedTeacherError,
)
from .cache import LawcatCache
from .config import PRESETS, SUPPORTED_FAMILIES, LawcatConfig
from .linearize import linearize
from .modeling import LawcatForCausalLM
from .teacher import load_teacher

AutoConfig.register("lawcat", LawcatConfig, exist_ok=True)
AutoModelForCausalLM.register(LawcatConfig, LawcatForCausalLM, exist_ok=True)

__all__ = [
    "LawcatCache", "LawcatConfig", "LawcatForCausalLM", "PRESETS", "SUPPORTED_FAMILIES", "linearize", "load_teacher",
    "CheckpointError", "LawcatError", "TeacherLoadError", "TeacherMismatchError", "UnknownModelError",
    "UnsupportedTeacherError",
]
