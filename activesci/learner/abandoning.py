"""Abandoned designs: an experiment that cannot run is a state of the run, not its end.

As Ax's abandoned and failed trials: :meth:`Abandoning.abandon` drops the designs asked and not
yet told (a beam energy the machine cannot reach, a container step that keeps failing), stores
that with the reason before anything else happens, and the next ``ask`` proposes afresh. The
strategies see every abandoned design (``DesignContext.abandoned``) and do not propose one
again; their random streams move on (``DesignContext.attempt``), so a resumed run takes the
same path.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from activesci.errors import StoreError, ValidationError
from activesci.learner.stored import _ABANDONED

__all__ = ["Abandoning"]


class Abandoning:
    """Abandoning asked designs (a mixin of :class:`~activesci.learner.ActiveLearner`)."""

    def abandon(self, reason: str = "") -> np.ndarray:
        """Drop the designs asked and not yet told; the next ``ask`` proposes afresh.

        Parameters
        ----------
        reason : str
            Why (stored with the designs; ``iterate(on_failure="abandon")`` gives the error).

        Returns
        -------
        numpy.ndarray
            The abandoned designs, ``(q, D)``.

        Raises
        ------
        ValidationError
            No design is pending (ask first), or ``reason`` is not a string.
        """
        if not isinstance(reason, str):
            raise ValidationError(f"reason must be a string, got {type(reason).__name__}")
        if not self._pending:
            raise ValidationError("no design is pending: there is nothing to abandon (ask first)")
        designs = np.array(self._pending)
        entry = {
            "round": self.round,
            "start": self._batch_start,
            "attempt": self._attempt_at(self._batch_start),
            "designs": designs.tolist(),
            "reason": reason[:2000],
        }
        entries = [*self._abandoned, entry]
        self.store.save_checkpoint(_ABANDONED, json.dumps(entries).encode())  # before use
        self._abandoned = entries
        self._pending, self._pending_record = [], {}
        self.events.abandoned(self, designs, reason)
        return designs

    @property
    def abandoned(self) -> list[dict[str, Any]]:
        """What was abandoned: ``round``, ``designs`` ``(q, D)`` lists and ``reason``, in order."""
        return [
            {"round": e["round"], "designs": e["designs"], "reason": e["reason"]}
            for e in self._abandoned
        ]

    def _attempt_at(self, start: int) -> int:
        """How many proposals made at round ``start`` were abandoned."""
        return sum(e["start"] == start for e in self._abandoned)

    def _abandoned_designs(self) -> np.ndarray:
        """Every abandoned design, ``(k, D)``."""
        rows = [d for e in self._abandoned for d in e["designs"]]
        return np.array(rows, dtype=float).reshape(-1, len(self.task.designs))

    def _load_abandoned(self) -> list[dict[str, Any]]:
        """The stored abandonment log (data: checked)."""
        data = self.store.load_checkpoint(_ABANDONED)
        if data is None:
            return []
        where = getattr(self.store, "path", "the store")
        try:
            entries = json.loads(data)
            if not isinstance(entries, list):
                raise TypeError(f"a {type(entries).__name__}, not a list")
            for e in entries:
                for key in ("round", "start", "attempt"):
                    if not (isinstance(e[key], int) and e[key] >= 0):
                        raise ValueError(f"{key} {e[key]!r}")
                self.task.designs.validate(e["designs"])
                if not isinstance(e["reason"], str):
                    raise TypeError("reason is not a string")
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(
                f"{where}: the stored abandoned designs are malformed ({exc!r:.200})"
            ) from None
        return entries

    def _refuse_abandoned(self, designs: list[np.ndarray], context: Any) -> None:
        """Refuse a proposal that repeats an abandoned design (a strategy that cannot move).

        ``context`` is the proposal's :class:`~activesci.design.optimizer.DesignContext`,
        whose ``allowed`` says what counts as the same design.
        """
        refused = ~context.allowed(np.array(designs))
        if refused.any():
            again = designs[int(np.argmax(refused))]
            raise ValidationError(
                f"the strategy {self._strategy_spec['name']!r} proposed {again.tolist()} again, "
                f"which was abandoned; choose a strategy that can move elsewhere"
            )
