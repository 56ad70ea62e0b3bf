"""Loop events: views and user code subscribe to what the learner does, instead of being wired in.

As emukit's loop events: ``learner.events.told.subscribe(callback)`` runs ``callback(learner,
state)`` after every told experiment (stored first: a callback that raises loses nothing).

>>> import activesci as asci
>>> learner = asci.ActiveLearner("gaussian", estimator="exact", strategy="fixed", seed=1)
>>> rounds = []
>>> stop = learner.events.told.subscribe(lambda learner, state: rounds.append(state.round))
>>> _ = learner.run(2)
>>> stop()  # unsubscribe
>>> _ = learner.run(1)
>>> rounds
[0, 1]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from activesci.errors import ValidationError

__all__ = ["Event", "LoopEvents"]


class Event:
    """Callbacks run, in the order subscribed, each time the event happens."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._callbacks: list[Callable[..., Any]] = []

    def subscribe(self, callback: Callable[..., Any]) -> Callable[[], None]:
        """Run ``callback`` on every occurrence; returns a function that unsubscribes it.

        Raises
        ------
        ValidationError
            ``callback`` is not callable.
        """
        if not callable(callback):
            raise ValidationError(f"a {self.name} callback must be callable, got {callback!r:.80}")
        self._callbacks.append(callback)

        def unsubscribe() -> None:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

        return unsubscribe

    def __call__(self, *args: Any) -> None:
        """Run every callback with ``args``."""
        for callback in list(self._callbacks):
            callback(*args)

    def __len__(self) -> int:
        return len(self._callbacks)

    def __repr__(self) -> str:
        return f"Event({self.name!r}, {len(self)} callback(s))"


@dataclass
class LoopEvents:
    """What an :class:`~activesci.learner.ActiveLearner` announces.

    Attributes
    ----------
    trained : Event
        ``callback(learner)`` once :meth:`~activesci.learner.ActiveLearner.train` is done.
    asked : Event
        ``callback(learner, designs)`` after the strategy chose ``designs`` ``(q, D)`` (stored).
    told : Event
        ``callback(learner, state)`` after each experiment is told (its state stored).
    abandoned : Event
        ``callback(learner, designs, reason)`` after asked designs were abandoned (stored).
    """

    trained: Event = field(default_factory=lambda: Event("trained"))
    asked: Event = field(default_factory=lambda: Event("asked"))
    told: Event = field(default_factory=lambda: Event("told"))
    abandoned: Event = field(default_factory=lambda: Event("abandoned"))
