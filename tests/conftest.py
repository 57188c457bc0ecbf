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
