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
