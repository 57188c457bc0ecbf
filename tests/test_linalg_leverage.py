"""Tests for curiss.linalg leverage scores and weighted sampling (Meier et al., arXiv:2602.03744)."""

import numpy as np
import pytest

from curiss.linalg import leverage_scores, weighted_sample

SEEDS = [0, 1, 2]


@pytest.mark.parametrize("seed", SEEDS)
def test_leverage_sums_to_rank_and_in_unit_interval(seed):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((30, 3)) @ rng.standard_normal((3, 8))  # rank 3
    scores = leverage_scores(A)
    assert scores.shape == (30,)
    assert scores.sum() == pytest.approx(3.0, abs=1e-10)
    assert np.all(scores >= -1e-14) and np.all(scores <= 1 + 1e-12)
    capped = leverage_scores(A, rank=2)
    assert capped.sum() == pytest.approx(2.0, abs=1e-10)


def test_leverage_known_values():
    # Columns span e_0 and (e_1 + e_2)/sqrt(2): scores 1, 1/2, 1/2, 0.
    A = np.array([[3.0, 0.0], [0.0, 1.0], [0.0, 1.0], [0.0, 0.0]])
    np.testing.assert_allclose(leverage_scores(A), [1.0, 0.5, 0.5, 0.0], atol=1e-12)
    # Rank-1 truncation keeps the dominant direction e_0 only.
    np.testing.assert_allclose(leverage_scores(A, rank=1), [1.0, 0.0, 0.0, 0.0], atol=1e-12)


def test_leverage_does_not_mutate_and_rejects_bad_input():
    A = np.arange(12.0).reshape(4, 3)
    before = A.copy()
    leverage_scores(A)
    np.testing.assert_array_equal(A, before)
    bad = A.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or Inf"):
        leverage_scores(bad)
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="NaN or Inf"):
        leverage_scores(bad)
    with pytest.raises(ValueError, match="2-D"):
        leverage_scores(np.ones(3))
    with pytest.raises(ValueError, match="rank must be <= 3"):
        leverage_scores(A, rank=4)


@pytest.mark.parametrize("seed", SEEDS)
def test_sample_distinct_respects_exclusions(seed):
    w = np.random.default_rng(seed).random(20)
    exclude = [0, 3, 5, 5]
    for s in range(50):
        idx = weighted_sample(w, 8, exclude=exclude, rng=seed * 1000 + s)
        assert idx.shape == (8,) and np.issubdtype(idx.dtype, np.integer)
        assert len(set(idx.tolist())) == 8
        assert not set(idx.tolist()) & {0, 3, 5}
        assert idx.min() >= 0 and idx.max() < 20


def test_sample_reproducible_from_seed():
    w = np.linspace(1, 2, 15)
    a = weighted_sample(w, 5, rng=42)
    b = weighted_sample(w, 5, rng=np.random.default_rng(42))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("seed", SEEDS)
def test_sample_frequencies_follow_weights(seed):
    w = np.array([1.0, 2.0, 3.0, 4.0, 0.0, 10.0])
    rng = np.random.default_rng(seed)
    n_draws = 6000
    # first draw of a k=3 sample is distributed proportionally to the weights
    firsts = np.array([weighted_sample(w, 3, rng=rng)[0] for _ in range(n_draws)])
    counts = np.bincount(firsts, minlength=6)
    assert counts[4] == 0  # zero weight is never drawn first
    expected = n_draws * w / w.sum()
    pos = w > 0
    chi2 = np.sum((counts[pos] - expected[pos]) ** 2 / expected[pos])
    assert chi2 < 20.5  # 4 dof, p ~ 4e-4
    # and with an exclusion the others are renormalised
    excl = np.array([weighted_sample(w, 1, exclude=[5], rng=rng)[0] for _ in range(n_draws)])
    counts = np.bincount(excl, minlength=6)
    w2 = w.copy()
    w2[5] = 0
    expected = n_draws * w2 / w2.sum()
    pos = w2 > 0
    assert counts[5] == 0
    assert np.sum((counts[pos] - expected[pos]) ** 2 / expected[pos]) < 17.7  # 3 dof


@pytest.mark.parametrize("seed", SEEDS)
def test_sample_fills_uniformly_when_few_positive(seed):
    w = np.zeros(10)
    w[[2, 7]] = 1.0
    rng = np.random.default_rng(seed)
    fills = []
    for _ in range(400):
        idx = weighted_sample(w, 4, exclude=[0], rng=rng)
        assert set(idx[:2].tolist()) == {2, 7}  # positive weights come first
        assert 0 not in idx.tolist() and len(set(idx.tolist())) == 4
        fills.extend(idx[2:].tolist())
    counts = np.bincount(fills, minlength=10)[[1, 3, 4, 5, 6, 8, 9]]
    assert counts.min() > 0.5 * counts.mean()  # uniform among the 7 remaining indices


def test_sample_uniform_with_none_weights():
    idx = weighted_sample(None, 10, n=10, rng=0)
    assert sorted(idx.tolist()) == list(range(10))
    with pytest.raises(ValueError, match="requires the number of candidates"):
        weighted_sample(None, 3)


def test_sample_errors():
    w = np.ones(5)
    with pytest.raises(ValueError, match="only 3 of 5 are not excluded"):
        weighted_sample(w, 4, exclude=[0, 1])
    with pytest.raises(ValueError, match=">= 0"):
        weighted_sample(np.array([1.0, -1.0]), 1)
    with pytest.raises(ValueError, match="finite"):
        weighted_sample(np.array([1.0, np.nan]), 1)
    with pytest.raises(ValueError, match="exclude must be indices"):
        weighted_sample(w, 1, exclude=[7])
    with pytest.raises(TypeError, match="rng"):
        weighted_sample(w, 1, rng="seed")
    before = w.copy()
    weighted_sample(w, 2, exclude=[1], rng=0)
    np.testing.assert_array_equal(w, before)


@pytest.mark.parametrize("seed", SEEDS)
def test_weights_that_underflow_against_the_total_count_as_zero(seed):
    """A weight below ~1e-308 of the total underflows to probability 0; it used to count as
    positive and numpy's choice refused ("Fewer non-zero entries in p than size")."""
    got = weighted_sample(np.array([1e10, 1e-315, 0.0]), 2, rng=seed)
    assert got[0] == 0 and sorted(got.tolist()) in ([0, 1], [0, 2])
    assert sorted(weighted_sample(np.array([1e10, 1e-315, 0.0]), 3, rng=seed).tolist()) == [0, 1, 2]


def test_leverage_scores_refuse_an_rtol_that_keeps_nothing():
    """rtol=1 gave all-zero scores for a full-rank A (weighted_sample then fell back to uniform)."""
    A = np.random.default_rng(0).random((6, 3))
    with pytest.raises(ValueError, match=r"rtol must be in \[0, 1\)"):
        leverage_scores(A, rtol=1.0)
    assert leverage_scores(A, rtol=0.5).sum() >= 1 - 1e-12
