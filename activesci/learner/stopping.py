"""When a loop stops: conditions on the learner's state, combined with ``&`` and ``|``.

Like emukit's stopping conditions, each is a test of the learner after a round (after a whole
batch); :meth:`~activesci.learner.ActiveLearner.iterate` takes one as ``stop=`` besides its
``rounds`` and its shorthand keywords (``target_std=``, ``max_luminosity=``, ``max_cost=``,
which build these).

>>> import activesci as asci
>>> learner = asci.ActiveLearner("gaussian", estimator="exact", strategy="fixed", seed=1)
>>> states = list(learner.iterate(20, stop=TargetStd(0.3) | MaxLuminosity(1e9)))
>>> len(states), round(float(learner.posterior.std()[0]), 3)  # 1 / sqrt(1 + 10 k): 0.302, 0.218
(2, 0.218)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from activesci.errors import ValidationError
from activesci.typing import check_positive

__all__ = ["MaxCost", "MaxLuminosity", "StoppingCondition", "TargetStd", "as_condition"]


class StoppingCondition:
    """A test of the learner after a round: ``condition(learner) -> bool`` (True: stop).

    ``a & b`` stops when both hold, ``a | b`` when either does. A subclass implements
    :meth:`should_stop`; any function of the learner can be wrapped with :func:`as_condition`.
    """

    def should_stop(self, learner: Any) -> bool:
        """Whether the loop should stop after the round just told."""
        raise NotImplementedError

    def __call__(self, learner: Any) -> bool:
        """:meth:`should_stop` as a bool."""
        return bool(self.should_stop(learner))

    def __and__(self, other: Any) -> StoppingCondition:
        return _Combined(all, (self, as_condition(other)))

    def __or__(self, other: Any) -> StoppingCondition:
        return _Combined(any, (self, as_condition(other)))


@dataclass(frozen=True)
class _Combined(StoppingCondition):
    how: Callable[[Any], bool]
    parts: tuple[StoppingCondition, ...]

    def should_stop(self, learner: Any) -> bool:
        return self.how(part(learner) for part in self.parts)


@dataclass(frozen=True)
class _Function(StoppingCondition):
    function: Callable[[Any], Any]

    def should_stop(self, learner: Any) -> bool:
        return bool(self.function(learner))


def as_condition(condition: Any) -> StoppingCondition:
    """A :class:`StoppingCondition`, or a function ``f(learner) -> bool`` made one.

    Raises
    ------
    ValidationError
        ``condition`` is neither.
    """
    if isinstance(condition, StoppingCondition):
        return condition
    if callable(condition):
        return _Function(condition)
    raise ValidationError(
        f"a stopping condition is a StoppingCondition or a function of the learner, got "
        f"{condition!r:.80}"
    )


@dataclass(frozen=True)
class _Threshold(StoppingCondition):
    """Stops once a level of the learner reaches ``value`` (from below, or from above)."""

    value: float
    option: ClassVar[str]  # the keyword of ``iterate`` it stands for, in messages
    falling: ClassVar[bool] = False  # the level falls to ``value`` (a width), else it rises

    def __post_init__(self) -> None:
        check_positive(self.value, self.option)

    def _level(self, learner: Any) -> float:
        raise NotImplementedError

    def should_stop(self, learner: Any) -> bool:
        """Whether the level has reached ``value``."""
        level = self._level(learner)
        return bool(level <= self.value if self.falling else level >= self.value)


class TargetStd(_Threshold):
    """Every parameter's posterior standard deviation is at most ``value``."""

    option, falling = "target_std", True

    def _level(self, learner: Any) -> float:
        return float(np.max(learner.posterior.std()))


class MaxLuminosity(_Threshold):
    """The observations' total luminosity has reached ``value``."""

    option = "max_luminosity"

    def _level(self, learner: Any) -> float:
        return float(learner.luminosity)


class MaxCost(_Threshold):
    """The total cost of the experiments run has reached ``value`` (needs a cost model)."""

    option = "max_cost"

    def _level(self, learner: Any) -> float:
        return float(learner.total_cost)
