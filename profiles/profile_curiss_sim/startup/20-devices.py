# curiss simulated-STXM profile, step 20: the simulated STXM around a synthetic XANES phantom.
#
# Devices (bluesky-queueserver passes them to plans by these names):
#   mono      the monochromator (eV)
#   stage     the raster stage (stage.y: slow axis, one position per spatial row; stage.x)
#   detector  the line detector (one trigger = one spatial row of n_x pixels)
# Not devices: `stxm` (the set), `sample` (the phantom: sample.energies, sample.shape,
# sample.dictionary, sample.cube, sample.labels).
#
# The sample size can be set with CURISS_SIM_SIZE="n_E,n_y,n_x" (default 60,32,32),
# CURISS_SIM_MATERIALS (default 3), CURISS_SIM_SEED (default 0), and the detector's Poisson
# noise switched off with CURISS_SIM_NOISE=0 (or false, no, off).
import os as _os

from sim_devices import PhantomSample, make_stxm


def _sim_size() -> tuple[int, int, int]:
    text = _os.environ.get("CURISS_SIM_SIZE", "").strip() or "60,32,32"
    try:
        n_e, n_y, n_x = (int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        raise ValueError(f"CURISS_SIM_SIZE must be three integers 'n_E,n_y,n_x'; got {text!r}") from None
    if n_e < 2 or n_y < 4 or n_x < 4:  # the phantom's own minimum (make_phantom)
        raise ValueError(f"CURISS_SIM_SIZE must be n_E >= 2 and n_y, n_x >= 4; got {text!r}")
    return n_e, n_y, n_x


def _sim_noise() -> bool:
    """CURISS_SIM_NOISE as a switch: 1/true/yes/on (default) or 0/false/no/off, any case."""
    text = _os.environ.get("CURISS_SIM_NOISE", "").strip().lower() or "1"
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    # "False" or "off" used to leave the noise on (only "0", "false" and "no" switched it off)
    raise ValueError(f"CURISS_SIM_NOISE must be 1/true/yes/on or 0/false/no/off; got {text!r}")


_n_e, _n_y, _n_x = _sim_size()
sample = PhantomSample(_n_e, (_n_y, _n_x), int(_os.environ.get("CURISS_SIM_MATERIALS", "3")),
                       seed=int(_os.environ.get("CURISS_SIM_SEED", "0")))
stxm = make_stxm(sample, noise=_sim_noise(), seed=int(_os.environ.get("CURISS_SIM_SEED", "0")))
mono, stage, detector = stxm.mono, stxm.stage, stxm.detector
