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
    contrastive_information_gain,
    expected_information_gain,
)

__all__ = [
    "STRATEGIES",
    "DesignContext",
    "DesignOptimizer",
    "EIGEstimate",
    "contrastive_information_gain",
    "expected_information_gain",
    "make_strategy",
    "register_strategy",
]
