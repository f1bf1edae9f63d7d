"""torch.compile for the parts of a decoder layer that are the teacher's own: its two norms and its MLP.

In an eager prefill these run as chains of element-wise kernels: Llama's RMSNorm upcasts, squares, averages,
scales, casts back and multiplies (about seven passes over the hidden state), and the MLP's SiLU and product are
two more passes over a tensor four times as wide. By a count of bytes, that is ~2 GB per layer at 8K tokens on the
Llama-3.2-1B shape, about half of what the student's prefill spends beyond its floor (issue 21). Compiled, each
norm is one kernel and the SiLU product is fused. The student shares these modules with its teacher
(lawcat.models.modeling.LawcatDecoderLayer), so compiling them speeds up both alike, which keeps a comparison fair.

`nn.Module.compile` compiles in place: the parameters, their names and the state dict stay as they are, so a
compiled model saves, loads and trains as before. Shapes are dynamic, so prompt lengths do not each recompile;
a one-token step, another batch size, grad mode or dtype each add a compiled entry. From torch 2.5 dynamo treats
the modules' parameters as inputs (`inline_inbuilt_nn_modules`), so one entry serves every layer; before that each
layer adds its own, and compile_blocks raises dynamo's entry limit to fit them rather than let later layers run
eagerly unannounced.
"""
from __future__ import annotations

import torch
from torch import nn

_BLOCKS = ("input_layernorm", "post_attention_layernorm", "mlp")


def _block_modules(model: nn.Module) -> list[nn.Module]:
    """Each decoder layer's norms and MLP, then the final norm: the modules compile_blocks compiles."""
    base = getattr(model, "model", None)
    layers = getattr(base, "layers", None) or []
    modules = [getattr(layer, name, None) for layer in layers for name in _BLOCKS] + [getattr(base, "norm", None)]
    return [m for m in modules if m is not None]


def compile_blocks(model: nn.Module, **compile_kwargs) -> int:
    """Compile each decoder layer's norms and MLP, and the final norm, of a teacher or a student in place.

    compile_kwargs go to torch.compile (default dynamic=True). Modules already compiled are left as they are.
    Returns how many modules were compiled now."""
    layers = getattr(getattr(model, "model", None), "layers", None)
    if layers is None:
        raise ValueError(f"{type(model).__name__} has no model.layers: compile_blocks takes a Llama-style causal LM "
                         "(a teacher of a supported family, or its student)")
    compile_kwargs.setdefault("dynamic", True)
    dynamo = torch._dynamo.config
    if not getattr(dynamo, "inline_inbuilt_nn_modules", True):  # torch < 2.5: guards per layer instance
        dynamo.cache_size_limit = max(dynamo.cache_size_limit, 8 * (len(layers) + 1))
    count = 0
    for module in _block_modules(model):
        if getattr(module, "_compiled_call_impl", None) is None:
            module.compile(**compile_kwargs)
            count += 1
    return count


def compiled_blocks(model: nn.Module) -> int:
    """How many of a model's norm and MLP modules are compiled (compile_blocks)."""
    return sum(getattr(m, "_compiled_call_impl", None) is not None for m in _block_modules(model))
