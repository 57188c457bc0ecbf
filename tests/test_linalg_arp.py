"""Tests for Adaptive Randomized Pivoting (Cortinovis & Kressner 2024)."""

import itertools

import numpy as np
import pytest

from curiss.linalg import arp


def orthonormal(n, c, seed):
    return np.linalg.qr(np.random.default_rng(seed).standard_normal((n, c)))[0]


def projection_error(A, J):
    """||A - A A_J^+ A_J||_F^2 (projection of the rows of A onto the row space of A[J])."""
    Q = np.linalg.qr(A[J].T)[0]
    return np.linalg.norm(A - (A @ Q) @ Q.T) ** 2


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_arp_distinct_reproducible_in_range(seed):
    V = orthonormal(30, 6, seed)
    a = arp(V, rng=seed)
    b = arp(V, rng=np.random.default_rng(seed))
    assert a.shape == (6,) and np.issubdtype(a.dtype, np.integer)
    np.testing.assert_array_equal(a, b)
    assert len(set(a.tolist())) == 6 and a.min() >= 0 and a.max() < 30
    assert arp(V, 4, rng=seed).shape == (4,)
    V_before = V.copy()
    arp(V, rng=seed)
    np.testing.assert_array_equal(V, V_before)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_arp_preselected_first_never_repeated(seed):
    V = orthonormal(25, 5, seed)
    pre = [7, 3]
    for s in range(30):
        rows = arp(V, 5, preselected=pre, rng=seed * 100 + s)
        assert rows[:2].tolist() == pre
        assert len(set(rows.tolist())) == 5
    assert arp(V, 2, preselected=pre, rng=seed).tolist() == pre


def test_arp_matches_volume_sampling_distribution():
    # ARP on orthonormal V (n, k) draws the set S with probability det(V_S)^2 (projection DPP).
    V = orthonormal(6, 2, 11)
    rng = np.random.default_rng(5)
    subsets = list(itertools.combinations(range(6), 2))
    probs = np.array([np.linalg.det(V[list(S)]) ** 2 for S in subsets])
    assert probs.sum() == pytest.approx(1.0)
    n_draws = 6000
    counts = dict.fromkeys(subsets, 0)
    for _ in range(n_draws):
        counts[tuple(sorted(arp(V, rng=rng).tolist()))] += 1
    obs = np.array([counts[S] for S in subsets])
    exp = n_draws * probs
    keep = exp > 5
    chi2 = np.sum((obs[keep] - exp[keep]) ** 2 / exp[keep])
    assert chi2 < 40.0  # <= 14 dof; p ~ 2e-4
    assert obs[~keep].sum() <= max(30, 3 * exp[~keep].sum())


def test_arp_conditional_distribution_given_preselected():
    V = orthonormal(7, 2, 4)
    rng = np.random.default_rng(9)
    i0 = 2
    probs = np.array([np.linalg.det(V[[i0, j]]) ** 2 if j != i0 else 0.0 for j in range(7)])
    probs /= probs.sum()
    n_draws = 4000
    second = [arp(V, preselected=[i0], rng=rng)[1] for _ in range(n_draws)]
    obs = np.bincount(second, minlength=7)
    assert obs[i0] == 0
    exp = n_draws * probs
    keep = exp > 5
    assert np.sum((obs[keep] - exp[keep]) ** 2 / exp[keep]) < 25.0  # <= 6 dof


def spiky_matrix(seed, n=60, m=40, k=4):
    """Decaying spectrum plus k dominant rows in new directions (spiky leverage)."""
    rng = np.random.default_rng(seed)
    U = np.linalg.qr(rng.standard_normal((n, m)))[0]
    W = np.linalg.qr(rng.standard_normal((m, m)))[0]
    A = (U * 0.7 ** np.arange(m)) @ W.T
    for j in range(k):
        A[j] += (4.0 + j) * rng.standard_normal(m) / np.sqrt(m)
    return A


@pytest.mark.parametrize("seed", [0, 1])
def test_arp_expected_error_bound(seed):
    k = 4
    A = spiky_matrix(seed, k=k)
    U, s, _ = np.linalg.svd(A, full_matrices=False)
    tail = np.sum(s[k:] ** 2)  # ||A - A_k||_F^2
    bound = (k + 1) * tail
    V = U[:, :k]
    rng = np.random.default_rng(seed + 100)
    n_draws = 400
    arp_err = np.array([projection_error(A, arp(V, rng=rng)) for _ in range(n_draws)])
    uni_err = np.array(
        [projection_error(A, rng.choice(A.shape[0], k, replace=False)) for _ in range(n_draws)]
    )
    # statistical slack: 4 standard errors of the mean
    slack = 4 * arp_err.std(ddof=1) / np.sqrt(n_draws)
    assert arp_err.mean() <= bound + slack
    assert arp_err.min() >= tail * (1 - 1e-9)  # no k rows beat the best rank-k approximation
    # the bound is informative: uniform row sampling violates it on this spiky matrix
    assert uni_err.mean() > 2 * bound


def test_arp_errors():
    V = orthonormal(10, 3, 0)
    with pytest.raises(ValueError, match="orthonormal columns"):
        arp(2 * V)
    with pytest.raises(ValueError, match="k must be <= 3"):
        arp(V, 4)
    with pytest.raises(ValueError, match="repeated"):
        arp(V, 3, preselected=[1, 1])
    with pytest.raises(ValueError, match=r"preselected must be indices in \[0, 10\)"):
        arp(V, 3, preselected=[10])
    with pytest.raises(ValueError, match="exceeds k=1"):
        arp(V, 1, preselected=[1, 2])
    bad = V.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or Inf"):
        arp(bad)
