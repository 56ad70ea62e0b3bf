"""Likelihood-free inference: neural ratio/score estimators, posteriors and diagnostics.

>>> import numpy as np, activesci as asci
>>> from activesci.inference import ExactLikelihood, GridPosterior
>>> task = asci.tasks.gaussian()
>>> post = GridPosterior(task.parameters, simulator=task.simulator)
>>> obs = task.experiment(seed=0).run([np.pi])
>>> round(float(post.update(obs, ExactLikelihood(task.simulator)).std()[0]), 3)
0.302
"""

import importlib
from typing import Any

from activesci.inference.diagnostics import closure, closure_figure, coverage, coverage_figure
from activesci.inference.methods import METHODS
from activesci.inference.posterior import (
    ExactLikelihood,
    GridPosterior,
    LogRatioEstimator,
    SamplePosterior,
)
from activesci.inference.training import TrainingData, simulate_training_data

#: The neural estimators need torch: imported on first use, so that simulating training data
#: (``activesci sample-training``, a container step) runs with numpy and scipy alone.
_LAZY_NAMES = {"RatioEstimator": "ratio", "ScoreEstimator": "ratio"}


def __getattr__(name: str) -> Any:
    if name in _LAZY_NAMES:
        return getattr(importlib.import_module(f"activesci.inference.{_LAZY_NAMES[name]}"), name)
    raise AttributeError(f"module 'activesci.inference' has no attribute {name!r}")


__all__ = [
    "METHODS",
    "ExactLikelihood",
    "GridPosterior",
    "LogRatioEstimator",
    "RatioEstimator",
    "SamplePosterior",
    "ScoreEstimator",
    "TrainingData",
    "closure",
    "closure_figure",
    "coverage",
    "coverage_figure",
    "simulate_training_data",
]
