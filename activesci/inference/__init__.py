"""Likelihood-free inference: neural ratio/score estimators, posteriors and diagnostics.

>>> import numpy as np, activesci as asci
>>> from activesci.inference import ExactLikelihood, GridPosterior
>>> task = asci.tasks.gaussian()
>>> post = GridPosterior(task.parameters, simulator=task.simulator)
>>> obs = task.experiment(seed=0).run([np.pi])
>>> round(float(post.update(obs, ExactLikelihood(task.simulator)).std()[0]), 3)
0.302
"""

from activesci.inference.diagnostics import closure, closure_figure, coverage, coverage_figure
from activesci.inference.posterior import (
    ExactLikelihood,
    GridPosterior,
    LogRatioEstimator,
    SamplePosterior,
)
from activesci.inference.ratio import METHODS, RatioEstimator, ScoreEstimator
from activesci.inference.training import TrainingData, simulate_training_data

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
