import statistics, time, torch
from lawcat import LawcatForCausalLM
import lawcat.layers.attention as A
import lawcat.ops.gla_reference as R
new_h, new_r = A.hedgehog, R.gla_recurrent
def old_h(x, weight):
    proj = torch.einsum("bthd,hdf->bthf", x.float(), weight.float())
    return torch.cat([proj.softmax(-1), (-proj).softmax(-1)], dim=-1).to(x.dtype)
def old_r(q, k, v_aug, g, scale, initial_state=None):
    B, T, H, K = q.shape
    work = torch.promote_types(q.dtype, torch.float32)
    S = R._initial(initial_state, B, H, K, v_aug.shape[-1], q.device).to(work)
    q, k, v_aug, g = (x.to(work) for x in (q, k, v_aug, g))
    outs = []
    for t in range(T):
        S = S * g[:, t].exp().unsqueeze(-1) + k[:, t].unsqueeze(-1) * v_aug[:, t].unsqueeze(-2)
        outs.append(torch.einsum("bhk,bhkv->bhv", q[:, t] * scale, S))
    return torch.stack(outs, dim=1), S.float()
torch.manual_seed(0)
s = LawcatForCausalLM.from_pretrained("passkey-smollm2").eval()
ids = torch.randint(0, s.config.vocab_size, (1, 1024))
tok = torch.randint(0, 1000, (1, 1))
with torch.no_grad():
    _, cache = s.prefill(ids)
    snap = cache.snapshot()
    outs = {}
    for name, (h, r) in {"new": (new_h, new_r), "old": (old_h, old_r)}.items():
        A.hedgehog, R.gla_recurrent = h, r
        cache.restore(snap)
        outs[name] = torch.cat([s(input_ids=tok, past_key_values=cache, use_cache=True).logits for _ in range(3)])
    print("max logit diff new vs old", (outs["new"] - outs["old"]).abs().max().item())
    times = {"new": [], "old": []}
    for _ in range(12):
        for name, (h, r) in {"new": (new_h, new_r), "old": (old_h, old_r)}.items():
            A.hedgehog, R.gla_recurrent = h, r
            for _ in range(6):
                t = time.perf_counter(); s(input_ids=tok, past_key_values=cache, use_cache=True)
                times[name].append((time.perf_counter() - t) * 1e3)
for n, v in times.items():
    print(n, f"median {statistics.median(v):.1f} ms (p10 {statistics.quantiles(v, n=10)[0]:.1f}, p90 {statistics.quantiles(v, n=10)[-1]:.1f}), n={len(v)}")
print("speed-up", statistics.median(times["old"]) / statistics.median(times["new"]))
