"""Simulated STXM for curiss: sample models and ophyd v1 devices.

Imported by tests, profiles and demos only (nothing in ``curiss`` imports it).

Examples
--------
>>> from sim_devices import PhantomSample, make_stxm
>>> stxm = make_stxm(PhantomSample(20, (8, 8), 2, seed=0), noise=False)
>>> stxm.mono.name, stxm.stage.name, stxm.detector.name
('mono', 'stage', 'detector')
"""

from ._devices import (
    STXM,
    LineDetector,
    Monochromator,
    RasterStage,
    SimPositioner,
    make_stxm,
)
from ._samples import PhantomSample, ReplaySample, SampleBase

__all__ = [
    "LineDetector",
    "Monochromator",
    "PhantomSample",
    "RasterStage",
    "ReplaySample",
    "STXM",
    "SampleBase",
    "SimPositioner",
    "make_stxm",
]
