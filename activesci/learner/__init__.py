"""The active learner: design an experiment, run it, learn from it, repeat.

``ActiveLearner`` is ask/tell first: ``ask()`` proposes the next design (the same one until
``tell``), ``tell(design, observation)`` stores the observation *before* the posterior uses it
and returns the round's state. ``iterate(rounds)`` is a generator over rounds and ``run`` just
consumes it. Every random stream is derived from ``(seed, round)``, so
``ActiveLearner.resume(path)`` after a crash replays the stored observations and continues
exactly as the uninterrupted run would have.

The package: :mod:`~activesci.learner.loop` (the class and its ask/tell loop),
:mod:`~activesci.learner.sequential` (how a learned posterior follows the data: local
trainings, regrids, self-check retrainings, refinement), :mod:`~activesci.learner.resuming`
(rebuilding a run from its store), :mod:`~activesci.learner.stored` (what a run stores and how
it is read back), :mod:`~activesci.learner.designs` (the designs a training covers) and
:mod:`~activesci.learner.state` (a round's state and summary).
"""

from activesci.learner.loop import ActiveLearner
from activesci.learner.state import RoundState

__all__ = ["ActiveLearner", "RoundState"]
