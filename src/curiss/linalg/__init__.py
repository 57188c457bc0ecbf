"""Pure numerical kernels of curiss (numpy/scipy only; no state, no I/O).

References
----------
- Meier et al., CURISS/ACURISS subsampled spectromicroscopy, arXiv:2602.03744.
- Cortinovis & Kressner (2024), adaptive randomized pivoting (:func:`arp`).
- Businger & Golub (1965), column-pivoted QR (:func:`pivoted_rows`).
- Tanner & Wei (2016), alternating steepest descent (:func:`asd`).
- Townsend et al. (2022), LoopedASD (:func:`looped_asd`).
"""

from ._arp import arp
from ._asd import ASDResult, asd, looped_asd
from ._budget import RatioTooSmallError, balanced_budget, budget, images_first_budget, minimum_ratio
from ._cur import CURResult, cur_complete
from ._leverage import leverage_scores, weighted_sample
from ._pivoted import pivoted_rows, residual_row_norms
from ._unfold import row_basis, row_pixels, unfold_images

__all__ = [
    "ASDResult",
    "CURResult",
    "RatioTooSmallError",
    "arp",
    "asd",
    "balanced_budget",
    "budget",
    "cur_complete",
    "images_first_budget",
    "leverage_scores",
    "looped_asd",
    "minimum_ratio",
    "pivoted_rows",
    "residual_row_norms",
    "row_basis",
    "row_pixels",
    "unfold_images",
    "weighted_sample",
]
