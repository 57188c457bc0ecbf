"""Research: how should CURISS split a ratio between energy images and spatial rows?

For each stack and ratio, CURISS (volume-sampled energies, the default) with the budget split
forced to: the authors' rule, images-first with 1, 2 or 3 rows (``rows1``..``rows3``), images-first
up to 6 or 8 images and the rest in rows (``cap6``, ``cap8``), and the default
(``balanced``: :func:`curiss.linalg.balanced_budget`). Prints median / worst over
seeds and the split used (``5i2r`` = 5 images, 2 rows). docs/quality.md ("The budget split
above 5 %") has the outcome.

Run from the repository root (about 4 minutes per ALS stack)::

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/quality_splits.py
    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/quality_splits.py --stacks phantom --ratios 0.06,0.08
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quality as Q  # noqa: E402  (the benchmarks folder)

from curiss.analysis import spectral_analysis  # noqa: E402
from curiss.linalg import budget  # noqa: E402
from curiss.planners import CURISSPlanner  # noqa: E402
from curiss.linalg import balanced_budget, images_first_budget  # noqa: E402

RULES = ("authors", "rows1", "rows2", "rows3", "cap6", "cap8", "balanced")


def split(rule: str, n_e: int, shape, ratio: float) -> tuple[int, int]:
    """(images, rows) of ``rule`` for this geometry and ratio."""
    if rule == "authors":
        return budget(n_e, shape, ratio)
    if rule == "balanced":
        return balanced_budget(n_e, shape, ratio)
    if rule.startswith("rows"):
        return images_first_budget(n_e, shape, ratio, n_rows=int(rule[4:]))
    if rule.startswith("cap"):  # images first up to the cap, the rest of the ratio in rows
        cap = int(rule[3:])
        s_e, s_r = images_first_budget(n_e, shape, ratio)
        if s_e <= cap:
            return s_e, s_r
        rows = int(np.floor((ratio * n_e * shape[0] - cap * shape[0]) / (n_e - cap) + 1e-9))
        return cap, max(1, rows)
    raise ValueError(f"unknown rule {rule!r}; choose from {RULES}")


def _planner(rule):
    class _Split(CURISSPlanner):
        def _budget(self, ratio):
            return split(rule, self.energies.size, self.shape, ratio)
    return _Split


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stacks", default="71214078,71214098,phantom")
    ap.add_argument("--ratios", default="0.05,0.06,0.08,0.10")
    ap.add_argument("--rules", default=",".join(RULES))
    ap.add_argument("--seeds", type=int, default=10)
    args = ap.parse_args(argv)
    for name, energies, cube, dictionary, truth in Q.stacks(args.stacks.split(",")):
        ref = cube if truth is None else truth
        full = spectral_analysis(ref, n_components=3, n_clusters=4, seed=0)
        print(f"\n## {name}: CURISS, {args.seeds} seeds, median / worst", flush=True)
        for ratio in (float(r) for r in args.ratios.split(",")):
            for rule in args.rules.split(","):
                try:
                    s_e, s_r = split(rule, energies.size, cube.shape[1:], ratio)
                except ValueError as exc:
                    print(f"{name} {ratio} {rule}: {exc}")
                    continue
                cls = _planner(rule)
                rows = [Q.measure(cls(energies, cube.shape[1:], sampling_ratio=ratio,
                                      dictionary=dictionary, seed=s), cube, ref, full)
                        for s in range(args.seeds)]
                print(f"{name} {ratio} " + Q.summary_line(f"{rule} {s_e}i{s_r}r", rows), flush=True)


if __name__ == "__main__":
    main()
