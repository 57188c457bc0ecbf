"""Pin the quality improvement of the defaults over the authors' choices on a phantom (fast).

Each phantom here is one draw of ``make_phantom`` (seed 0), a fixed dataset like the ALS stacks:
the assertions hold for other planner seeds (a seed audit shifting every seed but the
phantom's: offsets 1-21, 101, 333, 2024, 5000), not for every draw. How the results vary with
the draw: docs/quality.md, "Other phantom draws"."""

import numpy as np

import curiss
from curiss.analysis import signal_error
from curiss.datasets import make_phantom


def test_defaults_beat_authors_choices_on_phantom():
    """Volume-sampled energies + images-first budget vs leverage draws + the authors' split, at
    ratio 0.1 on a noisy 3-material phantom, errors against the noise-free truth, 10 seeds: a
    lower median and fewer draws above 0.1. A seed audit measured six blocks of ten planner
    seeds (0-59) and phantom seeds 1-5: both hold in 11 of 11 (draws above 0.1: 2-8 against
    4-9). This test once asserted a median below 0.75 x the authors' (measured here 0.08 vs
    0.17), which three of those blocks miss (0.77-0.89 x)."""
    ph = make_phantom(n_energies=60, shape=(32, 32), n_materials=3, seed=0, noise=0.02)
    errs = {}
    for name, kw in (("default", {}), ("authors", {"energy_sampling": "leverage", "budget_rule": "authors"})):
        errs[name] = np.array([signal_error(curiss.replay(curiss.CURISSPlanner(
            ph.energies, ph.shape, sampling_ratio=0.1, dictionary=ph.spectra, seed=s, **kw),
            ph.cube).completed, ph.truth, k=3) for s in range(10)])
    d, a = errs["default"], errs["authors"]
    assert np.median(d) < np.median(a), errs
    assert np.sum(d > 0.1) < np.sum(a > 0.1), errs


def test_acuriss_prediction_rule_beats_the_variation_rule_on_phantom():
    """ACURISS from p0 = 0.0255 (cap 0.10) on the benchmark phantom (100 energies, 64 x 64, noise
    0.02), errors against the noise-free truth, 10 seeds. Measured (docs/quality.md): the
    noise-aware prediction rule (default) stops at ratio 0.070 median with signal error worst
    0.041 (0.090 with the dictionary images it was introduced with); the earlier
    completion/spectral-variation rule at 0.075 with worst 0.175 (one seed stopped early at
    0.051 on a spurious small spectral variation)."""
    ph = make_phantom(n_energies=100, shape=(64, 64), n_materials=3, seed=0, noise=0.02)
    out = {}
    for rule in ("prediction", "variation"):
        ratios, errs = [], []
        for s in range(10):
            p = curiss.ACURISSPlanner(ph.energies, ph.shape, sampling_ratio=0.10, initial_ratio=0.0255,
                                      dictionary=ph.spectra, seed=s, stop_rule=rule)
            acq = curiss.replay(p, ph.cube)
            ratios.append(acq.sampling_ratio)
            errs.append(signal_error(acq.completed, ph.truth, k=3))
            if rule == "prediction":
                assert p.stop_reason.startswith("prediction error"), p.stop_reason
        out[rule] = (float(np.median(ratios)), float(np.max(errs)), float(np.median(errs)))
    new, old = out["prediction"], out["variation"]
    assert new[1] < 0.75 * old[1], out  # worst case
    assert new[2] <= old[2] + 0.005, out  # median no worse
    assert new[0] <= old[0] + 1e-9, out  # at no larger a median ratio


