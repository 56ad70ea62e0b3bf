"""Experimental design: the expected information gain and the strategies that use it."""

from activesci.design.optimizer import (
    STRATEGIES,
    DesignContext,
    DesignOptimizer,
    make_strategy,
    register_strategy,
)
from activesci.design.utility import (
    EIGEstimate,
    SimulatedExperiments,
    contrastive_information_gain,
    expected_information_gain,
    simulate_experiments,
)

__all__ = [
    "STRATEGIES",
    "DesignContext",
    "DesignOptimizer",
    "EIGEstimate",
    "SimulatedExperiments",
    "contrastive_information_gain",
    "expected_information_gain",
    "make_strategy",
    "register_strategy",
    "simulate_experiments",
]
