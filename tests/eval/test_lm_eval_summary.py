"""Reducing lm-eval's results (lawcat/eval/lm_eval_summary.py): the paper's metric is picked per task, the average
is taken over the fraction-valued metrics, and the markdown table shows it. Pure dictionaries: no model, no
datasets."""
import pytest

pytest.importorskip("lm_eval")

from lawcat.eval import lm_eval_adapter as A


def test_summary_uses_paper_metric_per_task():
    fake = {"results": {t: {"alias": t, "acc,none": 0.5, "acc_stderr,none": 0.1, "acc_norm,none": 0.75,
                            "acc_norm_stderr,none": 0.1} for t in A.PAPER_TASKS},
            "n-samples": {t: {"original": 10, "effective": 10} for t in A.PAPER_TASKS}}
    s = A.summarize(fake, list(A.PAPER_TASKS), {})
    assert {t: r["metric"] for t, r in s["tasks"].items()} == A.PAPER_METRICS
    assert s["tasks"]["hellaswag"]["value"] == 0.75 and s["tasks"]["piqa"]["value"] == 0.5
    assert s["average"] == pytest.approx((0.5 * 3 + 0.75 * 2) / 5)
    assert "| **average** | | 60.00 | | 5/5 tasks |" in A.format_table(s)
