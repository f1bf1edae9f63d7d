"""LawcatForCausalLM: the teacher's embeddings, norms, MLPs and projections around LAWCAT attention.

The module tree mirrors the teacher's (model.embed_tokens, model.layers.N.self_attn.q_proj, ..., lm_head), so
a teacher state dict loads by name and a checkpoint only has to store what LAWCAT adds or changes. The
decoder loop is written here rather than borrowed from the teacher's class: it needs the 2-D padding mask and
the recurrent cache, and it must never build the O(T^2) masks a softmax model needs.

What transformers' generate() needs lives in generation.py (GenerationHooks), save_pretrained / from_pretrained in
persistence.py (PretrainedIO); both are mixins of LawcatForCausalLM.
"""
from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional as F
from transformers import AutoModelForCausalLM, GenerationMixin, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast

from ..errors import UnsupportedTeacherError
from ..layers.attention import LawcatAttention
from .cache import CACHE_FIELD, LawcatCache
from .config import SUPPORTED_FAMILIES, LawcatConfig, teacher_config_dict
from .fingerprint import teacher_fingerprint
from .generation import GenerationHooks
from .persistence import PretrainedIO


class LawcatDecoderLayer(nn.Module):
    def __init__(self, config: LawcatConfig, teacher_layer: nn.Module, layer_idx: int):
        super().__init__()
        self.input_layernorm = teacher_layer.input_layernorm
        self.self_attn = LawcatAttention(config, teacher_layer.self_attn, layer_idx)
        self.post_attention_layernorm = teacher_layer.post_attention_layernorm
        self.mlp = teacher_layer.mlp

    def forward(self, x, mask=None, state=None, position_embeddings=None, transfer: bool = False):
        """The student layer; with transfer=True, stage 1's step instead: returns (next hidden state from the
        *teacher's* attention, LAWCAT output before o_proj, teacher output before o_proj). It lives here, in
        forward, so that FSDP's unshard hooks wrap it."""
        if transfer:
            return self._transfer(x, mask, position_embeddings)
        h, new_state = self.self_attn(self.input_layernorm(x), mask, state, position_embeddings)
        x = x + h
        return x + self.mlp(self.post_attention_layernorm(x)), new_state

    def _transfer(self, h, mask, rope):
        h_next, x, qkv, target = self.teacher_step(h, mask, rope)
        attn = self.self_attn
        pred, _ = attn.linear_attention(x, mask, None, rope if attn.config.use_rope else None, qkv=qkv)
        return h_next, pred, target

    @torch.no_grad()
    def teacher_step(self, h, mask, rope):
        """The teacher's own layer, keeping what stage 1 needs: (next hidden state, attention input x, its q/k/v,
        the softmax attention output before o_proj)."""
        attn = self.self_attn
        x = self.input_layernorm(h)
        qkv = attn.project(x)
        target = attn.softmax_attention(x, rope, mask, qkv=qkv)
        h = h + attn.o_proj(target)
        return h + self.mlp(self.post_attention_layernorm(h)), x, qkv, target


class LawcatModel(nn.Module):
    def __init__(self, config: LawcatConfig, teacher_base: nn.Module):
        super().__init__()
        for name in ("embed_tokens", "layers", "norm", "rotary_emb"):
            if not hasattr(teacher_base, name):
                raise ValueError(f"teacher model has no `{name}`; "
                                 "its layout is not the Llama-style one lawcat supports")
        self.embed_tokens = teacher_base.embed_tokens
        self.layers = nn.ModuleList(LawcatDecoderLayer(config, layer, i) for i, layer in enumerate(teacher_base.layers))
        self.norm = teacher_base.norm
        self.rotary_emb = teacher_base.rotary_emb


