"""Property-based fuzzing of the public curiss.linalg kernels (hypothesis).

Inputs cover shapes from 1 x 1 up, ranks 1..4, degenerate data (zero, constant, rank-deficient,
zero rows/columns, nearly collinear, small integers) and scales from 1e-300 to 1e300.  Every kernel
must either return finite output with its documented invariants, or raise ValueError/TypeError with a
message.  Regressions found by this file are pinned as explicit examples in the ``test_regression_*``
tests.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from curiss.linalg import (
    arp,
    asd,
    budget,
    cur_complete,
    leverage_scores,
    looped_asd,
    minimum_ratio,
    row_basis,
    row_pixels,
    unfold_images,
    weighted_sample,
)

FUZZ = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
SCALES = [1.0, 1e-300, 1e-200, 1e-100, 1e-8, 1e8, 1e100, 1e150, 1e200, 1e300]
KINDS = ["lowrank", "const", "zero", "randn", "zerorow", "zerocol", "collinear", "int"]


@st.composite
def matrices(draw, max_m=12, max_n=12, min_m=1, min_n=1):
    """(m, n) float matrices of a random kind and scale (all finite)."""
    m = draw(st.integers(min_m, max_m))
    n = draw(st.integers(min_n, max_n))
    kind = draw(st.sampled_from(KINDS))
    scale = draw(st.sampled_from(SCALES))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    r = draw(st.integers(1, 4))
    if kind == "const":
        a = np.full((m, n), 1.0)
    elif kind == "zero":
        a = np.zeros((m, n))
    elif kind == "randn":
        a = rng.normal(size=(m, n))
    elif kind == "int":
        a = rng.integers(-3, 4, size=(m, n)).astype(float)
    else:
        a = rng.normal(size=(m, r)) @ rng.normal(size=(r, n))
        if kind == "zerorow":
            a[rng.integers(m)] = 0.0
        elif kind == "zerocol":
            a[:, rng.integers(n)] = 0.0
        elif kind == "collinear":
            a = np.outer(a[:, 0], np.ones(n)) + 1e-13 * rng.normal(size=(m, n))
    return a * scale


def _finite(x) -> bool:
    return bool(np.all(np.isfinite(x)))


@pytest.fixture(autouse=True)
def _no_runtime_warnings():
    """Overflow/invalid-value warnings are bugs here: the kernels must stay in range."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        yield


# ------------------------------------------------------------------ leverage scores / sampling
@FUZZ
@given(A=matrices(), rank=st.integers(0, 13), rtol=st.sampled_from([0.0, 1e-8, 0.5]))
def test_leverage_scores_fuzz(A, rank, rtol):
    try:
        s = leverage_scores(A, rank=rank or None, rtol=rtol)
    except ValueError as exc:
        assert rank > min(A.shape) and "rank" in str(exc)
        return
    assert s.shape == (A.shape[0],) and _finite(s)
    assert np.all(s >= -1e-12) and np.all(s <= 1 + 1e-9)
    if rank:
        assert s.sum() == pytest.approx(rank, abs=1e-8)


@FUZZ
@given(A=matrices(max_m=1, max_n=15), k=st.integers(0, 16),
       exclude=st.lists(st.integers(0, 14), max_size=6), seed=st.integers(0, 2**16))
@example(A=np.zeros((1, 1)), k=0, exclude=[], seed=0)  # regression: k=0 with zero weights -> NaN p
@example(A=np.array([[1e308, 1e308, 0.0]]), k=2, exclude=[], seed=0)  # regression: sum overflows
def test_weighted_sample_fuzz(A, k, exclude, seed):
    w = np.abs(A[0])
    exclude = [i for i in exclude if i < w.size]
    allowed = w.size - len(set(exclude))
    if k > allowed:
        with pytest.raises(ValueError, match="cannot draw"):
            weighted_sample(w, k, exclude=exclude, rng=seed)
        return
    idx = weighted_sample(w, k, exclude=exclude, rng=seed)
    assert idx.shape == (k,) and idx.dtype == np.intp
    assert len(set(idx.tolist())) == k and not set(idx.tolist()) & set(exclude)
    w_ok = w.copy()
    w_ok[exclude] = 0.0
    n_pos = int(np.count_nonzero(w_ok > 0))
    # candidates with a positive weight come before any zero-weight one
    assert np.all(w_ok[idx[: min(k, n_pos)]] > 0)


