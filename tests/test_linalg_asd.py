"""Tests for ASD (Tanner & Wei 2016) and LoopedASD (Townsend et al. 2022)."""

import numpy as np
import pytest

from curiss.linalg import ASDResult, asd, looped_asd


def row_mask(n_e, n_y, n_x, frac, rng):
    """Hardware pattern: per energy, a random `frac` of the spatial rows (blocks of n_x columns)."""
    mask = np.zeros((n_e, n_y, n_x), dtype=bool)
    k = max(1, int(round(frac * n_y)))
    for e in range(n_e):
        mask[e, rng.choice(n_y, k, replace=False)] = True
    return mask.reshape(n_e, n_y * n_x)


def rank3_stack(seed, n_e=40, n_y=20, n_x=20):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n_e, 3)) @ rng.standard_normal((3, n_y * n_x)), rng


def test_looped_asd_recovers_rank3_from_row_mask(base_seed=0):
    """Exact rank 3 from 30 % of the rows at each energy. Not every random mask: on 5 of seeds
    0-199 (44, 71, 110, 139, 169) LoopedASD grew past rank 3 (to 4 or 5) and did not converge
    (found by a seed audit; seeds 0-4 alone, as this test once had, all recover). So: at least 17
    of 20 consecutive seeds recover (at 2.5 % per seed a block fails with probability ~0.2 %),
    and a run that does not recover says so (``converged`` False)."""
    recovered = 0
    for seed in range(base_seed, base_seed + 20):
        D, rng = rank3_stack(seed)
        mask = row_mask(40, 20, 20, 0.3, rng)
        M = np.where(mask, D, np.nan)  # unobserved entries are ignored, even NaN
        M_before = M.copy()
        res = looped_asd(M, mask, rng=seed)
        assert isinstance(res, ASDResult)
        np.testing.assert_array_equal(np.isnan(M), np.isnan(M_before))
        err = np.linalg.norm(res.matrix - D) / np.linalg.norm(D)
        if err < 1e-3:
            recovered += 1
            assert res.rank == 3 and res.converged and res.residual <= 1e-6, (seed, res.rank)
            assert res.X.shape == (40, 3) and res.Y.shape == (3, 400)
        else:  # never a wrong answer reported as converged
            assert not res.converged, (seed, err, res.rank)
    assert recovered >= 17, recovered


@pytest.mark.parametrize("seed", [0, 1])
def test_looped_asd_stagnation_on_noisy_rank3(seed):
    D, rng = rank3_stack(seed)
    noisy = D + 1e-2 * rng.standard_normal(D.shape)
    mask = row_mask(40, 20, 20, 0.5, rng)
    res = looped_asd(noisy, mask, rng=seed)
    assert res.stop_reason == "stagnation"
    assert res.rank == 3
    assert np.linalg.norm(res.matrix - D) / np.linalg.norm(D) < 0.05


@pytest.mark.parametrize("seed", [0, 1])
def test_asd_full_mask_exact(seed):
    rng = np.random.default_rng(seed)
    M = rng.standard_normal((30, 3)) @ rng.standard_normal((3, 50))
    mask = np.ones_like(M, dtype=bool)
    X0, Y0 = rng.standard_normal((30, 3)), rng.standard_normal((3, 50))
    res = asd(M, mask, 3, X0=X0, Y0=Y0, max_iter=5000, tol=1e-12)
    assert res.converged and res.n_iter > 1
    assert np.linalg.norm(res.matrix - M) / np.linalg.norm(M) < 1e-9
    default = asd(M, mask, 3)  # spectral initialisation: exact at once
    assert np.linalg.norm(default.matrix - M) / np.linalg.norm(M) < 1e-8


@pytest.mark.parametrize("seed", [0, 1])
def test_asd_partial_mask_residual_decreases(seed):
    D, rng = rank3_stack(seed)
    mask = rng.random(D.shape) < 0.4  # entrywise mask (many column patterns)
    short = asd(D, mask, 3, max_iter=5, tol=0)
    # 2000 iterations: 12 of seeds 0-99 needed 403-1203 (a seed audit), and 400 was enough for 0-1
    long = asd(D, mask, 3, max_iter=2000, tol=1e-9)
    assert long.residual < short.residual
    assert long.converged
    assert np.linalg.norm(long.matrix - D) / np.linalg.norm(D) < 1e-6


def test_max_rank_default_and_errors():
    rng = np.random.default_rng(0)
    D = rng.standard_normal((6, 3)) @ rng.standard_normal((3, 8))
    mask = np.zeros(D.shape, dtype=bool)
    mask[:2] = True  # every column observed exactly twice -> rank at most 2
    mask[:, :2] = True
    res = looped_asd(D, mask, tol=0.0, rng=0)
    assert res.rank <= 2
    assert looped_asd(D, mask, max_rank=10, tol=0.0, stagnation=0.0, rng=0).rank <= 2
    mask[:, 3] = False
    with pytest.raises(ValueError, match="column.*no observation"):
        looped_asd(D, mask)
    with pytest.raises(ValueError, match="finite on the observed"):
        asd(np.full((3, 3), np.nan), np.ones((3, 3), bool), 1)
    with pytest.raises(TypeError, match="boolean"):
        asd(D, np.ones(D.shape), 1)
    with pytest.raises(ValueError, match="both X0 and Y0"):
        asd(D, np.ones(D.shape, bool), 1, X0=np.ones((6, 1)))


def test_unobserved_entries_are_never_computed_with():
    """Unobserved entries are ignored, so a huge one next to tiny observed data must not
    overflow (it used to be divided by the observed data's scale: RuntimeWarning)."""
    import warnings

    M = np.outer([1.0, 3.0, 4.0], [1.0, 2.0, 3.0]) * 1e-300  # rank 1 on the observed entries
    M[1, 1], M[2, 2] = 1e300, np.nan  # unobserved
    W = np.isfinite(M) & (np.abs(M) < 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for res in (asd(M, W, 1, rng=0), looped_asd(M, W, rng=0)):
            assert np.all(np.isfinite(res.matrix))
            np.testing.assert_allclose(res.matrix[W] / 1e-300, M[W] / 1e-300, rtol=1e-3)
