"""Excursion-set (level-set) estimation: where an expensive ``f`` crosses its thresholds.

A Gaussian process models ``f`` and an acquisition chooses the evaluations that most reduce the
uncertainty of the classification ``f > t`` over a grid (Heinrich, Cranmer and Stark,
"Excursion set estimation using sequential entropy reduction"). ``ask``/``tell`` first:

>>> from activesci.excursion import TEST_FUNCTIONS, ExcursionSearch
>>> search = ExcursionSearch.from_test_function(TEST_FUNCTIONS["tanh_sine_1d"], seed=0)
>>> search.run(12).history[-1]["accuracy"] >= 0.99
True
"""

from activesci.excursion.acquisition import (
    ACQUISITIONS,
    Acquisition,
    AcquisitionContext,
    EntropyAcquisition,
    GPPosterior,
    MaxVarianceAcquisition,
    RandomAcquisition,
    class_entropy,
    class_probabilities,
    expected_entropy,
    lookahead,
    make_acquisition,
    register_acquisition,
)
from activesci.excursion.contour import (
    ContourProblem,
    LikelihoodRatioStatistic,
    chi2_threshold,
    weinberg_contour,
)
from activesci.excursion.metrics import accuracy, excursion_volume, volume_error
from activesci.excursion.search import DEFAULT_RESOLUTION, ExcursionSearch, default_kernel
from activesci.excursion.testfunctions import TEST_FUNCTIONS, TestFunction

__all__ = [
    "ACQUISITIONS",
    "DEFAULT_RESOLUTION",
    "TEST_FUNCTIONS",
    "Acquisition",
    "AcquisitionContext",
    "ContourProblem",
    "EntropyAcquisition",
    "ExcursionSearch",
    "GPPosterior",
    "LikelihoodRatioStatistic",
    "MaxVarianceAcquisition",
    "RandomAcquisition",
    "TestFunction",
    "accuracy",
    "chi2_threshold",
    "class_entropy",
    "class_probabilities",
    "default_kernel",
    "excursion_volume",
    "expected_entropy",
    "lookahead",
    "make_acquisition",
    "register_acquisition",
    "volume_error",
    "weinberg_contour",
]