def test_weighted_sample_regressions():
    assert weighted_sample(np.zeros(4), 0, rng=0).size == 0
    got = weighted_sample(np.array([1e308, 1e308, 0.0]), 2, rng=1)
    assert sorted(got.tolist()) == [0, 1]
    with pytest.raises(ValueError, match="must be >= 0"):
        weighted_sample(np.array([1.0, -1.0]), 1)
    with pytest.raises(ValueError, match="finite"):
        weighted_sample(np.array([1.0, np.inf]), 1)


# ------------------------------------------------------------------ unfolding / ARP
@FUZZ
@given(A=matrices(max_m=12, max_n=30), s=st.integers(1, 3), data=st.data())
def test_row_basis_and_arp_fuzz(A, s, data):
    n_y = A.shape[0]
    images = np.stack([A * (j + 1) for j in range(s)])
    assume(_finite(images))
    F = unfold_images(images)
    assert F.shape == (n_y, s * A.shape[1])
    k = data.draw(st.integers(1, n_y), label="k")
    V = row_basis(images, k)
    assert V.shape == (n_y, k) and _finite(V)
    np.testing.assert_allclose(V.T @ V, np.eye(k), atol=1e-8)
    n_pre = data.draw(st.integers(0, k), label="n_pre")
    pre = data.draw(st.permutations(range(n_y)), label="order")[:n_pre]
    rows = arp(V, k, preselected=pre, rng=data.draw(st.integers(0, 99), label="seed"))
    assert len(set(rows.tolist())) == k and rows.tolist()[:n_pre] == list(pre)
    assert np.all((rows >= 0) & (rows < n_y))
    pix = row_pixels(rows, A.shape[1], n_y=n_y)
    assert pix.size == k * A.shape[1] and len(set(pix.tolist())) == pix.size


# ------------------------------------------------------------------ CUR
@FUZZ
@given(A=matrices(max_m=12, max_n=30, min_m=2, min_n=2), data=st.data(), write_back=st.booleans(),
       rank=st.integers(0, 15), noise=st.sampled_from([None, 0.0, 1e-3]),
       max_condition=st.sampled_from([None, 1e8, 10.0]))
def test_cur_complete_fuzz(A, data, write_back, rank, noise, max_condition):
    m, n = A.shape
    I = data.draw(st.lists(st.integers(0, m - 1), min_size=1, max_size=m, unique=True), label="I")
    J = data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n, unique=True), label="J")
    res = cur_complete(A[:, J], A[I, :], I, J, rank=rank or None, noise_level=noise,
                       write_back=write_back, max_condition=max_condition)
    assert res.matrix.shape == (m, n) and _finite(res.matrix)
    assert 0 <= res.rank <= min(len(I), len(J))
    if res.rank:
        assert np.isfinite(res.condition) and res.condition >= 1.0
        if max_condition is not None:
            assert res.condition <= max_condition * (1 + 1e-12)
    if write_back:
        np.testing.assert_array_equal(res.matrix[:, J], A[:, J])
        np.testing.assert_array_equal(res.matrix[I, :], A[I, :])
    if rank and rank > min(len(I), len(J)):
        assert "rank cap" in res.fallback  # a cap above what the data supports is reported


