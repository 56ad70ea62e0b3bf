"""The shared machinery of the neural estimators: input checks, ensembles, the fit, save, load.

:class:`~activesci.inference.ratio.RatioEstimator` and
:class:`~activesci.inference.ratio.ScoreEstimator` are ensembles of MLPs
(:mod:`activesci.inference.networks`) trained by :mod:`activesci.inference.fitting`; what they
share is here, with the ``activesci.estimator/1`` file format (a JSON config beside the torch
weights, loaded with ``weights_only=True``).
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from activesci.errors import (
    ShapeError,
    ValidationError,
)
from activesci.inference.fitting import (
    FitOptions,
    _device,
    _pair_ids,
    _run_jobs,
    _train_stack,
)
from activesci.inference.methods import (
    Method,
    check_capabilities,
    default_theta_ref,
    resolve_method,
)
from activesci.inference.networks import MLP, _Normaliser
from activesci.progress import progress_bar
from activesci.spaces import Space
from activesci.threads import training_workers
from activesci.typing import Simulator, check_count, check_positive

__all__ = ["FORMAT", "TrainingSummary"]

FORMAT = "activesci.estimator/1"
_AVERAGE_STEPS = 200  # carl: horizon (optimiser steps) of the moving average of the weights
#: Members trained as one stack (:class:`_Stack`); stacks train at once on the workers' threads.
#: The line shape's local training (4 members, 1e5 samples) on 2 CPUs: 17.2 s with each member
#: its own network, two on threads at once; 10.9 s as two stacks of two (benchmarks/training.py)
_STACK = 2
_NORM_NODES = 128  # carl: parameter points the normaliser is fitted at, shared among designs


@dataclass
class TrainingSummary:
    """What one training did: sizes, seeds, losses per epoch, wall time."""

    n_samples: int
    seed: int
    epochs: list[int]
    best_val_loss: list[float]
    seconds: float
    history: list[dict[str, list[float]]]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return self.__dict__.copy()


class _NeuralEstimator:
    """Shared machinery: input checks, ensembles of MLPs, training loop, save and load."""

    kind = ""
    default_method = ""
    _method: Method

    def __init__(
        self,
        simulator: Simulator | None = None,
        *,
        method: str | None = None,
        parameters: Space | None = None,
        designs: Space | None = None,
        n_features: int | None = None,
        theta_ref: Any = None,
        hidden: Sequence[int] = (64, 64),
        ensemble: int = 1,
        alpha: float = 1.0,
        device: str = "cpu",
    ) -> None:
        method = resolve_method(method or self.default_method, score_only=self.kind == "score")
        self._method = method
        if simulator is not None:
            check_capabilities(simulator, method)
            parameters = parameters or simulator.parameters
            designs = designs or simulator.designs
            if n_features is None:
                n_features = len(getattr(simulator, "feature_names", ()) or ()) or None
        if simulator is not None and n_features is None:
            raise ValidationError(
                f"the simulator {type(simulator).__name__} has no feature_names: give "
                "n_features (the number of columns of x) explicitly"
            )
        if parameters is None or designs is None or n_features is None:
            raise ValidationError(
                "give a simulator, or parameters, designs and n_features explicitly"
            )
        if not (isinstance(ensemble, int) and ensemble >= 1):
            raise ValidationError(f"ensemble must be a positive integer, got {ensemble!r}")
        if not (math.isfinite(alpha) and alpha >= 0):
            raise ValidationError(f"alpha must be a non-negative number, got {alpha!r}")
        hidden = tuple(int(h) for h in hidden)
        if not hidden or min(hidden) < 1:
            raise ValidationError(f"hidden must list positive layer widths, got {hidden!r}")
        self.simulator = simulator
        self.parameters = parameters
        self.designs = designs
        self.n_features = int(n_features)
        ref = default_theta_ref(parameters) if theta_ref is None else theta_ref
        self.theta_ref = parameters.validate(ref)[0]
        self.hidden = hidden
        self.alpha = float(alpha)
        self.device = _device(device)
        self.members: list[MLP] = [self._new_member() for _ in range(ensemble)]
        # subtracted from each member's output (carl: its normalisation); None: nothing
        self.normalisers: list[_Normaliser | None] = [None] * ensemble
        self.inv_score_var = torch.ones(len(parameters))
        self.summary: TrainingSummary | None = None

    # -- to be provided by subclasses ---------------------------------------------------------
    def _new_member(self) -> MLP:
        raise NotImplementedError

    @classmethod
    def _io_sizes(cls, n_features: int, n_parameters: int, n_designs: int) -> tuple[int, int]:
        """Inputs and outputs of one member network."""
        raise NotImplementedError

    def _batch_loss(
        self, net: nn.Module, batch: dict[str, torch.Tensor], train: bool
    ) -> torch.Tensor:
        raise NotImplementedError

    def _inputs(self, data: dict[str, np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    @property
    def _likelihood_free(self) -> bool:
        """Whether the method has no gold (carl): trained and normalised as the module says."""
        return self.kind == "ratio" and not self._method.needs

    # -- public -------------------------------------------------------------------------------
    @property
    def method(self) -> str:
        """The training method's name."""
        return self._method.name

    @property
    def is_trained(self) -> bool:
        """Whether :meth:`train` (or :meth:`load`) has given the networks their weights."""
        return self.summary is not None

    def __repr__(self) -> str:
        state = "trained" if self.is_trained else "untrained"
        return (
            f"{type(self).__name__}(method={self.method!r}, parameters={self.parameters.names}, "
            f"designs={self.designs.names}, hidden={self.hidden}, ensemble={len(self.members)}, "
            f"{state})"
        )

    def _require_trained(self) -> None:
        if not self.is_trained:
            raise ValidationError(f"this {type(self).__name__} is not trained: call train() first")

    def _check_x(self, x: Any) -> np.ndarray:
        arr = np.asarray(x, dtype=float)
        if arr.ndim == 1 and self.n_features == 1:
            arr = arr[:, None]
        if arr.ndim != 2 or arr.shape[1] != self.n_features:
            raise ShapeError(
                f"x must have shape (n, {self.n_features}) ({self.n_features} feature(s)), "
                f"got {np.shape(x)}"
            )
        if arr.shape[0] == 0:
            raise ValidationError("x holds no events (an empty observation)")
        if not np.isfinite(arr).all():
            bad = np.argwhere(~np.isfinite(arr))[0]
            raise ValidationError(f"x contains NaN or infinite values (first at row {bad[0]})")
        return arr

    def _check_design(self, design: Any) -> np.ndarray:
        de = self.designs.validate(design)
        if len(de) != 1:
            raise ShapeError(f"give one design, got {len(de)}")
        return de[0]

    # -- training -----------------------------------------------------------------------------
    def train(
        self,
        simulator: Simulator | None = None,
        n_samples: int = 100_000,
        *,
        seed: int = 0,
        designs: Any = None,
        data: Any = None,
        **fit: Any,
    ) -> TrainingSummary:
        """Simulate training data and fit every ensemble member.

        Parameters
        ----------
        simulator : Simulator, optional
            Defaults to the one given at construction.
        n_samples : int
            Simulated events in total (for a ratio: half at ``theta`` drawn from the prior,
            half at ``theta_ref``; for a score: all at ``theta_ref``), each with a design drawn
            from ``designs``.
        seed : int
            Seeds the simulation, the split, the initialisation and the batches.
        designs : Space or array_like, optional
            Where to train: a space to draw designs from (default: the simulator's) or a list
            of design points ``(k, D)`` to draw among.
        data : optional
            Pre-simulated samples instead of simulating: a ``TrainingData``
            (``activesci.inference.training``) for a ratio, ``simulate_score_data``'s arrays
            for a score.
        **fit
            :class:`~activesci.inference.fitting.FitOptions`: ``epochs``, ``batch_size``,
            ``learning_rate``, ``validation_split``, ``patience``, ``warm_start`` (a few epochs
            on data at the designs actually run sharpen an amortised estimator where it is
            used) and ``progress``. For ``carl`` (:mod:`activesci.inference.ratio`) the split
            and the batches keep each ``(theta, design)`` pair together, the reference events
            are re-paired among the pairs of their design every epoch, the weights validated
            and kept are a moving average over about 200 steps, and each network is then
            normalised with the held-out reference events at every training design that has
            at least 256 of them (a list of designs, not a continuum), at 128 parameter points
            shared among those designs (at least 16 each).

        Returns
        -------
        TrainingSummary
        """
        options = FitOptions.of(fit)
        if data is None:
            sim = simulator or self.simulator
            if sim is None:
                raise ValidationError("train() needs a simulator (none was given at construction)")
            check_capabilities(sim, self._method)
            data = self._simulate(sim, n_samples, designs=designs, seed=seed)
        return self._fit(self._training_arrays(data), seed=seed, options=options)

    def _simulate(self, simulator: Simulator, n: int, *, designs: Any, seed: int) -> Any:
        """Simulate ``n`` training samples (what :meth:`_training_arrays` takes)."""
        raise NotImplementedError

    def _training_arrays(self, data: Any) -> dict[str, np.ndarray]:
        """Check training data and return its arrays by name, one row per sample."""
        raise NotImplementedError

    def _fit(
        self, data: dict[str, np.ndarray], *, seed: int, options: FitOptions
    ) -> TrainingSummary:
        epochs, batch_size, progress = options.epochs, options.batch_size, options.progress
        validation_split = options.validation_split
        if options.warm_start:
            self._require_trained()
        n = len(next(iter(data.values())))
        # carl keeps the two events of a (theta, design) row together; others split rows
        pairs = _pair_ids(data) if self._likelihood_free else np.arange(n)
        n_pairs = int(pairs.max()) + 1
        rank = np.empty(n_pairs, dtype=np.int64)
        rank[np.random.default_rng(seed).permutation(n_pairs)] = np.arange(n_pairs)
        order = np.argsort(rank[pairs], kind="stable")
        val_pairs = max(1, round(validation_split * n_pairs))
        n_val = int(np.count_nonzero(rank[pairs] < val_pairs))
        if n - n_val < batch_size // 4:
            raise ValidationError(
                f"{n} samples leave too few for training with batch_size={batch_size}"
            )
        tensors = {
            k: torch.as_tensor(v, dtype=torch.float32, device=self.device) for k, v in data.items()
        }
        val = {k: v[order[:n_val]] for k, v in tensors.items()}
        train = {k: v[order[n_val:]] for k, v in tensors.items()}
        inputs = self._inputs({k: v[order[n_val:]] for k, v in data.items()})
        shift, scale = inputs.mean(axis=0), inputs.std(axis=0)
        scale[scale < 1e-12] = 1.0
        self._prepare(train)
        carl: dict[str, Any] = {}
        if self._likelihood_free:
            ref = train["y"] < 0.5
            _, design_group = np.unique(
                data["design"][order[n_val:]][ref.cpu().numpy()], axis=0, return_inverse=True
            )
            carl = {
                "pairs": torch.as_tensor(
                    rank[pairs[order[n_val:]]] - val_pairs, device=self.device
                ),
                "reference": (
                    torch.nonzero(ref)[:, 0],
                    torch.as_tensor(design_group.ravel(), device=self.device),
                ),
                "average": _AVERAGE_STEPS,
            }
            val_ref = {k: val[k][val["y"] < 0.5] for k in ("x", "design")}
            nodes = train["theta"][~ref][:_NORM_NODES]
        start = time.perf_counter()
        nets = []
        for k, _ in enumerate(self.members):  # initialised in turn: torch's global RNG is shared
            if options.warm_start:
                net = copy.deepcopy(self.members[k])
            else:
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(seed + 7919 * k)
                    net = self._new_member()
                net.shift.copy_(torch.as_tensor(shift, dtype=torch.float32))
                net.scale.copy_(torch.as_tensor(scale, dtype=torch.float32))
            nets.append(net)

        def fit_stack(members: list[int], bar: Any) -> list[tuple[MLP, dict[str, list[float]]]]:
            gens = [torch.Generator().manual_seed(seed + 7919 * k) for k in members]
            return _train_stack(
                [nets[k] for k in members], train, val, self._batch_loss, gens, epochs,
                batch_size, options.learning_rate, options.patience, bar, **carl,
            )  # fmt: skip

        # stacks of a fixed size whatever the workers, so the weights do not depend on them
        stacks = [list(range(k, min(k + _STACK, len(nets)))) for k in range(0, len(nets), _STACK)]
        workers = min(training_workers(), len(stacks)) if len(stacks) > 1 else 1
        desc = f"{self.method}: {len(nets)} member(s)" + (
            f", {workers} stacks at once" if workers > 1 else ""
        )
        with progress_bar(progress, total=epochs * len(nets), desc=desc, unit="epoch") as bar:
            done = _run_jobs(fit_stack, [(members, bar) for members in stacks], workers)
        results = [pair for stack in done for pair in stack]
        history, used, best = [], [], []
        for k, (net, record) in enumerate(results):
            self.members[k] = net
            self.normalisers[k] = (
                _Normaliser.fit(net, self.n_features, val_ref, nodes) if carl else None
            )
            history.append(record)
            used.append(len(record["train"]))
            best.append(min(record["val"]))
        self.summary = TrainingSummary(
            n_samples=n,
            seed=seed,
            epochs=used,
            best_val_loss=best,
            seconds=time.perf_counter() - start,
            history=history,
        )
        return self.summary

    def _prepare(self, train: dict[str, torch.Tensor]) -> None:
        """Hook: statistics of the training set a loss needs (the score variance)."""
        if "score" in train:
            # the score is regressed on events drawn at theta (y = 1) or, for sally, all events
            mask = train["y"] > 0.5 if "y" in train else slice(None)
            rows = train["score"][mask]
            var = rows.var(dim=0) if len(rows) > 1 else torch.ones(rows.shape[1])
            weight = 1.0 / var.clamp(min=1e-12)
            if "theta" in train and rows.shape[1] > 1 and len(rows) > 1:
                # an error in t_i moves log r by about t_i's error times theta_i's spread:
                # weigh each parameter by its spread squared, in units of the total
                spread = train["theta"][mask].var(dim=0)
                weight = rows.shape[1] * spread / (var * spread).sum().clamp(min=1e-30)
            self.inv_score_var = weight.to(self.device)

    # -- persistence --------------------------------------------------------------------------
    def _config(self) -> dict[str, Any]:
        from activesci import __version__

        return {
            "format": FORMAT,
            "kind": self.kind,
            "method": self.method,
            "parameters": self.parameters.to_config(),
            "designs": self.designs.to_config(),
            "n_features": self.n_features,
            "theta_ref": self.theta_ref.tolist(),
            "hidden": list(self.hidden),
            "ensemble": len(self.members),
            "alpha": self.alpha,
            "inv_score_var": self.inv_score_var.cpu().tolist(),
            "summary": None if self.summary is None else self.summary.to_dict(),
            "activesci_version": __version__,
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Save weights and configuration to ``path`` (a torch file of tensors and a JSON string).

        Loading uses ``torch.load(weights_only=True)``: no arbitrary objects are unpickled.
        """
        from activesci.io import atomic_write

        self._require_trained()
        path = Path(path)
        payload = {
            "config": json.dumps(self._config()),
            "members": [{k: v.cpu() for k, v in m.state_dict().items()} for m in self.members],
            "normalisers": [
                None if c is None else {k: v.cpu() for k, v in c.state_dict().items()}
                for c in self.normalisers
            ],
        }
        with atomic_write(path) as fh:
            torch.save(payload, fh)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, device: str = "cpu") -> Any:
        """Load an estimator saved with :meth:`save` (no simulator attached).

        The file is data: its configuration is checked against the weights it holds before
        any network is built, so a crafted file cannot make this allocate more than it holds.

        Raises
        ------
        ValidationError
            The file is missing, not an estimator file, of another format or kind, or its
            configuration and weights disagree; the message names the field.
        """
        from activesci.io import check_input_file

        path = check_input_file(path, what="estimator file")  # not a FIFO, device or folder
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # the bytes are untrusted: any way they fail
            # (corrupt zip, truncated pickle stream, an unpickler that pops an empty stack)
            # means "not an estimator file"
            raise ValidationError(
                f"{path}: not an activesci estimator file ({type(exc).__name__}: {exc})"
            ) from None
        try:
            config = json.loads(payload["config"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValidationError(f"{path}: not an activesci estimator file ({exc})") from None
        if not isinstance(config, dict):
            raise ValidationError(f"{path}: its config is {config!r:.80}, expected an object")
        if config.get("format") != FORMAT or config.get("kind") != cls.kind:
            raise ValidationError(
                f"{path}: format {config.get('format')!r} kind {config.get('kind')!r}, "
                f"expected {FORMAT!r} kind {cls.kind!r}"
            )
        options = _checked_config(config, payload, cls._io_sizes, path)
        est = cls(None, **options, device=device)
        for member, state in zip(est.members, payload["members"], strict=True):
            member.load_state_dict(state)
            member.to(est.device)
        # files written before normalisers existed have none
        states = payload.get("normalisers") or [None] * len(est.members)
        try:
            est.normalisers = [
                None if state is None else _Normaliser(**state).to(est.device) for state in states
            ]
            est.inv_score_var = torch.tensor(config["inv_score_var"], device=est.device)
            summary = config.get("summary")
            est.summary = TrainingSummary(**summary) if summary else None
        except (TypeError, ValueError, RuntimeError, AttributeError) as exc:
            raise ValidationError(f"{path}: malformed normalisers or summary ({exc})") from None
        if est.inv_score_var.shape != (len(est.parameters),) or len(states) != len(est.members):
            raise ValidationError(f"{path}: 'inv_score_var' or 'normalisers' of the wrong size")
        return est


def _checked_config(
    config: dict[str, Any],
    payload: Any,
    io_sizes: Callable[[int, int, int], tuple[int, int]],
    path: str | os.PathLike[str],
) -> dict[str, Any]:
    """The constructor's options from an estimator file's config, checked against its weights.

    Every member's stored tensors must have exactly the shapes the config implies.
    """

    def fail(why: str) -> ValidationError:
        return ValidationError(f"{path}: {why}")

    try:
        options = {
            "method": config["method"],
            "parameters": Space.from_config(config["parameters"]),
            "designs": Space.from_config(config["designs"]),
            "n_features": check_count(config["n_features"], "'n_features'", minimum=1),
            "theta_ref": config["theta_ref"],
            "hidden": [check_count(h, "'hidden' width", minimum=1) for h in config["hidden"]],
            "ensemble": check_count(config["ensemble"], "'ensemble'", minimum=1),
            "alpha": check_positive(config["alpha"], "'alpha'") if config["alpha"] else 0.0,
        }
    except KeyError as exc:
        raise fail(f"its config lacks {exc}") from None
    except (TypeError, ValueError) as exc:  # ValidationError included
        raise fail(f"bad config ({exc})") from None
    members = payload.get("members") if isinstance(payload, dict) else None
    if not isinstance(members, list) or len(members) != options["ensemble"]:
        raise fail(f"it holds no list of {options['ensemble']} member networks")
    n_in, n_out = io_sizes(
        options["n_features"], len(options["parameters"]), len(options["designs"])
    )
    widths = [n_in, *options["hidden"], n_out]
    expected = {"shift": (n_in,), "scale": (n_in,)}
    for k, (a, b) in enumerate(itertools.pairwise(widths)):
        expected |= {f"net.{2 * k}.weight": (b, a), f"net.{2 * k}.bias": (b,)}
    for i, state in enumerate(members):
        shapes = (
            {k: tuple(v.shape) for k, v in state.items() if isinstance(v, torch.Tensor)}
            if isinstance(state, dict)
            else {}
        )
        wrong = sorted(
            k for k in expected.keys() | shapes.keys() if shapes.get(k) != expected.get(k)
        )
        if wrong:
            raise fail(
                f"member {i}'s {wrong[0]!r} has shape {shapes.get(wrong[0])}, but its config "
                f"(hidden {options['hidden']}, {options['n_features']} features) implies "
                f"{expected.get(wrong[0])}"
            )
    return options
