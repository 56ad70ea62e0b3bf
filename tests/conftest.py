import numpy as np
import pytest
from scipy import stats


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261123)


def chi2_pvalue(counts: np.ndarray, probs: np.ndarray) -> float:
    """p-value of a Pearson chi-square test of histogram ``counts`` against bin ``probs``."""
    expected = counts.sum() * probs / probs.sum()
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    return float(stats.chi2.sf(chi2, df=len(counts) - 1))


def closure_against_exact(simulator, posterior) -> dict:
    """``closure`` of a learned posterior against the exact one of its data, on its grid."""
    from activesci.inference import ExactLikelihood, GridPosterior, closure

    exact = GridPosterior(posterior.space, posterior.shape, simulator=simulator)
    for obs in posterior.observations:
        exact.update(obs, ExactLikelihood(simulator))
    return closure(exact, posterior)


import _hypothesis_profiles  # noqa: E402, F401  (registers and loads the hypothesis profiles)
