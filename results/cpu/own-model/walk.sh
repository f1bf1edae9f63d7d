set -x
cd /tmp/walk
lawcat linearize --teacher my-teacher --out runs/mine-untrained
lawcat distill --recipe demo --teacher my-teacher --out runs/mine data.task=text data.source=chats.jsonl data.seq_len=256 data.n_train=64 data.n_val=8 stage1.epochs=1 stage2.epochs=1 stage2.grad_accum=2
lawcat generate runs/mine --prompt "My favourite colour is teal. What is 12 plus 30?" --max-new-tokens 20
lawcat eval runs/mine --task passkey --lengths 256 --n 3 --out evals/mine
lawcat eval my-teacher --task passkey --lengths 256 --n 3 --out evals/teacher
lawcat compare evals/teacher evals/mine --out evals/compare
tar czf mine.tar.gz -C runs mine && mkdir -p /tmp/walk/friend && tar xzf mine.tar.gz -C /tmp/walk/friend && ls /tmp/walk/friend/mine
cd /tmp/walk/friend && python3 -c "
from transformers import AutoModelForCausalLM, AutoTokenizer
m = AutoModelForCausalLM.from_pretrained('mine', trust_remote_code=True, teacher='/tmp/walk/my-teacher')
tok = AutoTokenizer.from_pretrained('mine')
ids = tok('My favourite colour is red. What is 2 plus 3?', return_tensors='pt')
print(type(m).__name__, tok.decode(m.generate(**ids, max_new_tokens=12, do_sample=False)[0][ids.input_ids.shape[1]:]))
"
