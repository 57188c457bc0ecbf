"""Matplotlib figures of curiss acquisitions and a live bluesky callback.

Figures are built with the object-oriented API (:class:`matplotlib.figure.Figure`, no pyplot
state), so they work headless; each function takes plain arrays and returns a Figure:

- :func:`plot_sampling`: the sampling pattern over time and the sampling ratio per step;
- :func:`plot_energies`: energies imaged in full against the mean spectrum (and their weights);
- :func:`plot_eigen`: eigenimages and eigenspectra;
- :func:`plot_clusters`: cluster map and cluster spectra, with matched references;
- :func:`plot_error_map`: per-pixel relative error against a known truth.

:func:`figures_for_run` writes all applicable figures of a run (:class:`curiss.store.RunData`) as
PNG files; :class:`LiveCompletionPlot` shows a run while it is acquired.
"""

from ._figures import (
    match_references,
    pixel_relative_error,
    plot_clusters,
    plot_eigen,
    plot_energies,
    plot_error_map,
    plot_sampling,
    sampling_steps,
)
from ._live import LiveCompletionPlot
from ._run import FIGURE_NAMES, figures_for_run

__all__ = [
    "plot_sampling",
    "plot_energies",
    "plot_eigen",
    "plot_clusters",
    "plot_error_map",
    "figures_for_run",
    "FIGURE_NAMES",
    "LiveCompletionPlot",
    "sampling_steps",
    "match_references",
    "pixel_relative_error",
]
