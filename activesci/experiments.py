"""Experiments: where observations come from.

:class:`SimulatedExperiment` plays nature with a hidden truth; recorded and manual experiments
follow with the active learner.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from activesci.errors import ShapeError
from activesci.spaces import Space
from activesci.typing import Observation, Simulator

__all__ = ["SimulatedExperiment"]


class SimulatedExperiment:
    """An experiment simulated with a hidden true ``theta``.

    Parameters
    ----------
    simulator : Simulator
        Any simulator with ``run_experiment``.
    truth : mapping or array_like
        The true parameters (validated against ``simulator.parameters``).
    seed : int, optional
        Seed of the experiment's own random streams: run ``k`` draws from
        ``default_rng([seed, k])``, so the same seed replays the same data, also in a resumed
        run that starts counting at ``runs``.
    runs : int
        Runs already done (a resumed run continues the sequence).

    Examples
    --------
    >>> from activesci.simulators import GaussianSimulator
    >>> exp = SimulatedExperiment(GaussianSimulator(), {"mu0": 0.3}, seed=1)
    >>> exp.run({"phase": 3.14}).n
    10
    """

    def __init__(
        self, simulator: Simulator, truth: Any, seed: int | None = None, *, runs: int = 0
    ) -> None:
        self.simulator = simulator
        self._truth = simulator.parameters.validate(truth)
        if len(self._truth) != 1:
            raise ShapeError(f"truth must be one point, got {len(self._truth)}")
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self.runs = int(runs)

    @property
    def designs(self) -> Space:
        """The designs this experiment can run."""
        return self.simulator.designs

    @property
    def truth(self) -> dict[str, Any]:
        """The hidden truth (for teaching mode and validation; a learner must not read it)."""
        return self.simulator.parameters.to_dict(self._truth)

    def __repr__(self) -> str:
        return f"SimulatedExperiment({self.simulator!r}, truth=<hidden>, seed={self.seed})"

    def run(self, design: Any) -> Observation:
        """Run the experiment once at ``design``."""
        point = self.designs.validate(design)
        rng = self._rng if self.seed is None else np.random.default_rng([self.seed, self.runs])
        obs = self.simulator.run_experiment(self._truth, point, rng)
        self.runs += 1
        return Observation(
            design=obs.design,
            x=obs.x,
            luminosity=obs.luminosity,
            meta={"seed": self.seed, "run": self.runs},
        )
