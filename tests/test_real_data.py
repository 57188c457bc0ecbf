"""Real measured data (ALS STXM Fe L2,3 stack 71214078); skips cleanly without ../shared/data."""

from pathlib import Path

import numpy as np
import pytest

import curiss
from curiss.analysis import signal_error
from curiss.io import load_stack

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "als_stxm_fe_L23_breier2012"
STACK = DATA / "71214078_stack.npz"

pytestmark = pytest.mark.skipif(not STACK.exists(), reason=f"shared data not present at {STACK}")


@pytest.fixture(scope="module")
def stack():
    return load_stack(STACK)


@pytest.fixture(scope="module")
def errors(stack):
    """Signal error (k = 3) and ARI of CURISS at ratio 0.05 over 10 seeds: defaults vs the authors'."""
    from sklearn.metrics import adjusted_rand_score

    full = curiss.spectral_analysis(stack.cube, n_components=3, n_clusters=4, seed=0)
    out = {"default": [], "authors": []}
    for seed in range(10):
        for name, kw in (("default", {}), ("authors", {"energy_sampling": "leverage", "budget_rule": "authors"})):
            p = curiss.CURISSPlanner(stack.energies, stack.cube.shape[1:], sampling_ratio=0.05,
                                     dictionary=stack.dictionary, seed=seed, **kw)
            done = curiss.replay(p, stack.cube).completed
            ana = curiss.spectral_analysis(done, n_components=3, n_clusters=4, seed=0)
            out[name].append((signal_error(done, stack.cube, k=3),
                              adjusted_rand_score(full.labels.ravel(), ana.labels.ravel())))
    return {k: np.array(v) for k, v in out.items()}


def test_defaults_cut_the_worst_case_on_als_stack(errors):
    """Issue 3: the improved defaults (volume-sampled energies, images-first budget) give fewer
    bad draws (signal error above 0.30, or ARI below 0.80) than the authors' choices, without
    trading the median away. Over seeds 0-59 (a seed audit, docs/quality.md): 8 bad draws
    against 27; in each block of ten 0-4 against 3-6. This test once asserted that no seed of
    0-9 is bad, true of two of the six blocks only (the worst default draw of 0-59: signal
    0.49, ARI 0.33)."""
    d, a = errors["default"], errors["authors"]
    bad = {k: int(np.sum(v[:, 0] > 0.30) + np.sum(v[:, 1] < 0.80)) for k, v in errors.items()}
    assert bad["default"] < bad["authors"], (bad, d, a)
    assert np.median(d[:, 0]) <= np.median(a[:, 0]) + 0.02  # the median is not traded away


def test_curiss_beats_uniform_sampling_on_als_stack(stack):
    """CURISS at ratio 0.06 with the Fe(III)/Fe(II) references + a constant as dictionary: median
    signal error (k = 3) over 10 seeds below 0.30 and below uniform energies + uniform rows."""
    assert stack.dictionary.shape == (stack.energies.size, 3)
    errs = {"curiss": [], "uniform": []}
    for seed in range(10):
        p = curiss.CURISSPlanner(stack.energies, stack.cube.shape[1:], sampling_ratio=0.06,
                                 dictionary=stack.dictionary, seed=seed)
        errs["curiss"].append(signal_error(curiss.replay(p, stack.cube).completed, stack.cube, k=3))
        u = curiss.CURISSPlanner(stack.energies, stack.cube.shape[1:], sampling_ratio=0.06,
                                 dictionary=None, row_sampling="uniform", seed=seed)
        errs["uniform"].append(signal_error(curiss.replay(u, stack.cube).completed, stack.cube, k=3))
    med = {k: float(np.median(v)) for k, v in errs.items()}
    assert med["curiss"] < 0.30, med
    assert med["curiss"] < med["uniform"], med


def test_acuriss_stops_on_its_own_with_the_quality_goals_on_als_stack(stack, acuriss_to_its_stop):
    """Issue 3, ACURISS from p0 = 0.02 (cap 0.10), the default planner (noise-aware stop rule,
    one pass, residual refinement images, pivoted refinement rows at tol 0.35, row coverage),
    20 seeds (0-19). Measured over seeds 0-399 (benchmarks/quality_spectra.py
    --acquisitions-only --per-seed --blocks 20 --stacks 71214078 --seeds 400 --cap 0.10
    --acquisitions ""): every run stops on its own; medians ratio 0.056, signal error 0.149,
    ARI 0.931, spectra error 0.045; worst runs 0.072, 0.244, 0.883, 0.102.

    Asserted with bounds that every one of the 20 blocks of 20 seeds meets, so that the test
    holds for other seeds: the issue's signal and ARI goals (block medians, from its per-seed
    lines, 0.146-0.152 and 0.924-0.936; a seed audit that also moved the analysis's k-means seed saw 0.903), a
    worst ARI of 0.85 and a worst spectra error of 0.12. The ratio and spectra medians sit on
    their goals (0.06, 0.05): 19 and 18 of the 20 blocks meet them (a block's ratio median is
    0.064 when 11 of its 20 runs stop one refinement later), so they are asserted with one
    refinement step (0.064, asserted < 0.065) and 0.01 of margin; their pooled medians are in
    docs/quality.md.
    This test asserted those two goals on seeds 0-19 and a worst ARI of 0.88, signal error 0.20
    and spectra error 0.10, which 5 of the 20 blocks fail. What it still excludes: the earlier
    variation rule (worst signal error 0.585, worst ARI 0.714 on seeds 0-9) and dictionary
    refinement images at tol 0.30 (worst ARI 0.817 on seeds 0-9)."""
    ratio, sig, ari, spec = acuriss_to_its_stop(stack.energies, stack.cube, stack.cube,
                                                stack.dictionary, range(20))
    assert np.median(ratio) < 0.065 and ratio.max() <= 0.08, ratio
    assert np.median(sig) <= 0.17 and sig.max() <= 0.30, sig
    assert np.median(ari) >= 0.90 and ari.min() >= 0.85, ari
    assert np.median(spec) <= 0.06 and spec.max() <= 0.12, spec
