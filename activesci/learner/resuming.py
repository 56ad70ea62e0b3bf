"""Resuming a run: rebuild the learner from its store and replay the stored observations."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from activesci.errors import StoreError
from activesci.learner.state import RoundState
from activesci.learner.stored import _PENDING, _REFINED_AT, _resume_options
from activesci.typing import (
    Progress,
    check_count,
)

if TYPE_CHECKING:
    from activesci.learner.loop import ActiveLearner

__all__ = ["Resumable"]


class Resumable:
    """Resume and replay (a mixin of :class:`~activesci.learner.ActiveLearner`)."""

    # -- resume -------------------------------------------------------------------------------
    @classmethod
    def resume(
        cls,
        path: str | os.PathLike[str],
        *,
        progress: Progress = True,
        allow_images: Sequence[str] = (),
        allow_plugins: bool = False,
    ) -> ActiveLearner:
        """Continue the run stored in ``path``: rebuild it and replay its observations.

        The learner comes back trained (:meth:`~activesci.learner.ActiveLearner.train`).

        A run killed during its first training is resumed too: the training is redone.
        Runs with a recorded, manual or custom experiment are resumed by constructing the
        learner with the same settings and ``experiment=...``, ``store=path``.

        The store is data: a stored workflow experiment is rebuilt with
        :meth:`~activesci.workflow.experiment.WorkflowExperiment.from_config`, so it runs only
        local ``localhost/activesci-*`` images, or those the caller lists in ``allow_images``,
        and its work folder must lie inside ``path``. A task stored as
        ``"package.module:function"`` (a factory of your own) is rebuilt by importing that
        module only with ``allow_plugins=True``: the store names the code to run.

        Raises
        ------
        StoreError
            The store is missing, locked by another writer, or holds malformed settings.
        ValidationError
            The stored experiment names an image not allowed, or a work folder outside
            ``path``; or the task names a module and ``allow_plugins`` is false.
        """
        from activesci.store import SQLiteRunStore

        store = SQLiteRunStore.open(path)
        try:
            options = _resume_options(store, allow_images=allow_images, allow_plugins=allow_plugins)
        except BaseException:
            store.close()
            raise
        return cls(**options, store=store, progress=progress).train()

    def _replay(self) -> None:
        """Rebuild the state after the observations already in the store (a resumed run)."""
        stored = self.store.observations()
        start, designs, record = self._stored_pending()
        if not stored:
            self._restore_pending(start, designs, record)
            return
        skip = getattr(self.experiment, "skip", None)
        if callable(skip):
            skip([obs for _, obs in stored])  # a recorded experiment must not replay them
        if self.inference == "sequential":
            for n, (_, obs) in enumerate(stored, start=1):
                self._absorb(n, obs)  # trainings come from their checkpoints
        else:
            self._replay_amortised(len(stored))
        if self.inference != "sequential":
            self._score_check(len(stored))  # the last round's, as it was stored
        cost = None
        for _, obs in stored:
            cost = self._cost_of(obs.design)
            self._ran(obs.design, cost)
        if stored[-1][0] not in {r["round"] for r in self.store.rounds()}:
            k, obs = stored[-1]  # killed between storing the data and its summary
            state = RoundState(
                k, obs.design, obs, self.posterior, record if k == start else {},
                check=self.check, batch_start=start if self.batch > 1 else None,
                cost=cost, total_cost=None if cost is None else self.total_cost,
            )  # fmt: skip
            self.store.append_round(k, state.summary())
        self.round = len(stored)
        self._restore_pending(start, designs, record)

    def _stored_pending(self) -> tuple[int, list[Any], dict[str, Any]]:
        """The designs last asked, as stored (data: checked), with their start and record."""
        data = self.store.load_checkpoint(_PENDING)
        if data is None:
            return -1, [], {}
        where = getattr(self.store, "path", "the store")
        try:
            pending = json.loads(data)
            start = check_count(pending["start"], "start")
            attempt = check_count(pending.get("attempt", 0), "attempt")
            designs = list(self.task.designs.validate(pending["designs"]))
            record = pending["record"]
            if not isinstance(record, dict):
                raise TypeError(f"record is a {type(record).__name__}")
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(
                f"{where}: the stored pending designs are malformed ({exc!r:.200})"
            ) from None
        if any(e["start"] == start and e["attempt"] == attempt for e in self._abandoned):
            return -1, [], {}  # abandoned: the next ask proposes afresh
        return start, designs, record

    def _restore_pending(self, start: int, designs: list[Any], record: dict[str, Any]) -> None:
        """Designs asked (stored before they ran) and not told: ask returns them again."""
        if start <= self.round < start + len(designs):  # killed before or in a batch
            self._pending = [np.asarray(d, dtype=float) for d in designs[self.round - start :]]
            self._pending_record = record if self.round == start else {}
            self._batch_start = start

    def _replay_amortised(self, n: int) -> None:
        """Rebuild the posterior of the first ``n`` stored observations (amortised mode)."""
        last_refined = self._last_refinement(self._designs_run(n))
        if last_refined and self.store.load_checkpoint(_REFINED_AT) != str(last_refined).encode():
            self._refine(last_refined)  # killed before the refinement was stored: redo it
        self.posterior = self._new_posterior()
        for _, obs in self.store.observations()[:n]:
            self.posterior.update(obs, self.inference_estimator)
