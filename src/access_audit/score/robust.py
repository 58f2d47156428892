"""scikit-learn's MinCovDet, without its per-call input checks.

FastMCD computes a covariance thousands of times on small arrays, and in scikit-learn 1.9 each
`empirical_covariance` call runs `check_array`, whose dataframe detection costs more than the
covariance itself: about half of a 10,000-staff day's pattern model. MinCovDet takes that function
from its `_nonrobust_covariance` attribute; the matrices here are finite float64 arrays this
package builds, so a subclass gives it the same computation without the checks (numpy's biased
covariance, exactly as scikit-learn computes it: the estimates are bitwise identical, which
tests/test_indicators.py holds).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np


def _covariance(data: Any, *, assume_centered: bool = False) -> Any:
    """scikit-learn's `empirical_covariance` for a finite 1-D or 2-D float array."""
    data = np.asarray(data)
    if data.ndim == 1:
        data = np.reshape(data, (1, -1))
    if assume_centered:
        covariance = np.dot(data.T, data) / data.shape[0]
    else:
        covariance = np.cov(data.T, bias=True)
    if covariance.ndim == 0:
        covariance = np.array([[covariance]])
    return covariance


def min_cov_det(matrix: np.ndarray, checked: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The robust location and covariance of `matrix`'s rows (MinCovDet, random_state 0), with
    scikit-learn's own checks when `checked`. Raises ValueError as MinCovDet does."""
    # imported here: scikit-learn takes seconds to import, and `review` needs the rules (this
    # package) but never a peer model
    from sklearn import config_context
    from sklearn.covariance import MinCovDet

    class UncheckedMinCovDet(MinCovDet):  # type: ignore[misc]
        _nonrobust_covariance = staticmethod(_covariance)

    estimator = MinCovDet if checked else UncheckedMinCovDet
    with (
        config_context(assume_finite=True, skip_parameter_validation=True),
        warnings.catch_warnings(),
    ):
        # Shares that are zero for most peers make a low-rank cloud; MCD's estimate is still the
        # robust centre wanted, so its rank warnings are expected here.
        warnings.filterwarnings("ignore", message="The covariance matrix associated")
        warnings.filterwarnings("ignore", message="Determinant has increased")
        model = estimator(random_state=0).fit(matrix)
    return model.location_, model.covariance_
