"""Experimental design: the expected information gain and the strategies that use it.

Every name is imported on first use from the module that defines it; ``__all__`` lists them.
"""

from activesci._lazy import lazy_attributes

#: The public names by the module that defines them.
_MODULES = {
    "optimizer": (
        "STRATEGIES",
        "DesignContext",
        "DesignOptimizer",
        "make_strategy",
        "register_strategy",
    ),
    "utility": (
        "EIG_ESTIMATORS",
        "EIGEstimate",
        "contrastive_information_gain",
        "expected_information_gain",
        "register_eig_estimator",
    ),
    "nested": ("SimulatedExperiments", "simulate_experiments"),
}

__getattr__ = lazy_attributes(__name__, {n: m for m, names in _MODULES.items() for n in names})

__all__ = sorted(n for names in _MODULES.values() for n in names)
