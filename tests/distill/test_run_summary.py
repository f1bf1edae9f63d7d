"""A resumed run's summary keeps what earlier calls measured for a stage that had nothing left to do."""
import json

from lawcat.distill.run import _keep_earlier_call


def test_idle_stage_keeps_the_earlier_calls_graph_counts(tmp_path):
    (tmp_path / "summary.json").write_text(json.dumps(
        {"stage1": {"cuda_graph": {"replays": 2500}, "peak_memory_gib": 0.5}}))
    summary = {"stage1": {"steps": 2500, "cuda_graph": {"replays": 0}}}
    _keep_earlier_call(summary, "stage1", tmp_path, idle=True)
    assert summary["stage1"]["cuda_graph"] == {"replays": 2500} and summary["stage1"]["peak_memory_gib"] == 0.5
    fresh = {"stage1": {"steps": 2500, "cuda_graph": {"replays": 7}}}
    _keep_earlier_call(fresh, "stage1", tmp_path, idle=False)   # it trained in this call: its own counts stand
    assert fresh["stage1"]["cuda_graph"] == {"replays": 7}
