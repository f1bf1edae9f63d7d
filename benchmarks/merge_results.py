"""Merge results files of one model and task (an evaluation split over several GPU calls) into one folder.

    python benchmarks/merge_results.py results/teacher/niah1 /tmp/niah1@32k --out results/teacher/niah1

Records of a length present in several inputs are taken from the last input that has it. The merged run keeps
the first input's run info, with the lengths of all inputs and a note naming the sources; results.md and the
charts are written anew.
"""
import argparse
from dataclasses import replace

from lawcat.eval.report import write_report
from lawcat.eval.results import read_results, write_results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("inputs", nargs="+")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    runs = [read_results(p) for p in a.inputs]
    keys = {(r.run.model, r.run.task) for r in runs}
    if len(keys) != 1:
        raise SystemExit(f"merge_results: inputs mix models/tasks {sorted(keys)}; merge one model and task at a time")
    by_length = {}
    for run in runs:
        for length in sorted({rec.length for rec in run.records}):
            by_length[length] = [rec for rec in run.records if rec.length == length]
    records = [rec for length in sorted(by_length) for rec in by_length[length]]
    settings = dict(runs[0].run.settings)
    settings["lengths"] = sorted(by_length)
    settings["merged_from"] = [{"path": str(run.path), "lengths": sorted({r.length for r in run.records}),
                                "date": getattr(run.run, "date", None),
                                "max_batch_tokens": run.run.settings.get("max_batch_tokens")} for run in runs]
    info = replace(runs[0].run, settings=settings)
    write_results(a.out, records, info)
    write_report(a.out, records)
    print(f"{len(records)} records, lengths {sorted(by_length)} -> {a.out}")


if __name__ == "__main__":
    main()