@FUZZ
@given(A=matrices(max_m=10, max_n=20, min_m=2, min_n=2), k=st.integers(-200, 200), data=st.data())
def test_cur_complete_is_scale_equivariant(A, k, data):
    """D -> 2^k D gives 2^k D_hat (same rank): no overflow/underflow dependence on units."""
    assume(np.abs(A).max() > 0)
    m, n = A.shape
    I = data.draw(st.lists(st.integers(0, m - 1), min_size=1, max_size=m, unique=True), label="I")
    J = data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n, unique=True), label="J")
    f = 2.0**k
    with np.errstate(over="ignore", under="ignore"):
        B = A * f
    assume(np.all(np.isfinite(B)) and np.abs(B).max() > 1e-290 and np.abs(A).max() > 1e-290)
    a = cur_complete(A[:, J], A[I, :], I, J)
    b = cur_complete(B[:, J], B[I, :], I, J)
    assert a.rank == b.rank
    ref = np.abs(a.matrix).max() + np.abs(A).max()
    np.testing.assert_allclose(b.matrix / f, a.matrix, rtol=0, atol=1e-9 * ref)


def test_regression_cur_consistency_check_at_huge_scale():
    """Misaligned C/R must be refused at any scale (the old norms overflowed and let it pass)."""
    rng = np.random.default_rng(0)
    D = (rng.normal(size=(8, 2)) @ rng.normal(size=(2, 10))) * 1e200
    I, J = [0, 1, 3], [0, 1, 2, 5]
    with pytest.raises(ValueError, match="disagree"):
        cur_complete(D[:, J], D[[0, 2, 4], :], I, J)


# ------------------------------------------------------------------ ASD / LoopedASD
@st.composite
def masked(draw, max_m=10, max_n=12):
    A = draw(matrices(max_m=max_m, max_n=max_n, min_m=2, min_n=2))
    m, n = A.shape
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    p = draw(st.floats(0.1, 1.0))
    W = rng.random((m, n)) < p
    W[np.arange(m), rng.integers(n, size=m)] = True  # every row and column observed
    W[rng.integers(m, size=n), np.arange(n)] = True
    return A, W


@FUZZ
@given(AW=masked(), data=st.data(), max_iter=st.integers(0, 40))
@example(AW=(np.array([[-2.4e149, -8.0e148], [-2.1e149, 3.3e149]]), np.ones((2, 2), bool)),
         data=None, max_iter=0).via("regression: squares overflow -> NaN completion")
def test_asd_and_looped_asd_fuzz(AW, data, max_iter):
    A, W = AW
    M = np.where(W, A, np.nan)  # unobserved entries must be ignored, NaN or not
    rank = 1 if data is None else data.draw(st.integers(1, min(A.shape)), label="rank")
    res = asd(M, W, rank, max_iter=max_iter, rng=1)
    assert res.X.shape == (A.shape[0], rank) and res.Y.shape == (rank, A.shape[1])
    assert _finite(res.matrix) and np.isfinite(res.residual) and res.n_iter <= max_iter
    assert res.converged == (res.residual <= 1e-8)
    res = looped_asd(M, W, max_iter=max(max_iter, 1) * 10, rng=2)
    assert _finite(res.matrix) and np.isfinite(res.residual)
    assert res.stop_reason in ("tol", "stagnation", "max_rank", "max_iter")
    assert 1 <= res.rank <= min(W.sum(0).min(), W.sum(1).min())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(AW=masked(max_m=8, max_n=10), k=st.integers(-200, 200))
def test_asd_is_scale_equivariant(AW, k):
    """Same iterations on 4^k M (the solvers normalise by an even power of two, exactly):
    results agree after unscaling."""
    A, W = AW
    f = 4.0**k
    with np.errstate(over="ignore", under="ignore"):
        B = A * f
    top = np.abs(A[W]).max()
    assume(top > 0 and np.isfinite(np.abs(B[W]).max()) and min(top, top * f) > 1e-290)
    for solve in (lambda M: asd(M, W, 1, max_iter=30, rng=0),
                  lambda M: looped_asd(M, W, max_iter=200, rng=0)):
        a, b = solve(A), solve(B)
        assert a.rank == b.rank and a.n_iter == b.n_iter and a.stop_reason == b.stop_reason
        ref = np.abs(a.matrix).max() + top
        np.testing.assert_allclose(b.matrix / f, a.matrix, rtol=0, atol=1e-9 * ref)


