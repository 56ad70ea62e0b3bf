"""Likelihood-free inference: neural ratio/score estimators, posteriors and diagnostics.

>>> import numpy as np, activesci as asci
>>> from activesci.inference import ExactLikelihood, GridPosterior
>>> task = asci.tasks.gaussian()
>>> post = GridPosterior(task.parameters, simulator=task.simulator)
>>> obs = task.experiment(seed=0).run([np.pi])
>>> round(float(post.update(obs, ExactLikelihood(task.simulator)).std()[0]), 3)
0.302
"""

from activesci._lazy import lazy_attributes

#: Every name is imported on first use: the neural estimators need torch, and the rest
#: scipy.stats; a workflow step (``activesci simulate``, ``sample-training``) that needs neither
#: starts 0.2 s sooner, and one that simulates training data runs with numpy and scipy alone.
_LAZY_NAMES = {
    "METHODS": "methods",
    "ExactLikelihood": "likelihood",
    "GridPosterior": "grid",
    "LogRatioEstimator": "likelihood",
    "SamplePosterior": "particles",
    "RatioEstimator": "ratio",
    "ScoreEstimator": "ratio",
    "TrainingData": "training",
    "simulate_training_data": "training",
    "closure": "diagnostics",
    "coverage": "diagnostics",
}


__getattr__ = lazy_attributes(__name__, _LAZY_NAMES)


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
    "coverage",
    "simulate_training_data",
]
