"""How LawcatForCausalLM meets transformers' generate(): the requests a recurrent state can serve, the cache it
decodes from, and the graphed or compiled one-token step.

A mixin, listed before GenerationMixin in LawcatForCausalLM's bases so that its overrides come first.
"""
from __future__ import annotations

import copy

from transformers.generation.configuration_utils import GenerationMode

from .cache import CACHE_FIELD
from .graph_decode import GraphedSteps, is_decode_step


class GenerationHooks:
    def generate(self, inputs=None, generation_config=None, *args, **kwargs):
        """transformers' generate(), once the request is one a recurrent state can serve (`_unsupported_reason`)."""
        config = copy.deepcopy(generation_config if generation_config is not None else self.generation_config)
        for key, value in kwargs.items():  # the per-call overrides, as generate() applies them
            if hasattr(config, key):
                setattr(config, key, value)
        reason = _unsupported_reason(config, kwargs.get("assistant_model"), kwargs.get("custom_generate"))
        if reason:
            raise ValueError(reason)
        return super().generate(inputs, generation_config, *args, **kwargs)

    def _prepare_cache_for_generation(self, generation_config, model_kwargs, *args, **kwargs):
        reason = _unsupported_cache_reason(generation_config)  # the final config may take it from the model's
        if reason:
            raise ValueError(reason)
        given = next((model_kwargs[k] for k in ("cache", "past_key_values") if model_kwargs.get(k) is not None), None)
        if given is not None:
            given._is_user_defined = True  # generate() then treats it as the caller's, which outlives the call
        elif generation_config.use_cache is not False:
            model_kwargs[CACHE_FIELD] = self.new_cache()

    def get_compiled_call(self, compile_config):
        """The forward generate() calls where it compiles (CUDA, XPU, MPS; anywhere compile_config._compile_all_devices
        allows). Prefills (a fresh cache, chunks of any length) run as they are; one-token steps over the cache:

        - without a compile_config (generate()'s default), go to a StaticDecoder (graph_decode.GraphedSteps): on
          CUDA each step is a replay of one captured CUDA graph, fla's kernels included, which torch.compile cannot
          see into (lawcat.ops.fla_backend hides its one-token kernel from it, breaking the graph at every layer);
        - with one, go to transformers' torch.compile of the forward."""
        if compile_config is None:
            return GraphedSteps(self)
        compiled = super().get_compiled_call(compile_config)

        def call(**inputs):
            return compiled(**inputs) if is_decode_step(inputs) else self(**inputs)

        return call

    def prepare_inputs_for_generation(self, input_ids, *args, attention_mask=None, **kwargs):
        """transformers' inputs, with only the last T columns of the 2-D mask (all the forward reads). A decode step
        then always has inputs of one shape (a mask growing by a column per token would make a compiled step
        recompile or re-record its CUDA graph every token), and transformers does not turn the mask into the 4-D one
        it builds for a compileable KV cache."""
        inputs = super().prepare_inputs_for_generation(input_ids, *args, **kwargs)
        if attention_mask is not None:
            tokens = inputs["input_ids"] if inputs.get("input_ids") is not None else inputs["inputs_embeds"]
            mask = attention_mask[:, -tokens.shape[1]:]
            inputs["attention_mask"] = mask.to(tokens.device).contiguous()
        return inputs


# What generate() cannot do with a recurrent state, by generation mode: one sentence why, and what to use instead.
_USE_INSTEAD = "use greedy decoding, sampling or beam search"
_UNSUPPORTED_MODES = {
    GenerationMode.ASSISTED_GENERATION:
        "assisted and prompt-lookup decoding are not supported: they roll the cache back past the draft tokens the "
        "model rejects, and a recurrent state keeps no earlier states to roll back to; generate without "
        f"assistant_model / prompt_lookup_num_tokens ({_USE_INSTEAD})",
    GenerationMode.CONTRASTIVE_SEARCH:
        "contrastive search is not supported: it compares each candidate with the hidden states of all earlier "
        f"tokens, which a recurrent model does not keep; {_USE_INSTEAD}",
    GenerationMode.DOLA_GENERATION:
        "DoLa decoding is not supported: it contrasts the logits of early layers, which LawcatForCausalLM does not "
        f"return; {_USE_INSTEAD}",
}


def _unsupported_cache_reason(config) -> str | None:
    """Why config's cache_implementation cannot apply, or None. 'static' is what the recurrent cache already is:
    fixed-size, allocated once and updated in place, compileable."""
    value = config.cache_implementation
    if value in (None, "static"):
        return None
    return (f"cache_implementation={value!r} is not supported: LawcatForCausalLM decodes from its own recurrent "
            "cache, fixed in size and updated in place (what 'static' asks for); leave cache_implementation unset")


def _unsupported_reason(config, assistant_model=None, custom_generate=None) -> str | None:
    """Why generate() cannot serve this configuration with a recurrent state, or None."""
    if config.is_assistant:
        return ("a lawcat student cannot be another model's assistant: assisted decoding rolls the draft model's "
                "cache back past rejected tokens, and a recurrent state keeps no earlier states; use a "
                "softmax-attention draft model")
    if custom_generate is None:  # a custom decoding loop is the caller's own
        reason = _UNSUPPORTED_MODES.get(config.get_generation_mode(assistant_model))
        if reason:
            return reason
    if config.output_attentions:
        return ("output_attentions is not supported: LAWCAT's linear attention never forms attention weights; "
                "generate without it")
    if config.output_hidden_states:
        return "output_hidden_states is not supported: LawcatForCausalLM does not return hidden states; generate " \
               "without it"
    return _unsupported_cache_reason(config)
