"""Test-session settings shared by every test module."""

import os

# The test matrices are small: multithreaded BLAS only adds contention on the 2-core CI machine
# (measured here: a 125 x 625 SVD took ~1 s with the default threads while other processes ran,
# 0.03-0.09 s on one thread). Subprocesses started by tests inherit the variables.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

from threadpoolctl import threadpool_limits  # noqa: E402  (a scikit-learn dependency)

threadpool_limits(1)


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def acuriss_to_its_stop():
    """``run(energies, cube, reference, dictionary, seeds)``: the default ACURISS from p0 = 0.02
    (cap 0.10) to its own stop for each seed, asserting that the prediction rule stopped it;
    returns arrays (ratio, signal error vs ``reference``, ARI and cluster-spectra error vs the
    clustering of ``reference``), each shape (len(seeds),), as in benchmarks/quality.py."""
    import numpy as np
    from sklearn.metrics import adjusted_rand_score

    import curiss
    from curiss.analysis import signal_error, spectra_error

    def run(energies, cube, reference, dictionary, seeds):
        full = curiss.spectral_analysis(reference, n_components=3, n_clusters=4, seed=0)
        rows = []
        for seed in seeds:
            p = curiss.ACURISSPlanner(energies, cube.shape[1:], sampling_ratio=0.10,
                                      initial_ratio=0.02, dictionary=dictionary, seed=seed)
            acq = curiss.replay(p, cube)
            assert p.stop_reason.startswith("prediction error"), p.stop_reason
            ana = curiss.spectral_analysis(acq.completed, n_components=3, n_clusters=4, seed=0)
            rows.append((acq.sampling_ratio, signal_error(acq.completed, reference, k=3),
                         adjusted_rand_score(full.labels.ravel(), ana.labels.ravel()),
                         spectra_error(full.cluster_spectra, ana.cluster_spectra)))
        return np.array(rows).T

    return run