class LawcatForCausalLM(GenerationHooks, PretrainedIO, PreTrainedModel, GenerationMixin):
    config_class = LawcatConfig
    base_model_prefix = "model"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    _is_stateful = True  # the cache cannot be rolled back (generate() refuses what needs it: generation.py)
    _tied_weights_keys = {"lm_head.weight": "model.embed_tokens.weight"}
    _no_split_modules = ["LawcatDecoderLayer"]

    def __init__(self, config: LawcatConfig, teacher: nn.Module | None = None):
        super().__init__(config)
        if teacher is None:  # architecture only (random teacher weights), e.g. to load a merged export
            teacher = AutoModelForCausalLM.from_config(config.teacher_hf_config())
        self.model = LawcatModel(config, teacher.model)
        self.lm_head = teacher.lm_head
        # Names of the parameters that came from the teacher; everything else is LAWCAT's own.
        adopted = {id(p) for p in teacher.parameters()}
        self.teacher_param_names = {n for n, p in self.named_parameters(remove_duplicate=False) if id(p) in adopted}
        self.gradient_checkpointing = False
        self.post_init()

    def _init_weights(self, module):
        pass  # teacher weights are loaded, and LAWCAT's layers initialise themselves (identity-like)

    @classmethod
    def from_teacher(cls, teacher, config: LawcatConfig | None = None, fingerprint: str | None = None, **overrides):
        """A student built around `teacher` (a transformers causal LM of a supported family), sharing its weights;
        `lawcat.linearize` is this. `config` holds the LAWCAT switches (a fresh LawcatConfig() is the paper's
        method), keyword overrides go on top (gate_rank=16). New parameters are float32 whatever the teacher's
        dtype. The config records where the teacher came from and its weight fingerprint, so a checkpoint can
        later be re-applied to it."""
        family = getattr(getattr(teacher, "config", None), "model_type", None)
        if family not in SUPPORTED_FAMILIES:
            raise UnsupportedTeacherError(
                f"teacher architecture {family!r} is not supported; lawcat supports {', '.join(SUPPORTED_FAMILIES)}"
            )
        cfg = copy.deepcopy(config) if config is not None else LawcatConfig()
        for key, value in overrides.items():
            if not hasattr(cfg, key):
                raise ValueError(f"unknown LawcatConfig field {key!r}")
            setattr(cfg, key, value)
        cfg.teacher_config = teacher_config_dict(teacher.config)
        cfg.tie_word_embeddings = bool(teacher.config.tie_word_embeddings)
        for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
            setattr(cfg, key, getattr(teacher.config, key, None))
        cfg.teacher_source = getattr(teacher, "lawcat_source", None) or cfg.teacher_source
        cfg.teacher_file_sha256 = getattr(teacher, "lawcat_file_sha256", None) or cfg.teacher_file_sha256
        cfg.teacher_fingerprint = fingerprint or teacher_fingerprint(teacher)
        cfg.validate()
        if cfg.attn_head_dim % 2:
            raise UnsupportedTeacherError(f"head_dim {cfg.attn_head_dim} is odd; the Hedgehog feature map needs an "
                                          "even one")
        device = next(teacher.parameters()).device
        student = cls(cfg, teacher=teacher)
        for p in student.lawcat_parameters():
            p.data = p.data.to(device)
        student.generation_config = copy.deepcopy(teacher.generation_config)
        student.tokenizer = getattr(teacher, "lawcat_tokenizer", None)
        return student

    @classmethod
    def _supports_default_dynamic_cache(cls) -> bool:
        return False  # the cache is LawcatCache, made in _prepare_cache_for_generation

    def get_input_embeddings(self):
        return self.model.embed_tokens

    def get_output_embeddings(self):
        return self.lm_head

    def lawcat_parameters(self):
        """Parameters LAWCAT adds (convs, feature maps, gates, window factors): what stage 1 trains."""
        return [p for layer in self.model.layers for p in layer.self_attn.new_parameters()]

    def new_cache(self) -> LawcatCache:
        return LawcatCache(len(self.model.layers))

    # ---- forward -----------------------------------------------------------------------------------------
    def forward(self, input_ids=None, attention_mask=None, position_ids=None, past_key_values=None,
                inputs_embeds=None, labels=None, use_cache=None, logits_to_keep=0, return_dict=None, cache=None,
                **kwargs):
        x = inputs_embeds if inputs_embeds is not None else self.model.embed_tokens(input_ids)
        B, T = x.shape[:2]
        cache = cache if cache is not None else past_key_values
        if use_cache is None:
            use_cache = cache is not None or not self.training
        if use_cache and cache is None:
            cache = self.new_cache()
        if cache is not None and not isinstance(cache, LawcatCache):
            raise TypeError(f"past_key_values must be a LawcatCache, got {type(cache).__name__}")
        mask = None
        if attention_mask is not None:
            if attention_mask.dim() != 2:
                raise ValueError("LawcatForCausalLM takes a 2-D attention_mask [batch, tokens] (1 = token, 0 = pad)")
            am = attention_mask[:, -T:]
            # An all-ones mask is dropped eagerly (fewer ops); a compiled step or a CUDA-graph capture keeps it, since
            # asking would break its graph (a host sync), and multiplying by ones changes no bit.
            keep = torch.compiler.is_compiling() or (am.is_cuda and torch.cuda.is_current_stream_capturing())
            mask = am if keep or not bool(am.all()) else None
        position_embeddings = self._rope(x, mask, cache, position_ids) if self.config.use_rope else None

        for i, layer in enumerate(self.model.layers):
            state = cache.layers[i].state if cache is not None else None
            if self.gradient_checkpointing and self.training:
                x, new_state = torch.utils.checkpoint.checkpoint(layer, x, mask, state, position_embeddings,
                                                                 use_reentrant=False)
            else:
                x, new_state = layer(x, mask, state, position_embeddings)
            if cache is not None:
                cache.write(i, new_state)
        if cache is not None:
            cache.advance(T, x.device)

        x = self.model.norm(x)
        if torch.is_tensor(logits_to_keep):  # positions to keep (transformers' convention), e.g. the answer span
            keep = logits_to_keep
        else:
            keep = slice(-logits_to_keep, None) if logits_to_keep else slice(None)
        logits = self.lm_head(x[:, keep])
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits[:, :-1].float().reshape(-1, logits.shape[-1]),
                                   labels[:, 1:].reshape(-1).to(logits.device), ignore_index=-100)
        return CausalLMOutputWithPast(loss=loss, logits=logits, **{CACHE_FIELD: cache if use_cache else None})

    def _rope(self, x, mask, cache, position_ids=None):
        """(cos, sin) of the teacher's rotary module at every token's absolute position (use_rope).

        Positions count real tokens only and continue from the cache, so chunked prefill and decoding go on where
        the last chunk stopped and left padding does not shift a row: the positions generate() gives the teacher
        (attention_mask.cumsum - 1). position_ids, if given, are used as the teacher would use them; the cache then
        continues after the last real token's."""
        B, T = x.shape[:2]
        start = cache.positions if cache is not None and cache.positions is not None else \
            torch.zeros(B, dtype=torch.long, device=x.device)
        real = torch.ones(B, T, dtype=torch.long, device=x.device) if mask is None else mask.long()
        if position_ids is None:
            pos = (start[:, None] + real.cumsum(1) - 1).clamp_min(0)
            following = start + real.sum(1)
        else:
            if position_ids.dim() != 2:
                raise ValueError(f"position_ids must be [batch, tokens], got shape {tuple(position_ids.shape)}")
            pos = position_ids[:, -T:].to(device=x.device, dtype=torch.long).expand(B, T)
            following = torch.where(real.bool().any(1), torch.where(real.bool(), pos + 1, 0).amax(1), start)
        if cache is not None:
            cache.write_positions(following)
        return self.model.rotary_emb(x, pos)

    @torch.no_grad()
    def prefill(self, input_ids, attention_mask=None, chunk_size: int = 8192, cache: LawcatCache | None = None,
                graph: bool = False):
        """Run a prompt of any length in chunks through the recurrent cache: memory independent of its length.

        graph=True: a prompt of up to 4,096 tokens (graph_prefill.MAX_TOKENS) from a fresh cache replays a CUDA
        graph captured for its bucket of lengths (lawcat.models.graph_prefill; on CUDA, and the same padded forward
        elsewhere); longer prompts run as they are. The first prompt of each bucket pays its capture.
        Returns (logits of the last position [B, vocab], cache), ready for decoding.
        """
        if graph:
            if cache is not None:
                raise ValueError("prefill(graph=True) starts a fresh sequence; it takes no cache to continue")
            graphed = getattr(self, "_graphed_prefill", None)  # a plain attribute: not a module, never saved
            if graphed is None:
                from .graph_prefill import GraphedPrefill

                graphed = self._graphed_prefill = GraphedPrefill(self)
            if graphed.takes(input_ids):
                return graphed(input_ids, attention_mask)
        cache = cache if cache is not None else self.new_cache()
        logits = None
        for s in range(0, input_ids.shape[1], chunk_size):
            am = None if attention_mask is None else attention_mask[:, : s + chunk_size]
            out = self(input_ids=input_ids[:, s:s + chunk_size], attention_mask=am, past_key_values=cache,
                       use_cache=True, logits_to_keep=1)
            logits = out.logits[:, -1]
        return logits, cache
