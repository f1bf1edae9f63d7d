"""lawcat.analysis.prompts: the needle's token span is read from the ids the model sees, BOS included."""
from lawcat.analysis.prompts import needle_prompt, needle_token_span
from tests.conftest import make_passkey_tokenizer


def test_the_span_covers_the_needle_in_the_models_ids():
    tok = make_passkey_tokenizer()                          # prepends <s>
    p = needle_prompt(tok, 300, depth=40.0, seed=1)
    assert p.ids[0, 0].item() == tok.bos_token_id
    text = tok.decode(p.ids[0, p.needle.start:p.needle.stop].tolist())
    assert "pass key is" in text and text.strip().endswith(".")
    before = tok.decode(p.ids[0, :p.needle.start].tolist(), skip_special_tokens=True)
    assert "pass key" not in before


def test_slow_path_counts_the_prefix_after_leading_specials():
    tok = make_passkey_tokenizer()
    prompt = "There is important info. The pass key is 123. Remember it."
    span = (prompt.index("The"), prompt.index(" Remember"))

    class NoOffsets:                                        # a tokenizer that cannot give offsets
        def __call__(self, text, return_offsets_mapping=False, **kw):
            if return_offsets_mapping:
                raise NotImplementedError
            return tok(text, **kw)

    assert needle_token_span(NoOffsets(), prompt, span) == needle_token_span(tok, prompt, span)
