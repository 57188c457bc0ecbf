"""Tests for the stabilised CUR completion (Meier et al., arXiv:2602.03744)."""

import numpy as np
import pytest

from curiss.linalg import CURResult, cur_complete


def low_rank(seed, m=40, n=600, k=3):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((m, k)) @ rng.standard_normal((k, n))


def pick(seed, m, n, n_rows, n_cols):
    rng = np.random.default_rng(seed + 1000)
    return (
        np.sort(rng.choice(m, n_rows, replace=False)),
        rng.choice(n, n_cols, replace=False),
    )


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("n_rows,n_cols", [(3, 3), (5, 40), (8, 20)])
def test_cur_exact_on_rank_k(seed, n_rows, n_cols):
    D = low_rank(seed)
    I, J = pick(seed, *D.shape, n_rows, n_cols)
    C, R = D[:, J].copy(), D[I, :].copy()
    C0, R0 = C.copy(), R.copy()
    res = cur_complete(C, R, I, J)
    assert isinstance(res, CURResult)
    assert res.matrix.shape == D.shape
    assert res.rank == 3
    assert np.linalg.norm(res.matrix - D) / np.linalg.norm(D) <= 1e-8
    assert res.singular_values.shape == (min(n_rows, n_cols),)
    s = res.singular_values
    assert res.condition == pytest.approx(s[0] / s[2])
    np.testing.assert_array_equal(C, C0)  # inputs not mutated
    np.testing.assert_array_equal(R, R0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cur_rank_cap_and_noise_level(seed):
    D = low_rank(seed)
    sigma = 1e-3
    noisy = D + sigma * np.random.default_rng(seed + 7).standard_normal(D.shape)
    I, J = pick(seed, *D.shape, 8, 30)
    C, R = noisy[:, J], noisy[I, :]
    res_noise = cur_complete(C, R, I, J, noise_level=sigma)
    assert res_noise.rank == 3
    # plain relative tolerance keeps noise directions (full rank of the 8 x 30 core)
    assert cur_complete(C, R, I, J).rank == 8
    assert cur_complete(C, R, I, J, rank=2).rank == 2
    # noise-aware truncation is more accurate than keeping every direction
    err_noise = np.linalg.norm(res_noise.matrix - D)
    err_full = np.linalg.norm(cur_complete(C, R, I, J).matrix - D)
    assert err_noise < err_full
    assert err_noise / np.linalg.norm(D) < 1e-2


@pytest.mark.parametrize("seed", [0, 1])
def test_cur_write_back_keeps_measured_values(seed):
    D = low_rank(seed) + 1e-2 * np.random.default_rng(seed).standard_normal((40, 600))
    I, J = pick(seed, *D.shape, 6, 25)
    res = cur_complete(D[:, J], D[I, :], I, J, rank=3, write_back=True)
    np.testing.assert_array_equal(res.matrix[I, :], D[I, :])
    np.testing.assert_array_equal(res.matrix[:, J], D[:, J])
    plain = cur_complete(D[:, J], D[I, :], I, J, rank=3)
    assert not np.array_equal(plain.matrix[I, :], D[I, :])
    other = np.setdiff1d(np.arange(40), I)
    np.testing.assert_array_equal(
        np.delete(res.matrix[other], J, axis=1), np.delete(plain.matrix[other], J, axis=1)
    )


def test_cur_zero_core_and_errors():
    D = np.zeros((5, 9))
    res = cur_complete(D[:, [1, 2]], D[[0, 3], :], [0, 3], [1, 2])
    assert res.rank == 0 and np.isnan(res.condition) and not res.matrix.any()
    D = low_rank(0, 10, 20, 2)
    I, J = [1, 4], [0, 5, 7]
    with pytest.raises(ValueError, match="C must have shape"):
        cur_complete(D[:, [0, 5]], D[I, :], I, J)
    with pytest.raises(ValueError, match="R must have shape"):
        cur_complete(D[:, J], D[[1], :], I, J)
    with pytest.raises(ValueError, match="disagree"):
        cur_complete(D[:, J], D[[2, 4], :], I, J)
    cur_complete(D[:, J], D[[2, 4], :], I, J, check=False)  # allowed when asked
    with pytest.raises(ValueError, match="repeated"):
        cur_complete(D[:, J], D[[1, 1], :], [1, 1], J)
    bad = D[:, J].copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or Inf"):
        cur_complete(bad, D[I, :], I, J)
    with pytest.raises(ValueError, match="noise_level must be >= 0"):
        cur_complete(D[:, J], D[I, :], I, J, noise_level=-1.0)


def test_result_built_from_factors_takes_their_rank():
    """CURResult(left=, right=) used to keep rank=0 and so give an all-zero matrix."""
    L, R = np.ones((3, 1)), np.arange(4.0)[None]
    res = CURResult(left=L, right=R)
    assert res.rank == 1
    np.testing.assert_array_equal(res.matrix, L @ R)
    with pytest.raises(ValueError, match="rank=2 disagrees with the factors' rank 1"):
        CURResult(left=L, right=R, rank=2)
    with pytest.raises(ValueError, match="same r"):
        CURResult(left=np.ones((3, 2)), right=R)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("dense", [True, False])
def test_result_arrays_are_read_only_and_inputs_stay_writable(seed, dense):
    """Writing into a result's arrays used to change its (cached) completion; a result's arrays
    are read-only views now, and the caller's arrays stay writable."""
    D = low_rank(seed)
    I, J = pick(seed, *D.shape, 5, 12)
    C, R = D[:, J].copy(), D[I, :].copy()
    res = cur_complete(C, R, I, J, dense=dense)
    before = res.matrix.copy()
    for name in ("left", "right", "matrix", "singular_values"):
        arr = getattr(res, name)
        with pytest.raises(ValueError, match="read-only"):
            arr[..., 0] = 1e9
    np.testing.assert_array_equal(res.matrix, before)
    C[0, 0] = R[0, 0] = 1.0  # the inputs are still the caller's, writable
    L = np.ones((3, 1))
    CURResult(left=L, right=np.ones((1, 2))).matrix
    L[0, 0] = 2.0


@pytest.mark.parametrize("kw", [dict(rtol=1.0), dict(rtol=1.5), dict(rtol=1.0, noise_level=0.0),
                                dict(rtol=1.0, rank=2)])
def test_an_rtol_that_keeps_no_singular_value_is_refused(kw):
    """rtol >= 1 keeps no singular value: the completion was all zeros, with no fallback note."""
    rng = np.random.default_rng(0)
    D = rng.random((10, 3)) @ rng.random((3, 12))
    I, J = np.array([0, 4, 7]), np.array([1, 5, 9])
    with pytest.raises(ValueError, match=r"rtol must be in \[0, 1\)"):
        cur_complete(D[:, J], D[I], I, J, **kw)
    assert cur_complete(D[:, J], D[I], I, J, rtol=0.999).rank >= 1
