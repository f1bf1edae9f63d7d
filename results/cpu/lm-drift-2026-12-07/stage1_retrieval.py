"""The shipped S-NIAH student with its LoRA on and off (off: the student stage 1 left) on 10 RULER-format prompts of
S-NIAH-1 and S-NIAH-2 at 1K tokens, greedy. Output in stage1_retrieval.txt.

    OMP_NUM_THREADS=2 python stage1_retrieval.py
"""
import torch
from lawcat import LawcatForCausalLM, load_teacher
from lawcat.analysis.figures import student_dir
from lawcat.data import make_samples
from lawcat.models.lora import set_lora_enabled
from lawcat.eval.scoring import score_sample
torch.set_grad_enabled(False)
teacher, tok = load_teacher('default')
st = LawcatForCausalLM.from_pretrained(str(student_dir('niah-smollm2')), teacher=teacher).eval()
for task in ('niah1','niah2'):
    samples = make_samples(task, tok, 1024, 10, seed=0)
    for on in (True, False):
        set_lora_enabled(st, on)
        hits=0; outs=[]
        for s in samples:
            ids = tok(s.prompt, return_tensors='pt')['input_ids']
            out = tok.decode(st.generate(ids, max_new_tokens=16, do_sample=False)[0, ids.shape[1]:])
            hits += score_sample(s, out)
            outs.append(out.strip()[:20])
        print(task, 'LoRA on' if on else 'LoRA off (stage 1)', hits, '/ 10', outs[:3], flush=True)
