"""How a learned posterior follows the data: local trainings, regrids, retrainings, refinement.

:class:`SequentialInference` is the part of :class:`~activesci.learner.ActiveLearner` that, in
the sequential mode, trains a local estimator on the prior truncated to the posterior's
region, rebuilds the posterior's grid as it narrows, and acts on the self-check; in the
amortised mode it refines the amortised estimator around the designs run. Every decision is a
function of the stored observations, so a resumed run takes the same path.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from activesci.inference.grid import DEFAULT_RESOLUTION, GridPosterior
from activesci.inference.ratio import RatioEstimator
from activesci.inference.selfcheck import MAX_EDGE_MASS, self_check, severity
from activesci.inference.sequential import CalibratedEstimator
from activesci.inference.truncation import (
    MIN_CELLS_PER_STD,
    RestrictedSimulator,
    cells_per_std,
    edge_mass,
    focus_region,
    grid_resolution,
    narrowed_space,
    shrink_factor,
    training_region,
    truncation_region,
)
from activesci.learner.designs import (
    _BAND,
    _bands,
    _box_space,
    _covered,
    _design_box,
    _inside,
    _union,
    _widths,
)
from activesci.learner.stored import _LOCAL, _REFINED, _REFINED_AT, _dump_estimator, _load_estimator
from activesci.typing import (
    Observation,
)

__all__ = ["SequentialInference"]

#: Retrain the local estimator when the truncation region has shrunk by this factor.
SHRINK = 2.0
#: At most this many (re)trainings after one observation.
MAX_TRAININGS_PER_ROUND = 3
#: Networks per local estimator when the task has several parameters: even, since members
#: train two at a time on a 2-CPU machine (four cost what three do there).
LOCAL_ENSEMBLE = 4
#: With several parameters, train beyond the grid by this fraction of its width on each side.
TRAIN_MARGIN = 0.25


class SequentialInference:
    """The learner's inference policy (a mixin of :class:`~activesci.learner.ActiveLearner`)."""

    # -- sequential inference -----------------------------------------------------------------
    def _infer_sequential(self, n: int, observation: Observation) -> None:
        """Update with a local, calibrated estimator; retrain it or regrid first where needed.

        Every decision is a function of the stored observations and seeded by ``(seed, n, k)``,
        and every training is checkpointed, so a resumed run takes the same path.
        """
        observations = [obs for _, obs in self.store.observations()][:n]
        if self.region is not None:
            self.posterior.update(observation, self.inference_estimator)
        step = MAX_TRAININGS_PER_ROUND
        for k in range(MAX_TRAININGS_PER_ROUND):
            action, reason, train, grid = self._next_step(n, observations)
            if action == "train":
                self._train_local(n, k, train, observations, reason)
                self._regrid(n, k, grid, observations, None)
            elif action == "regrid":
                self._regrid(n, k, grid, observations, reason)
            else:
                step = k
                break
        assert self.region is not None
        self.check = self._self_check(observations)
        if self.check["retrain"] is not None and self._local is not self._retried:
            # act on the check, once a round: a fresh ensemble makes fresh errors (its accuracy
            # varies from one training to the next), so of the two the learner keeps the one
            # the check finds closer to right on these data. An estimator whose retraining
            # came out worse is not retrained on the check again (it stays flagged); another
            # reason to train (a design beyond its designs, a narrower posterior) still does
            reason = f"the self-check found that {self.check['retrain']}"
            before = self._local_state()
            self._train_local(n, step, self.region, observations, reason)
            self._regrid(n, step, self.posterior.space.bounds, observations, None)
            self.check = self._self_check(observations)
            kept = severity(self.check) <= severity(before["check"])
            self._round_trainings[-1]["kept"] = kept
            if not kept:
                for name, value in before.items():
                    setattr(self, name, value)
                self._retried = self._local

    def _local_state(self) -> dict[str, Any]:
        """What a local training and its regrid replace: restored to keep the older estimator."""
        names = ("_local", "region", "_trained_designs", "inference_estimator", "posterior")
        return {name: getattr(self, name) for name in names} | {"check": self.check}

    def _self_check(self, observations: list[Observation]) -> dict[str, Any]:
        """:func:`~activesci.inference.selfcheck.self_check` of the posterior now."""
        return self_check(
            self.posterior,
            self.inference_estimator,
            observations,
            self.posterior.space.bounds,
            self.task.parameters,
        )

    def _next_step(
        self, n: int, observations: list[Observation]
    ) -> tuple[str | None, str, np.ndarray, np.ndarray]:
        """What to do before the posterior is shown: ``"train"``, ``"regrid"`` or None.

        Returns the action, why, the training region and the grid region ``(P, 2)``. The grid
        follows the posterior (:func:`truncation_region`); the training region is the grid's
        widened to at least ``FLOOR`` per-event likelihood widths (:func:`training_region`),
        since a classifier cannot learn a ratio over a range much narrower than one event
        resolves.
        """
        prior = self.task.parameters
        if self.region is None:
            return "train", "first data", prior.bounds, prior.bounds
        grid_now = self.posterior.space.bounds
        designs = np.array([obs.design for obs in observations])
        box = self._trained_designs
        assert box is not None
        if ((designs < box[:, 0] - 1e-12) | (designs > box[:, 1] + 1e-12)).any():
            return "train", "a design outside the trained designs", self.region, grid_now
        if edge_mass(self.posterior, grid_now, prior) > MAX_EDGE_MASS:
            centre = self.posterior.mean()
            half = grid_now[:, 1] - grid_now[:, 0]
            full = prior.bounds
            wider = np.stack(
                [np.maximum(centre - half, full[:, 0]), np.minimum(centre + half, full[:, 1])],
                axis=1,
            )
            reason = "the posterior reached the grid's edge"
            if _inside(wider, self.region):
                return "regrid", reason, self.region, wider
            train = training_region(self.posterior, prior, wider, margin=self._train_margin)
            return "train", reason, _union(train, wider), wider
        grid = truncation_region(self.posterior, prior)
        train = training_region(self.posterior, prior, grid, margin=self._train_margin)
        factor = shrink_factor(self.region, train)
        if factor >= SHRINK:
            return "train", f"the posterior region shrank {factor:.1f}x", train, grid
        if self.refine_every is not None and n % self.refine_every == 0:
            if n not in {t["observations"] for t in self._round_trainings}:
                return "train", f"every {self.refine_every} rounds", self.region, grid_now
        factor = shrink_factor(grid_now, grid)
        if factor >= SHRINK and _inside(grid, self.region):
            return "regrid", f"the posterior shrank {factor:.1f}x", self.region, grid
        calibrated = self.inference_estimator.focus
        focus = focus_region(self.posterior, grid_now)
        narrower = float(np.max(_widths(calibrated) / np.maximum(_widths(focus), 1e-300)))
        moved = float(
            np.max(np.abs(focus.mean(axis=1) - calibrated.mean(axis=1)) / _widths(calibrated))
        )
        if narrower >= SHRINK or moved > 0.25:
            reason = "the posterior narrowed or moved within the calibrated region"
            return "regrid", reason, self.region, grid_now
        if self.resolution is None and len(prior) > 1:
            target = grid if _inside(grid, self.region) else grid_now
            now = cells_per_std(self.posterior)
            std = self.posterior.std()
            then = np.asarray(self._grid_resolution(target)) * std / _widths(target)
            if now.min() < MIN_CELLS_PER_STD and then.min() >= 1.25 * now.min():
                name = prior.names[int(np.argmin(now))]
                reason = f"the grid resolved {name} with {now.min():.1f} cells per std"
                return "regrid", reason, self.region, target
        return None, "", self.region, grid_now

    def _grid_resolution(self, bounds: np.ndarray) -> Any:
        """The grid's cells per parameter over ``bounds``: the user's, or laid out by the posterior.

        With several parameters and no resolution given, :func:`grid_resolution` spreads the
        default number of cells so that each axis has the same cells per posterior std.
        """
        p = len(self.task.parameters)
        if self.resolution is not None or p == 1:
            return self.resolution
        cells = DEFAULT_RESOLUTION[p] ** p
        return grid_resolution(bounds, self.posterior.std(), cells)

    def _regrid(
        self,
        n: int,
        k: int,
        bounds: np.ndarray,
        observations: list[Observation],
        reason: str | None,
    ) -> None:
        """Calibrate the local estimator where the posterior is and rebuild it on ``bounds``.

        The calibration is measured on the grid's region, not the (wider) training region:
        the correction must be right where the posterior is.
        """
        assert self.region is not None and self._local is not None
        seed = int(np.random.default_rng([self.seed, n, k, 13]).integers(2**31))
        self.inference_estimator = CalibratedEstimator(
            self._local,
            self.task.simulator,
            bounds,
            events=self._calibration_events,
            seed=seed,
            focus=focus_region(self.posterior, bounds),
        )
        space = narrowed_space(self.task.parameters, bounds)
        resolution = self._grid_resolution(bounds)
        self.posterior = GridPosterior(space, resolution, simulator=self.task.simulator)
        for obs in observations:
            self.posterior.update(obs, self.inference_estimator)
        if reason is not None:
            self._round_regrids.append(
                {"observations": len(observations), "reason": reason, "grid": bounds.tolist()}
            )

    def _train_local(
        self, n: int, k: int, bounds: np.ndarray, observations: list[Observation], reason: str
    ) -> None:
        """Train (or load) the local estimator on ``bounds`` at the designs run; rebuild."""
        start = time.perf_counter()
        sim = self.task.simulator
        designs = np.array([obs.design for obs in observations])
        wide = np.allclose(bounds, self.task.parameters.bounds)  # ahead only while wide
        box = _design_box(designs, self.task.designs, self._design_horizon if wide else _BAND)
        seed = int(np.random.default_rng([self.seed, n, k, 11]).integers(2**31))
        restricted = RestrictedSimulator(sim, bounds)
        name = _LOCAL.format(n=n, k=k)
        saved = self.store.load_checkpoint(name)
        if saved is not None:
            est = _load_estimator(saved)
        else:
            est = RatioEstimator(
                restricted, method=self._estimator_spec["method"], ensemble=self._local_ensemble
            )
            est.train(
                n_samples=self._training_samples,
                seed=seed,
                designs=_box_space(box, self.task.designs),
                progress=self.progress,
            )
            self.store.save_checkpoint(name, _dump_estimator(est))
        self._local = est
        self.region = np.asarray(bounds, dtype=float)
        self._trained_designs = box
        self._round_trainings.append(
            {
                "observations": n,
                "iteration": k,
                "reason": reason,
                "region": self.region.tolist(),
                "designs": box.tolist(),
                "seed": seed,
                "loaded": saved is not None,
                "seconds": time.perf_counter() - start,
            }
        )

    # -- refinement ---------------------------------------------------------------------------
    def _last_refinement(self, designs: np.ndarray) -> int:
        """After how many of these observations' designs the latest refinement happens (0: none).

        A pure function of the designs, so a resumed run takes the same decisions.
        """
        if self.refine_every is None:
            return 0
        last = 0
        for n in range(self.refine_every, len(designs) + 1, self.refine_every):
            if last == 0 or not _covered(designs[:n], designs[:last], self.task.designs):
                last = n
        return last

    def _refine(self, n_observations: int) -> None:
        """Train the inference estimator around the designs run so far; rebuild the posterior.

        Seeded by ``(seed, n_observations)`` and checkpointed, so a resumed run refines to the
        same weights.
        """
        observations = [obs for _, obs in self.store.observations()][:n_observations]
        seed = int(np.random.default_rng([self.seed, n_observations, 11]).integers(2**31))
        designs = _bands(np.array([obs.design for obs in observations]), self.task.designs, seed)
        est = RatioEstimator(self.task.simulator, method=self._estimator_spec["method"])
        est.train(
            n_samples=self._training_samples, seed=seed, designs=designs, progress=self.progress
        )
        self.store.save_checkpoint(_REFINED, _dump_estimator(est))
        self.store.save_checkpoint(_REFINED_AT, str(n_observations).encode())
        self.inference_estimator = est
        self.posterior = self._new_posterior()
        for obs in observations:
            self.posterior.update(obs, est)

    def _designs_run(self, n: int) -> np.ndarray:
        """The designs of the first ``n`` stored observations, ``(n, D)``."""
        return np.array([obs.design for _, obs in self.store.observations()][:n])