@pytest.mark.parametrize("scale", [1e-200, 1e-160, 1e150])
def test_regression_asd_extreme_scales_complete_accurately(scale):
    """Found by the fuzz: at 1e150 squared norms overflowed (NaN completion); at 1e-160 and below
    they underflowed (the solver stopped at once on a 'zero' residual, relative error 0.5 to inf)."""
    rng = np.random.default_rng(0)
    A = rng.normal(size=(8, 2)) @ rng.normal(size=(2, 10))
    W = rng.random(A.shape) < 0.7
    W[:, :2] = True
    W[:2] = True
    for res in (looped_asd(np.where(W, A * scale, 0.0), W, rng=0),
                asd(np.where(W, A * scale, 0.0), W, 2, rng=0)):
        err = np.linalg.norm(res.matrix / scale - A) / np.linalg.norm(A)
        assert err < 1e-4


# ------------------------------------------------------------------ budget
@FUZZ
@given(n_e=st.integers(-1, 40), n_y=st.integers(-1, 40), n_x=st.integers(-1, 10),
       ratio=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.floats(0, 1)))
def test_budget_fuzz(n_e, n_y, n_x, ratio):
    try:
        s_e, s_r = budget(n_e, (n_y, n_x), ratio)
    except ValueError as exc:
        assert str(exc)
        ok_sizes = n_e >= 2 and n_y >= 1 and n_x >= 1
        if ok_sizes and np.isfinite(ratio) and 0 < ratio <= 1:
            assert "ratio too small" in str(exc)
            assert ratio < minimum_ratio(n_e, (n_y, n_x)) + 1e-12
        return
    assert 1 <= s_e <= n_e - 1 and 1 <= s_r <= n_y
    assert (s_e * n_y + (n_e - s_e) * s_r) / (n_e * n_y) <= ratio + 1e-9


# ------------------------------------------------------------------ bad input -> clear errors
GARBAGE = st.sampled_from([
    np.array([[np.nan, 1.0], [1.0, 1.0]]),
    np.array([[np.inf, 1.0], [1.0, 1.0]]),
    np.ones(3),
    np.ones((2, 2, 2)),
    np.ones((2, 2), dtype=bool),
    np.ones((2, 2), dtype=complex),
    np.array([["a", "b"], ["c", "d"]]),
    np.zeros((0, 3)),
])


@FUZZ
@given(bad=GARBAGE, which=st.sampled_from(["leverage", "arp", "cur_C", "cur_R", "asd", "looped",
                                           "row_basis", "weights"]))
def test_bad_inputs_raise_clear_errors(bad, which):
    good = np.eye(3)
    calls = {
        "leverage": lambda: leverage_scores(bad),
        "arp": lambda: arp(bad, 1),
        "cur_C": lambda: cur_complete(bad, good, [0], [0]),
        "cur_R": lambda: cur_complete(good[:, :1], bad, [0], [0]),
        "asd": lambda: asd(bad, np.ones(np.shape(bad), bool), 1),
        "looped": lambda: looped_asd(bad, np.ones(np.shape(bad), bool)),
        "row_basis": lambda: row_basis(bad, 1),
        "weights": lambda: weighted_sample(bad, 1),
    }
    try:
        calls[which]()
    except (ValueError, TypeError) as exc:
        assert len(str(exc)) > 10
    # some of these are valid for some kernels (e.g. an empty (0, 3) basis for arp with k=...):
    # only other exception types are failures


@FUZZ
@given(rng=st.one_of(st.none(), st.integers(0, 2**31), st.booleans(), st.floats(), st.text(max_size=3)))
def test_rng_argument_is_checked(rng):
    ok = rng is None or (isinstance(rng, int) and not isinstance(rng, bool))
    if ok:
        assert weighted_sample(None, 2, n=4, rng=rng).size == 2
    else:
        with pytest.raises(TypeError, match="rng must be"):
            weighted_sample(None, 2, n=4, rng=rng)
