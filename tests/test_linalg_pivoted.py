"""Tests for greedy row selection by column-pivoted QR (:func:`curiss.linalg.pivoted_rows`)."""

import numpy as np
import pytest

from curiss.linalg import pivoted_rows, residual_row_norms


def orthonormal(n, c, seed):
    return np.linalg.qr(np.random.default_rng(seed).standard_normal((n, c)))[0]


def greedy_reference(V, k, pre=(), exclude=()):
    """Independent Gram-Schmidt greedy: each new row has the largest residual norm."""
    chosen = list(pre)
    banned = set(exclude)
    while len(chosen) < k:
        R = V.copy()
        if chosen:
            Q = np.linalg.qr(V[chosen].T)[0]
            R = V - (V @ Q) @ Q.T
        norms = np.einsum("ij,ij->i", R, R)
        norms[chosen] = -1.0
        norms[list(banned - set(chosen))] = -1.0
        chosen.append(int(np.argmax(norms)))
    return chosen


@pytest.mark.parametrize("seed", range(8))
def test_each_new_row_has_the_largest_residual_norm(seed):
    rng = np.random.default_rng(seed)
    n, c = int(rng.integers(6, 40)), int(rng.integers(1, 6))
    V = orthonormal(n, c, seed)
    p = int(rng.integers(0, c))
    pre = [int(i) for i in rng.choice(n, p, replace=False)]
    k = int(rng.integers(p, c + 1))
    exclude = [0, n - 1]
    rows = pivoted_rows(V, k, preselected=pre, exclude=exclude)
    assert rows.dtype == np.intp and rows.shape == (k,)
    assert rows[:p].tolist() == pre
    assert rows.tolist() == greedy_reference(V, k, pre, [i for i in exclude if i not in pre])
    assert not set(rows[p:].tolist()) & set(exclude)
    np.testing.assert_array_equal(rows, pivoted_rows(V, k, preselected=pre, exclude=exclude))


