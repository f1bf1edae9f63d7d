"""LawcatConfig: the teacher's architecture plus every switch of the LAWCAT layer.

Defaults are the paper's method (docs/method.md): separate causal convs (kernel 4) on q and k, one shared Hedgehog
feature map, a rank-32 forget gate logsigmoid(.)/16, the Eq. 8 normalizer, no RoPE, no window. Every ablation
the paper runs is a field, and the named presets (`PRESETS`) set them together, so the LoLCATs baseline and the
ablations run through exactly the same code as LAWCAT.
"""
from __future__ import annotations

import copy

from transformers import PretrainedConfig

SUPPORTED_FAMILIES = ("llama", "mistral", "qwen2", "qwen3")

# Named configurations for the paper's comparisons (Tables 2, 4, 5, 6, 8 and the LoLCATs baseline).
# `lolcats` keeps the teacher's RoPE on q and k, as LoLCATs does (without it, it is not LoLCATs: Table 5);
# `lawcat-rope` is LAWCAT plus that same RoPE (Table 5); `lawcat-swa64` is LAWCAT plus the window only, no RoPE.
# Where RoPE sits relative to the conv and the window: lawcat.layers.attention's module docstring.
PRESETS: dict[str, dict] = {
    "lawcat": {},
    "lolcats": dict(use_conv=False, use_gate=False, shared_feature_map=False, use_rope=True, window_size=64),
    "lawcat-no-norm": dict(normalize=False),
    "lawcat-no-conv": dict(use_conv=False),
    "lawcat-rope": dict(use_rope=True),
    "lawcat-swa64": dict(window_size=64),
    "lawcat-shared-conv": dict(shared_conv=True),
    "lawcat-separate-maps": dict(shared_feature_map=False),
    "lawcat-shared-conv-separate-maps": dict(shared_conv=True, shared_feature_map=False),
    "lawcat-gate16": dict(gate_rank=16),
    "lawcat-gate64": dict(gate_rank=64),
    "lawcat-gate128": dict(gate_rank=128),
}


