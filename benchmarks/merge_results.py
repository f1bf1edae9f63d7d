"""Merge results files of one model and task (an evaluation split over several GPU calls) into one folder.

    python benchmarks/merge_results.py results/teacher/niah1 /tmp/niah1@32k --out results/teacher/niah1

A length present in several inputs is taken from the last input that has it (lawcat.eval.results.merge_runs);
results.json, results.md and the charts are written anew.
"""
import argparse

from lawcat.eval.report import write_report
from lawcat.eval.results import merge_runs, read_results, write_results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("inputs", nargs="+")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    records, info = merge_runs([read_results(p) for p in a.inputs])
    write_results(a.out, records, info)
    write_report(a.out, records)
    print(f"{len(records)} records, lengths {info.settings['lengths']} -> {a.out}")


if __name__ == "__main__":
    main()
