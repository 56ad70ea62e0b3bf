"""Shared plumbing of activesci's simulators: input checking, broadcasting and experiments."""

from __future__ import annotations

from typing import Any

import numpy as np

from activesci.errors import ShapeError, ValidationError
from activesci.spaces import Space
from activesci.typing import (
    MAX_EVENTS,
    Events,
    Observation,
    capabilities_of,
    check_count,
    check_generator,
)

__all__ = ["SimulatorBase", "experiment_size"]


def experiment_size(
    simulator: Any, theta: np.ndarray, design: np.ndarray, rng: np.random.Generator
) -> int:
    """The number of events of one experiment at one ``theta`` ``(1, P)`` and ``design`` ``(1, D)``.

    Poisson with mean ``expected_count`` where the simulator has it (drawn from ``rng``), else
    ``events_per_experiment`` (default 100).

    Raises
    ------
    ValidationError
        The expected count is not a finite number in ``[0, MAX_EVENTS]`` (e.g. a negative
        count from the simulator, or a luminosity too large to simulate).
    """
    if "expected_count" not in capabilities_of(simulator):
        return check_count(
            getattr(simulator, "events_per_experiment", 100),
            "events_per_experiment",
            maximum=MAX_EVENTS,
        )
    mean = np.asarray(simulator.expected_count(theta, design), dtype=float).reshape(-1)
    if mean.shape != (1,) or not (np.isfinite(mean[0]) and 0 <= mean[0] <= MAX_EVENTS):
        raise ValidationError(
            f"expected_count at theta={theta.tolist()}, design={design.tolist()} is "
            f"{mean.tolist()}; expected one finite number in [0, {MAX_EVENTS:.0e}] (a "
            f"luminosity or cross-section that large cannot be simulated)"
        )
    return int(rng.poisson(mean[0]))


class SimulatorBase:
    """Input validation and the default ``run_experiment`` for simulators.

    Subclasses set ``parameters`` and ``designs`` and implement ``_sample(theta, design, n,
    rng) -> Events`` on validated, row-broadcast arrays. ``run_experiment`` draws a Poisson
    count from ``expected_count`` when the simulator has it, else ``events_per_experiment``.
    """

    parameters: Space
    designs: Space
    #: Events per experiment for simulators without ``expected_count``.
    events_per_experiment: int = 100
    #: Integrated luminosity of one experiment, if the simulator has one.
    luminosity: float | None = None

    @property
    def capabilities(self) -> frozenset[str]:
        """The optional methods this simulator implements (see ``activesci.typing``)."""
        return capabilities_of(self)

    def rows(self, theta: Any, design: Any, n: int | None = None) -> tuple[np.ndarray, ...]:
        """Validate ``theta`` and ``design`` and broadcast their rows to a common count.

        Returns
        -------
        theta : numpy.ndarray
            Shape ``(m, P)`` with ``m`` either 1 (shared by all rows) or the common count.
        design : numpy.ndarray
            Shape ``(m', D)``, likewise.
        n : int
            The number of rows (events) requested.
        """
        th = self.parameters.validate(theta)
        de = self.designs.validate(design)
        counts = {len(th), len(de)} - {1}
        if n is not None:
            counts |= {check_count(n, "n", maximum=MAX_EVENTS)}
        if len(counts) > 1:
            raise ShapeError(
                f"cannot broadcast theta with {len(th)} rows, design with {len(de)} rows "
                f"and n={n} to one number of events"
            )
        return th, de, (counts.pop() if counts else 1)

    def _one_design(self, theta: Any, design: Any) -> tuple[np.ndarray, np.ndarray]:
        """Validate the inputs of ``log_likelihood``: many ``theta``, one ``design``.

        Returns
        -------
        theta : numpy.ndarray
            Shape ``(n_theta, P)``.
        design : numpy.ndarray
            Shape ``(1, D)``.
        """
        th = self.parameters.validate(theta)
        de = self.designs.validate(design)
        if len(de) != 1:
            raise ShapeError(f"log_likelihood takes one design, got {len(de)}")
        return th, de

    def sample(
        self, theta: Any, design: Any, rng: np.random.Generator, n: int | None = None
    ) -> Events:
        """Draw one recorded event per row.

        Parameters
        ----------
        theta : array_like or mapping
            Parameters, shape ``(n, P)`` or one point ``(P,)`` shared by all events.
        design : array_like or mapping
            Designs, shape ``(n, D)`` or one point ``(D,)``.
        rng : numpy.random.Generator
            Source of randomness (pass ``numpy.random.default_rng(seed)``).
        n : int, optional
            Number of events when both ``theta`` and ``design`` are single points.

        Returns
        -------
        Events
            ``x`` of shape ``(n, X)`` and latent ``z`` of shape ``(n, Z)``.
        """
        th, de, n = self.rows(theta, design, n)
        check_generator(rng)
        return Events.checked(self._sample(th, de, n, rng), n, type(self).__name__)

    def _sample(
        self, theta: np.ndarray, design: np.ndarray, n: int, rng: np.random.Generator
    ) -> Events:
        raise NotImplementedError

    def run_experiment(self, theta: Any, design: Any, rng: np.random.Generator) -> Observation:
        """Run one experiment with truth ``theta`` at ``design``.

        The number of recorded events is Poisson with mean ``expected_count`` where the
        simulator has one, else fixed at ``events_per_experiment``.
        """
        th, de, n = self.rows(theta, design)
        if n != 1:
            raise ShapeError(f"run_experiment takes one theta and one design, got {n} rows")
        events = self.sample(th, de, rng, n=experiment_size(self, th, de, check_generator(rng)))
        return Observation(design=de[0], x=events.x, luminosity=self.luminosity)
