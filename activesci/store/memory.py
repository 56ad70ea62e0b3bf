"""A run store in memory: the same checks as on disk, nothing written."""

from __future__ import annotations

from typing import Any

from activesci.errors import StoreError, ValidationError
from activesci.store.values import _check_summary_round, _dumps, _jsonable, _round_number
from activesci.typing import Observation

__all__ = ["MemoryRunStore"]


class MemoryRunStore:
    """A :class:`~activesci.typing.RunStore` in memory: same checks, nothing on disk.

    For notebooks and tests where a run need not survive the kernel; pass a folder to
    ``ActiveLearner(store=...)`` for a resumable :class:`SQLiteRunStore` instead.

    Examples
    --------
    >>> store = MemoryRunStore()
    >>> store.write_metadata({"task": "gaussian"})
    >>> store.metadata()
    {'task': 'gaussian'}
    """

    def __init__(self) -> None:
        self._metadata: dict[str, Any] | None = None
        self._observations: list[Observation] = []
        self._rounds: dict[int, dict[str, Any]] = {}
        self._checkpoints: dict[str, bytes] = {}

    def write_metadata(self, metadata: dict[str, Any]) -> None:
        """Record the run's settings once (an identical rewrite is a no-op)."""
        value = _jsonable(metadata, "metadata")
        if self._metadata is not None and _dumps(value) != _dumps(self._metadata):
            raise StoreError("this run's metadata is already written and differs")
        self._metadata = value

    def metadata(self) -> dict[str, Any]:
        """The settings written by :meth:`write_metadata` (``{}`` before)."""
        return dict(self._metadata or {})

    def append_observation(self, round: int, observation: Observation) -> None:
        """Keep the observation of ``round`` (rounds in order, no gaps)."""
        r = _round_number(round, "observation")
        if not isinstance(observation, Observation):
            raise ValidationError(f"expected an Observation, got {type(observation).__name__}")
        if r != len(self._observations):
            raise StoreError(
                f"round {r} already has an observation"
                if r < len(self._observations)
                else f"cannot append round {r}: the next round is {len(self._observations)}"
            )
        self._observations.append(observation)

    def observations(self) -> list[tuple[int, Observation]]:
        """All observations with their rounds."""
        return list(enumerate(self._observations))

    def append_round(self, round: int, summary: dict[str, Any]) -> None:
        """Keep (or replace) a round's summary; its observation must be kept already."""
        r = _round_number(round, "summary")
        value = _jsonable(summary, "summary")
        _check_summary_round(r, len(self._observations), len(self._rounds), "this run")
        self._rounds[r] = value

    def rounds(self) -> list[dict[str, Any]]:
        """All round summaries, in order, each with its ``round``."""
        return [{"round": r, **self._rounds[r]} for r in sorted(self._rounds)]

    def save_checkpoint(self, name: str, data: bytes) -> None:
        """Keep (or replace) a named binary checkpoint."""
        self._checkpoints[str(name)] = bytes(data)

    def load_checkpoint(self, name: str) -> bytes | None:
        """The checkpoint called ``name``, or ``None``."""
        return self._checkpoints.get(name)