def test_the_row_of_largest_norm_first_and_the_exclusion():
    V = np.zeros((6, 2))
    V[0] = [1.0, 0.0]      # the largest row
    V[3] = [0.0, 0.8]
    V[4] = [0.0, 0.6]
    assert pivoted_rows(V, 1).tolist() == [0]
    assert pivoted_rows(V, 2).tolist() == [0, 3]
    assert pivoted_rows(V, 1, exclude=[0]).tolist() == [3]
    # the exclusion is lifted only when too few other rows are left
    assert pivoted_rows(np.eye(2), 2, exclude=[0, 1]).tolist() == [0, 1]
    assert pivoted_rows(V, 0).tolist() == []
    assert pivoted_rows(V, 2, preselected=[4, 0]).tolist() == [4, 0]
    # a row already spanned by the preselected rows has no residual left
    assert pivoted_rows(V, 2, preselected=[4]).tolist() == [4, 0]


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(k=3), ValueError, "k"),
    (dict(k=1, preselected=[0, 1]), ValueError, r"len\(preselected\)=2 exceeds k=1"),
    (dict(k=2, preselected=[0, 0]), ValueError, "repeated"),
    (dict(k=2, preselected=[6]), ValueError, r"preselected must be indices in \[0, 6\)"),
    (dict(k=2, exclude=[-1]), ValueError, r"exclude must be indices in \[0, 6\)"),
    (dict(k=2, exclude=[0.5]), TypeError, "exclude must contain integers"),
])
def test_bad_arguments_are_refused(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        pivoted_rows(orthonormal(6, 2, 0), **kwargs)


def test_non_finite_basis_is_refused():
    V = orthonormal(6, 2, 0)
    V[2, 1] = np.nan
    with pytest.raises(ValueError, match="V"):
        pivoted_rows(V, 1)


@pytest.mark.parametrize("seed", range(4))
def test_residual_row_norms_are_what_the_greedy_choice_maximises(seed):
    rng = np.random.default_rng(seed)
    n, c = int(rng.integers(6, 30)), int(rng.integers(2, 6))
    V = orthonormal(n, c, seed)
    pre = [int(i) for i in rng.choice(n, c - 1, replace=False)]
    norms = residual_row_norms(V, pre)
    Q = np.linalg.qr(V[pre].T)[0]  # independent rows here: any orthonormal basis of their span
    R = V - V @ Q @ Q.T
    expected = np.einsum("ij,ij->i", R, R)
    expected[pre] = 0.0
    np.testing.assert_allclose(norms, expected, atol=1e-12)
    # orthonormal V, c - 1 rows projected out: one direction is left, of total weight 1
    assert norms.sum() == pytest.approx(1.0)
    assert pivoted_rows(V, c, preselected=pre)[-1] == int(np.argmax(norms))
    np.testing.assert_allclose(residual_row_norms(V), (V**2).sum(1))


def test_linearly_dependent_preselected_rows_project_out_only_their_span():
    """Rows 1 and 2 are parallel: together they span one direction, and two are left."""
    V = np.zeros((6, 3))
    V[1], V[2], V[3], V[4], V[5] = [1, 0, 0], [2, 0, 0], [0, 0.5, 0], [3, 0.1, 0], [0, 0, 0.2]
    np.testing.assert_allclose(residual_row_norms(V, [1, 2]), [0, 0, 0, 0.25, 0.01, 0.04], atol=1e-15)
    assert pivoted_rows(V, 3, preselected=[1, 2]).tolist() == [1, 2, 3]


def test_residual_row_norms_refuse_bad_rows():
    with pytest.raises(ValueError, match="repeated"):
        residual_row_norms(orthonormal(6, 2, 0), [1, 1])
    with pytest.raises(ValueError, match=r"preselected must be indices in \[0, 6\)"):
        residual_row_norms(orthonormal(6, 2, 0), [6])


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("factor", [1e-13, 1e-6, 1e6])
def test_scaling_V_changes_no_choice(seed, factor):
    """The preselected rows' span is cut relative to its largest singular value: a V of small
    norm (s_1 < 1) keeps that span (an absolute 1e-12 cut dropped it, so a row lying in the span
    of the preselected ones was picked as new)."""
    V = orthonormal(8, 3, seed)
    V[5] = 2 * V[0]  # row 5 adds nothing once row 0 is chosen
    ref = pivoted_rows(V, 3, preselected=[0])
    assert 5 not in ref
    np.testing.assert_array_equal(pivoted_rows(V * factor, 3, preselected=[0]), ref)
    np.testing.assert_allclose(residual_row_norms(V * factor, [0]) / factor**2,
                               residual_row_norms(V, [0]), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_a_preselected_row_that_is_zero_to_rounding_removes_no_direction(seed):
    """A blank spatial line gives a basis row of rounding noise (~1e-16). ARP drops it without
    removing anything (its cut is 1e-24 on the squared norm); the residual norms took out a
    whole direction (the cut was relative to the preselected rows alone), so the greedy choice
    never took the only row along it."""
    from curiss.linalg import arp

    rng = np.random.default_rng(seed)
    blank = int(rng.integers(12))
    A = rng.standard_normal((12, 4))
    A[blank] = 0.0
    V = np.linalg.qr(A)[0]  # orthonormal columns, row `blank` zero
    V[blank] = 1e-16 * rng.standard_normal(4)  # rounding noise (still orthonormal to 1e-16)
    norms = residual_row_norms(V, [blank])
    assert norms.sum() == pytest.approx(4.0, abs=1e-12)  # no direction removed
    np.testing.assert_allclose(norms, np.where(np.arange(12) == blank, 0.0, (V**2).sum(1)))
    first = int(np.argmax(norms))
    assert pivoted_rows(V, 2, preselected=[blank]).tolist() == [blank, first]
    # ARP draws its next row from the same distribution (2000 draws)
    counts = np.bincount([arp(V, 2, preselected=[blank], rng=s)[1] for s in range(2000)],
                         minlength=12)
    np.testing.assert_allclose(counts / 2000, norms / norms.sum(), atol=0.05)
