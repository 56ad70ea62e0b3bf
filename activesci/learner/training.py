"""Readying the learner's estimator: the costly step, out of the constructor.

:meth:`Trainable.train` loads the estimator from the run store where it is checkpointed,
else takes one shipped trained with the package (:mod:`activesci.inference.pretrained`),
else trains one and checkpoints it; then it replays a resumed store.
"""

from __future__ import annotations

from typing import Any, Self

from activesci.inference import pretrained
from activesci.inference.likelihood import ExactLikelihood
from activesci.inference.ratio import RatioEstimator
from activesci.learner.stored import _CHECKPOINT, _REFINED, _dump_estimator, _load_estimator

__all__ = ["Trainable"]


class _Readied:
    """An attribute whose first reading readies the learner (:meth:`Trainable.train`)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.slot = f"_{name}"

    def __get__(self, learner: Any, owner: type | None = None) -> Any:
        if learner is None:
            return self
        learner.train()
        return getattr(learner, self.slot)

    def __set__(self, learner: Any, value: Any) -> None:
        setattr(learner, self.slot, value)


class Trainable:
    """The estimator's readiness (a mixin of :class:`~activesci.learner.ActiveLearner`)."""

    def train(self) -> Self:
        """Ready the estimator and catch up with the stored rounds: the learner's costly step.

        The estimator is loaded from the run store where it is checkpointed, else a pretrained
        one shipped with the package is taken, else one is trained (``training_samples``
        simulations, reported to ``progress``) and checkpointed; then the observations a
        resumed store holds are replayed. :meth:`ask`, :meth:`tell`, :meth:`iterate` and
        :meth:`run` call it first: call it yourself to train when you choose (a view showing
        the training). Does nothing once done.

        Returns
        -------
        ActiveLearner
            This learner, trained (so ``ActiveLearner(...).train()`` chains).
        """
        if self._trained or self._training:
            return self
        self._training = True
        try:
            self.estimator = self._make_estimator(self._given_estimator)
            self.inference_estimator = self.estimator
            refined = self.store.load_checkpoint(_REFINED)
            if refined is not None and self.inference == "amortised":
                self.inference_estimator = _load_estimator(refined)
            self._replay()
        finally:
            self._training = False
        self._trained = True
        self.events.trained(self)
        return self

    #: The estimator that chooses designs (and, but in sequential mode, infers); reading it
    #: readies the learner (:meth:`train`).
    estimator = _Readied()
    #: The estimator that turns data into the posterior; reading it readies the learner.
    inference_estimator = _Readied()

    @property
    def trained(self) -> bool:
        """Whether :meth:`train` has run (the estimator is ready and the store replayed)."""
        return self._trained

    def _make_estimator(self, estimator: Any) -> Any:
        """The estimator of ``self._estimator_spec``: loaded from the store, given, or trained."""
        sim = self.task.simulator
        spec = self._estimator_spec
        if spec["kind"] == "exact":
            return ExactLikelihood(sim)
        if spec["kind"] == "object":
            return estimator
        saved = self.store.load_checkpoint(_CHECKPOINT)
        if isinstance(estimator, RatioEstimator):
            est = estimator  # trained: checkpointed, unless one is stored already
        elif saved is not None:
            return _load_estimator(saved)
        else:
            est = None
            if self._pretrained:
                est = pretrained.find(sim, estimator, self._training_samples, self.seed)
            if est is None:
                est = RatioEstimator(sim, method=estimator)
                est.train(n_samples=self._training_samples, seed=self.seed, progress=self.progress)
        if saved is None:
            self.store.save_checkpoint(_CHECKPOINT, _dump_estimator(est))
        return est