def test_acuriss_stops_on_its_own_below_six_percent_on_a_128_row_phantom(acuriss_to_its_stop):
    """Issue 3's ACURISS goal on a phantom whose rows cost what they cost on the ALS stacks
    (100 energies, 128 x 128, noise 0.02; on the 64-row benchmark phantom the rule's minimum
    evidence, 3 images and 2 rows, already costs 0.0707 from its minimum p0): from p0 = 0.02,
    cap 0.10, default planner, 10 seeds, errors against the truth. Measured (docs/quality.md):
    ratio 0.055 / 0.065, signal error 0.038 / 0.040, ARI 0.975 / 0.971, spectra error
    0.006 / 0.010 (median / worst)."""
    ph = make_phantom(n_energies=100, shape=(128, 128), n_materials=3, seed=0, noise=0.02)
    ratio, sig, ari, spec = acuriss_to_its_stop(ph.energies, ph.cube, ph.truth, ph.spectra, range(10))
    assert np.median(ratio) <= 0.06 and ratio.max() < 0.10, ratio
    assert np.median(sig) <= 0.06 and sig.max() <= 0.10, sig
    assert np.median(ari) >= 0.95 and ari.min() >= 0.90, ari
    assert np.median(spec) <= 0.02, spec


def test_acuriss_min_rows_removes_the_tail_of_a_large_initial_step_on_phantom():
    """ACURISS from p0 = 0.04 (cap 0.08) on the benchmark phantom, 10 seeds, errors against the
    truth, with the refinement images drawn from the dictionary (as when min_rows was
    introduced; the residual images of the default do not show the tail). Measured
    (docs/quality.md): with min_rows=1 (earlier versions) one seed stops after image
    predictions alone with one spatial row, worst signal error 0.204; min_rows=2 gives worst
    0.083. Asserted: the three worst draws are better on average and no more draws exceed 0.1,
    which a seed audit found in 11 of 11 blocks of ten (planner seeds 0-59, phantom seeds 1-5;
    three worst 0.055-0.109 against 0.068-0.145). This test once asserted a worst draw below
    0.6 x min_rows=1's and below 0.12, true of 5 of those 11 blocks: the tail it removes does not
    show on every seed set, and other tails remain (phantom 3: 0.170 both ways)."""
    ph = make_phantom(n_energies=100, shape=(64, 64), n_materials=3, seed=0, noise=0.02)
    errs = {}
    for min_rows in (1, None):
        errs[min_rows] = []
        for s in range(10):
            p = curiss.ACURISSPlanner(ph.energies, ph.shape, sampling_ratio=0.08, initial_ratio=0.04,
                                      dictionary=ph.spectra, seed=s, min_rows=min_rows,
                                      energy_refinement="dictionary", tol_prediction=0.30)
            errs[min_rows].append(signal_error(curiss.replay(p, ph.cube).completed, ph.truth, k=3))
    new, old = np.array(errs[None]), np.array(errs[1])
    assert np.sort(new)[-3:].mean() < np.sort(old)[-3:].mean(), errs
    assert np.sum(new > 0.1) <= np.sum(old > 0.1), errs


def test_balanced_split_beats_one_row_above_five_percent_on_phantom():
    """CURISS at ratio 0.08 on the benchmark phantom, 10 seeds, errors against the truth.
    Measured (docs/quality.md): the balanced split (5 images + 2 rows) worst signal error 0.053,
    median 0.043; the images-first split (6 images + 1 row) 0.177, median 0.050. Asserted: no
    more draws above 0.1 and the median no worse (within 0.005), which a seed audit found in 11
    of 11 blocks of ten (planner seeds 0-59, phantom seeds 1-5; draws above 0.1: 0-2 against
    0-5). This test once asserted a worst draw below 0.5 x the images-first one's and a median no
    worse, both true of 6 of those 11 blocks (the first compares two outliers)."""
    ph = make_phantom(n_energies=100, shape=(64, 64), n_materials=3, seed=0, noise=0.02)
    errs = {}
    for rule in ("balanced", "images"):
        p0 = curiss.CURISSPlanner(ph.energies, ph.shape, sampling_ratio=0.08, budget_rule=rule)
        assert (p0.n_images, p0.n_rows) == ((5, 2) if rule == "balanced" else (6, 1))
        errs[rule] = [signal_error(curiss.replay(curiss.CURISSPlanner(
            ph.energies, ph.shape, sampling_ratio=0.08, dictionary=ph.spectra, seed=s,
            budget_rule=rule), ph.cube).completed, ph.truth, k=3) for s in range(10)]
    b, i = np.array(errs["balanced"]), np.array(errs["images"])
    assert np.sum(b > 0.1) <= np.sum(i > 0.1), errs
    assert np.median(b) <= np.median(i) + 0.005, errs