class LawcatConfig(PretrainedConfig):
    model_type = "lawcat"

    def __init__(
        self,
        teacher_config: dict | None = None,
        preset: str = "lawcat",
        use_conv: bool = True,
        conv_kernel: int = 4,
        conv_init_other: float = 1e-3,
        shared_conv: bool = False,
        feature_map: str = "hedgehog",
        shared_feature_map: bool = True,
        use_gate: bool = True,
        gate_rank: int = 32,
        gate_logit_normalizer: float = 16.0,
        normalize: bool = True,
        use_rope: bool = False,
        window_size: int = 0,
        window_factor_init: float = 0.1,
        eps: float = 1e-6,
        chunk_size: int = 32,  # CPU reference path only (fla picks its own); 32 measured fastest on 2 cores
        gla_backend: str = "auto",
        teacher_source: str | None = None,
        teacher_file_sha256: str | None = None,
        teacher_fingerprint: str | None = None,
        modified_teacher_params: list | None = None,
        merged: bool = False,
        lora: dict | None = None,
        **kwargs,
    ):
        self.teacher_config = teacher_config or {}
        self.preset = preset
        self.use_conv = use_conv
        self.conv_kernel = conv_kernel
        self.conv_init_other = conv_init_other
        self.shared_conv = shared_conv
        self.feature_map = feature_map
        self.shared_feature_map = shared_feature_map
        self.use_gate = use_gate
        self.gate_rank = gate_rank
        self.gate_logit_normalizer = gate_logit_normalizer
        self.normalize = normalize
        self.use_rope = use_rope
        self.window_size = window_size
        self.window_factor_init = window_factor_init
        self.eps = eps
        self.chunk_size = chunk_size
        self.gla_backend = gla_backend
        self.teacher_source = teacher_source
        self.teacher_file_sha256 = teacher_file_sha256
        self.teacher_fingerprint = teacher_fingerprint
        self.modified_teacher_params = list(modified_teacher_params or [])
        self.merged = merged
        self.lora = lora  # LoRA settings while adapters are kept separate (None once merged or never added)
        # Generation and embedding tying follow the teacher unless the caller says otherwise.
        kwargs.setdefault("tie_word_embeddings", self.teacher_config.get("tie_word_embeddings", False))
        for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
            if key not in kwargs and key in self.teacher_config:
                kwargs[key] = self.teacher_config[key]
        super().__init__(**kwargs)
        self.validate()

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "LawcatConfig":
        """A config for a named preset ("lawcat", "lolcats", "lawcat-no-norm", ...), with field overrides."""
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; known presets: {', '.join(PRESETS)}")
        fields = dict(PRESETS[name])
        fields.update(overrides)
        return cls(preset=name, **fields)

    def validate(self) -> None:
        if self.feature_map != "hedgehog":
            raise ValueError(f"feature_map {self.feature_map!r} is not supported; use 'hedgehog'")
        if self.use_conv and self.conv_kernel < 1:
            raise ValueError(f"conv_kernel must be >= 1, got {self.conv_kernel}")
        if self.use_gate and self.gate_rank < 1:
            raise ValueError(f"gate_rank must be >= 1, got {self.gate_rank}")
        if self.window_size < 0:
            raise ValueError(f"window_size must be >= 0, got {self.window_size}")
        if not 0.0 < self.window_factor_init < 1.0:
            raise ValueError("window_factor_init must lie strictly between 0 and 1")
        family = self.teacher_config.get("model_type")
        if family is not None and family not in SUPPORTED_FAMILIES:
            raise ValueError(
                f"teacher architecture {family!r} is not supported; lawcat supports {', '.join(SUPPORTED_FAMILIES)}"
            )

    def teacher_hf_config(self) -> PretrainedConfig:
        """The teacher's own transformers config, rebuilt from the stored dict."""
        from transformers import AutoConfig

        data = copy.deepcopy(self.teacher_config)
        model_type = data.pop("model_type", None)
        if model_type is None:
            raise ValueError("this LawcatConfig carries no teacher_config; build it with linearize(teacher, config)")
        for key in ("quantization_config", "transformers_version", "architectures", "_name_or_path"):
            data.pop(key, None)
        return AutoConfig.for_model(model_type, **data)

    # Derived sizes, read off the teacher config so the layer code stays family-agnostic.
    # (Named apart from transformers' own hidden_size/head_dim, which its config validators inspect.)
    @property
    def attn_heads(self) -> int:
        return self.teacher_config["num_attention_heads"]

    @property
    def attn_kv_heads(self) -> int:
        return self.teacher_config.get("num_key_value_heads") or self.attn_heads

    @property
    def attn_head_dim(self) -> int:
        hd = self.teacher_config.get("head_dim")
        return hd or self.teacher_config["hidden_size"] // self.attn_heads

    @property
    def model_hidden_size(self) -> int:
        return self.teacher_config["hidden_size"]

    @property
    def num_hidden_layers(self) -> int:
        return self.teacher_config.get("num_hidden_layers", 0)

    @num_hidden_layers.setter
    def num_hidden_layers(self, value):  # PretrainedConfig may try to set it; the teacher config is the truth
        pass

    @property
    def vocab_size(self) -> int:
        return self.teacher_config.get("vocab_size", 0)

    @vocab_size.setter
    def vocab_size(self, value):
        pass


_DROP_KEYS = ("quantization_config", "_name_or_path", "transformers_version", "architectures")


def teacher_config_dict(teacher_config) -> dict:
    """The teacher's config as the student records it: everything that rebuilds the architecture, nothing that
    names files, versions or quantization of one particular copy."""
    data = teacher_config.to_dict()
    for key in _DROP_KEYS:
        data.pop(key, None)
    return data
