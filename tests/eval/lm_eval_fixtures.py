"""Shared by the lm-eval tests (test_lm_eval_model, test_lm_eval_adapter, test_lm_eval_task_loading,
tests/test_cli_lm_eval, tests/test_lm_eval): an in-memory tokenizer, a tiny random Llama and its lawcat student,
an autouse fixture that keeps every test away from the user's HF caches, and references computed independently of
lm-eval (log-likelihood from one forward, greedy text by full recomputation). Not a conftest: a test module imports
the fixtures it uses by name (the autouse one included), so other eval tests are unaffected. Needs lm_eval: import
it after `pytest.importorskip("lm_eval")`."""
import json

import pytest
import torch
from lm_eval.api.instance import Instance
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from lawcat.eval import lm_eval_adapter as A


def _corpus():
    rows = [json.loads(line) for line in (A.LOCAL_TASKS_DIR / "lawcat_qa.jsonl").read_text().splitlines()]
    return [f"Question: {r['question']}\nAnswer: {r['answer']}. " + " ".join(r["choices"]) for r in rows] + [
        "The quick brown fox jumps over the lazy dog. Paris is the capital of France. To open a jar twist the lid."]


@pytest.fixture(scope="module")
def tok():
    """A 400-token SentencePiece-style BPE trained in memory: every token decodes to readable text, so
    random generations can be matched against stop strings."""
    t = Tokenizer(models.BPE(unk_token="<unk>"))
    t.pre_tokenizer = pre_tokenizers.Metaspace()
    t.decoder = decoders.Metaspace()
    t.train_from_iterator(_corpus(), trainers.BpeTrainer(vocab_size=400, special_tokens=["<unk>", "<s>", "</s>"],
                                                         show_progress=False))
    return PreTrainedTokenizerFast(tokenizer_object=t, bos_token="<s>", eos_token="</s>", unk_token="<unk>")


@pytest.fixture(scope="module")
def llama(tok):
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                      tie_word_embeddings=False)  # untied: generations depend on the whole context
    return LlamaForCausalLM(cfg).eval()


@pytest.fixture(scope="module")
def student(llama):
    lawcat = pytest.importorskip("lawcat")
    return lawcat.linearize(llama, lawcat.LawcatConfig(gate_rank=4)).eval()


@pytest.fixture(autouse=True)
def _empty_hf_caches(tmp_path_factory, monkeypatch):
    """No test may find (or write) a dataset in the user's caches."""
    import datasets
    import huggingface_hub

    root = tmp_path_factory.mktemp("hfcache")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(root / "datasets"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(root / "hub"))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")  # run_lm_eval's default follows it: nothing is fetched


# ---- independent references --------------------------------------------------------------------------------------

def ref_loglik(model, tok, context, continuation):
    """sum_t log p(cont_t | context, cont_<t) from one forward of the model; empty context -> BOS prefix."""
    ctx = tok.encode(context) if context else [tok.bos_token_id]
    cont = tok.encode(continuation)
    if context:
        assert tok.encode(context + continuation) == ctx + cont, "pick pairs that tokenize at the boundary"
    ids = torch.tensor([ctx + cont])
    with torch.no_grad():
        logp = torch.log_softmax(model(ids, use_cache=False).logits.double(), -1)[0]
    pos = torch.arange(len(ctx) - 1, len(ctx) + len(cont) - 1)
    picked = logp[pos, torch.tensor(cont)]
    greedy = bool((logp[pos].argmax(-1) == torch.tensor(cont)).all())
    return float(picked.sum()), greedy


def ref_greedy_text(model, tok, prompt, n):
    """Greedy decoding by full recomputation (no cache), stopped at EOS."""
    ids = tok.encode(prompt)
    new = []
    with torch.no_grad():
        for _ in range(n):
            nxt = int(model(torch.tensor([ids + new]), use_cache=False).logits[0, -1].argmax())
            if nxt == tok.eos_token_id:
                break
            new.append(nxt)
    return tok.decode(new, skip_special_tokens=True)


PAIRS = [("Question: What color is the sky", " blue"),
         ("Paris is the", " capital of France"),
         ("The quick brown", " fox jumps over the lazy dog"),
         ("", "How many legs does a dog have?")]


def ll_requests(pairs):
    return [Instance("loglikelihood", {}, p, i) for i, p in enumerate(pairs)]


def gen_requests(prompts, **kw):
    return [Instance("generate_until", {}, (p, dict(kw)), i) for i, p in enumerate(prompts)]
