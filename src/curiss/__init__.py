"""curiss: subsampled X-ray spectromicroscopy (CURISS / ACURISS / RISS) for Bluesky.

The public API is small: the planners, :func:`replay` for offline runs and
:func:`spectral_analysis`. Bluesky plans are in :mod:`curiss.plans`, the catalog in
:mod:`curiss.store`, the numerical kernels in :mod:`curiss.linalg`.
"""

__version__ = "0.1.0"

from .analysis import spectral_analysis
from .planners import (
    ACURISSPlanner,
    CURISSPlanner,
    RandomRowsPlanner,
    RasterPlanner,
    Request,
    RISSPlanner,
    make_planner,
)
from .replay import Acquisition, replay

__all__ = [
    "ACURISSPlanner",
    "CURISSPlanner",
    "RISSPlanner",
    "RandomRowsPlanner",
    "RasterPlanner",
    "Request",
    "make_planner",
    "replay",
    "Acquisition",
    "spectral_analysis",
    "__version__",
]
