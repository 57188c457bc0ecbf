"""Tests for the CURISS sampling budget (authors' rule, Meier et al., arXiv:2602.03744)."""

import math
from fractions import Fraction

import pytest

from curiss.linalg import RatioTooSmallError, budget, minimum_ratio


def reference_budget(n_e, shape, ratio):
    """The authors' rule in exact rational arithmetic (ratio read as its decimal string)."""
    n_y, n_x = shape
    p = Fraction(str(ratio))

    def rows(s_e):
        s_e = min(s_e, n_e - 1)
        return min(
            math.floor((p * n_e * n_x * n_y - s_e * n_x * n_y) / ((n_e - s_e) * n_x)), n_y
        )

    x = Fraction(n_y * n_e) * p / (n_y + n_e)
    s_e = min(math.ceil(x), n_e - 1)
    s_r = rows(s_e)
    if s_r < 1:
        s_e = min(math.floor(x), n_e - 1)
        s_r = rows(s_e) if s_e >= 1 else 0
    if s_e < 1 or s_r < 1:
        return None
    return s_e, s_r


CASES = [
    (100, (50, 60), 0.1),
    (123, (150, 150), 0.05),
    (100, (100, 100), 0.3),  # x = 15 exactly: guards ceil round-off
    (40, (20, 20), 0.3),
    (60, (30, 10), 0.2),
    (10, (8, 8), 0.5),
    (3, (10, 4), 1.0),
]


@pytest.mark.parametrize("n_e,shape,ratio", CASES)
def test_budget_matches_formula(n_e, shape, ratio):
    assert budget(n_e, shape, ratio) == reference_budget(n_e, shape, ratio)


def test_budget_floor_fallback_branch():
    # search a case where the ceil choice of s_E leaves s_R < 1 but floor(x) >= 1 succeeds
    found = False
    for n_e in range(5, 60, 3):
        for n_y in range(5, 60, 4):
            for k in range(1, 100):
                p = k / 100
                x = Fraction(n_y * n_e) * Fraction(str(p)) / (n_y + n_e)
                s_e = min(math.ceil(x), n_e - 1)
                s_r = math.floor((Fraction(str(p)) * n_e * n_y - s_e * n_y) / (n_e - s_e))
                if s_r < 1 and math.floor(x) >= 1:
                    ref = reference_budget(n_e, (n_y, 7), p)
                    assert ref is not None and ref[0] == math.floor(x)
                    assert budget(n_e, (n_y, 7), p) == ref
                    found = True
                    break
            if found:
                break
        if found:
            break
    assert found, "no case exercising the floor fallback was found"


@pytest.mark.parametrize("n_e,shape", [(100, (50, 60)), (40, (20, 20)), (7, (3, 5)), (2, (1, 1))])
def test_minimum_ratio_is_exact(n_e, shape):
    pmin = minimum_ratio(n_e, shape)
    assert pmin == pytest.approx((shape[0] + n_e - 1) / (n_e * shape[0]))
    assert budget(n_e, shape, pmin) == (1, 1)
    if pmin * 0.999 > 0 and n_e * shape[0] > 1:
        with pytest.raises(ValueError, match="ratio too small: minimum is"):
            budget(n_e, shape, pmin * 0.999)


@pytest.mark.parametrize("n_e,shape", [(100, (50, 60)), (37, (23, 11)), (5, (40, 3))])
def test_budget_never_exceeds_ratio_and_bounds(n_e, shape):
    n_y = shape[0]
    pmin = minimum_ratio(n_e, shape)
    for k in range(0, 101):
        p = pmin + (1 - pmin) * k / 100
        s_e, s_r = budget(n_e, shape, p)
        assert 1 <= s_e <= n_e - 1 and 1 <= s_r <= n_y
        measured = (s_e * n_y + (n_e - s_e) * s_r) / (n_e * n_y)
        assert measured <= p + 1e-12


def test_budget_errors():
    with pytest.raises(ValueError, match=r"ratio too small: minimum is 0\.0\d+ for n_energies=100"):
        budget(100, (50, 60), 0.001)
    with pytest.raises(RatioTooSmallError):  # its own class, so callers can tell it apart
        budget(100, (50, 60), 0.001)
    for bad in (0.0, 1.5):  # other bad ratios are plain ValueErrors
        with pytest.raises(ValueError) as info:
            budget(100, (50, 60), bad)
        assert not isinstance(info.value, RatioTooSmallError)
    for bad in (0.0, -0.1, 1.5, float("nan"), float("inf")):
        with pytest.raises(ValueError, match=r"ratio must be finite and in \(0, 1\]"):
            budget(100, (50, 60), bad)
    with pytest.raises(ValueError, match="n_energies must be >= 2"):
        budget(1, (50, 60), 0.5)
    with pytest.raises(ValueError, match="shape must be a pair"):
        budget(10, (50,), 0.5)


def test_split_rules_check_their_input():
    from curiss.linalg import balanced_budget, images_first_budget

    for rule in (images_first_budget, balanced_budget):
        for bad in (0.0, float("nan"), 1.5):
            with pytest.raises(ValueError, match=r"ratio must be finite and in \(0, 1\]"):
                rule(100, (50, 60), bad)
        with pytest.raises(RatioTooSmallError):
            rule(100, (50, 60), 0.001)
        with pytest.raises(ValueError, match="shape must be a pair"):
            rule(10, (50,), 0.5)
    with pytest.raises(ValueError, match="n_rows must be <= n_y = 50"):
        images_first_budget(100, (50, 60), 0.5, n_rows=51)
    with pytest.raises(ValueError, match="n_rows"):
        images_first_budget(100, (50, 60), 0.5, n_rows=0)
    with pytest.raises(ValueError, match="images_per_row must be a finite number >= 0"):
        balanced_budget(100, (50, 60), 0.5, images_per_row=float("nan"))
    with pytest.raises(ValueError, match="min_images"):
        balanced_budget(100, (50, 60), 0.5, min_images=0)
    # at the minimum ratio: one image and one row
    assert images_first_budget(100, (50, 60), minimum_ratio(100, (50, 60))) == (1, 1)


@pytest.mark.parametrize("n_e, shape, ratio", [(2, (32, 16), 1.0), (3, (10, 4), 0.8)])
def test_images_first_keeps_its_rows_when_every_energy_but_one_is_imaged(n_e, shape, ratio):
    """The split recorded runs were made with (recompute and resume retrace them): s_E capped at
    n_E − 1, s_R unchanged, the rest of the ratio unspent (documented); the authors' rule spends it."""
    from curiss.linalg import budget, images_first_budget

    n_y = shape[0]
    s_e, s_r = images_first_budget(n_e, shape, ratio)
    assert (s_e, s_r) == (n_e - 1, 1)
    a_e, a_r = budget(n_e, shape, ratio)
    assert a_e * n_y + (n_e - a_e) * a_r > s_e * n_y + (n_e - s_e) * s_r
    assert a_e * n_y + (n_e - a_e) * a_r <= ratio * n_e * n_y + 1e-9
