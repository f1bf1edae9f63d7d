"""The shipped S-NIAH student on one S-NIAH-2 prompt of 4K tokens with the needle early, middle and late: the best
heads' share of the readout on the needle sentence at the last prompt token (lawcat.analysis.needle_share), and the
greedy answer. Output in needle_share_by_depth.txt.

    OMP_NUM_THREADS=2 python needle_share_by_depth.py
"""
from lawcat import LawcatForCausalLM
from lawcat.analysis.figures import student_dir
from lawcat.analysis.needle_share import share_by_layer
from lawcat.analysis.prompts import needle_token_span
from lawcat.data import make_samples

student = LawcatForCausalLM.from_pretrained(str(student_dir("niah-smollm2"))).eval()
tok = student.tokenizer
for depth in (10, 50, 90):
    for seed in (1, 2):
        s = make_samples("niah2", tok, 4096, 1, seed=seed, depth=depth)[0]
        ids = tok(s.prompt, return_tensors="pt")["input_ids"]
        needle = s.meta["needle"].strip()
        start = s.prompt.index(needle)
        span = needle_token_span(tok, s.prompt, (start, start + len(needle)))
        layers = share_by_layer(student, ids, span)
        best = sorted(((layer["best_head_share"], i) for i, layer in enumerate(layers)), reverse=True)[:3]
        out = student.generate(ids, max_new_tokens=10, do_sample=False)[0, ids.shape[1]:]
        print(depth, seed, "needle@", span.start, "T", ids.shape[1], "uniform %.4f" % (len(span) / ids.shape[1]),
              "top layers", [(round(b * 100, 2), i) for b, i in best], "ans", s.answer,
              "out", repr(tok.decode(out))[:30], flush=True)
