"""Neural likelihood-ratio and score estimators, parameterised on theta *and* the design.

``RatioEstimator`` learns ``log r(x | theta, design) = log p(x | theta, design) -
log p(x | theta_ref, design)`` with a fixed reference ``theta_ref`` (default: the prior mean, or
the centre of each parameter's range), as MadMiner's parameterised estimators do. The reference
cancels in every posterior, and a fixed one is what makes the simulator's joint ratio
``p(z | theta) / p(z | theta_ref)`` ("gold") exact. Because the design is an input, one training
serves every design the optimiser may ask about (amortised).

Methods (``METHODS``), as in Brehmer et al. and MadMiner:

========  ==================================================  ===========================
method    loss                                                needs
========  ==================================================  ===========================
carl      cross-entropy of samples at theta vs theta_ref      nothing (likelihood-free)
rolr      regression of r and 1/r on the joint ratio          ``joint_log_prob``
alice     cross-entropy with the joint ratio as soft label    ``joint_log_prob``
alices    alice + alpha x joint-score regression              both
rascal    rolr + alpha x joint-score regression               both
cascal    carl + alpha x joint-score regression               ``joint_score``
sally     ``ScoreEstimator``: regression of t(x | theta_ref)  ``joint_score``
========  ==================================================  ===========================

The score term is measured in units of the log ratio's change across the training data: an
error in the score's component ``i`` weighs as much as the change of ``log r`` it causes over
``theta_i``'s spread, ``(t_hat_i - t_i)^2 var(theta_i)``, normalised by the total
``sum_i var(t_i) var(theta_i)`` (with one parameter: the joint score's variance), so
``alpha = 1`` weighs it like the ratio term. Weighing every component by its own variance
instead would spend the network on parameters the events barely inform (the Z width's score
is a thousandth of sin2w's in the line shape) at the cost of those they do.

CARL has no gold: the classifier must get ``log r`` right from labels alone, and the per-event
signal is small (a few hundredths of a nat near ``theta_ref``) while a posterior sums it over
thousands of events. What the cross-entropy pins down worst is the normalisation
``E[r(x | theta) | theta_ref] = 1`` at each ``theta``: an error that changes by 0.001 nats per
event across the posterior's width, far below what a validation loss can see, shifts a
1000-event posterior by a standard deviation. So CARL trains on pairs (the two events of a
``(theta, design)`` row are split and batched together, so every batch is balanced at every
``theta``), starts from ``log r = 0``, re-pairs its reference events each epoch, averages its
weights, and is normalised afterwards (:class:`_Normaliser`).
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import math
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.fft
import torch
import torch.nn.functional as F
from torch import nn

from activesci.errors import (
    MissingCapabilityError,
    ShapeError,
    ValidationError,
)
from activesci.inference.methods import (
    METHODS,
    Method,
    check_capabilities,
    default_theta_ref,
    resolve_method,
)
from activesci.spaces import Space
from activesci.threads import training_workers
from activesci.typing import Progress, Simulator, check_count, check_positive

__all__ = [
    "METHODS",
    "MLP",
    "Method",
    "RatioEstimator",
    "ScoreEstimator",
    "ratio_loss",
    "score_loss",
]

FORMAT = "activesci.estimator/1"
_CLAMP = 15.0  # |log r| above this is clamped in the ratio regression (exp overflows otherwise)
_EVAL_ROWS = 1 << 17  # rows of one job (a thread's share) when evaluating on a grid
#: ... evaluated in forward passes of about this many rows, whose activations (0.5 MB) stay in
#: the CPU's cache. A line-shape ensemble on a grid, 2 CPUs: 145 ns per network row against
#: 304 ns in passes of 2^17 rows (benchmarks/training.py). Smaller passes lose to Python's
#: per-pass overhead when two threads share the interpreter (1024 rows: 221 ns)
_CACHE_ROWS = 2048
_PARALLEL_MIN_ROWS = 1 << 14  # rows per block from which the members' blocks run on threads
_AVERAGE_STEPS = 200  # carl: horizon (optimiser steps) of the moving average of the weights
#: Members trained as one stack (:class:`_Stack`); stacks train at once on the workers' threads.
#: The line shape's local training (4 members, 1e5 samples) on 2 CPUs: 17.2 s with each member
#: its own network, two on threads at once; 10.9 s as two stacks of two (benchmarks/training.py)
_STACK = 2
_NORM_NODES = 128  # carl: parameter points the normaliser is fitted at, shared among designs
_NORM_MIN_NODES = 16  # carl: ... but at least this many at each design
_NORM_MIN_EVENTS = 256  # carl: held-out reference events a design needs to be normalised at
_NORM_LENGTH = 0.5  # carl: kernel length of the normaliser, in standardised units
#: Events with one feature: a call with more than ``_TABLE_MIN_EVENTS`` of them evaluates the
#: network at ``_TABLE_NODES`` Chebyshev points spanning them and interpolates (barycentric);
#: where that table is not resolved, at twice as many points, and then at every event. The
#: networks are smooth (SiLU), so the interpolation converges geometrically; a table is
#: resolved when its last two Chebyshev coefficients are below ``_TABLE_TOLERANCE`` nats (the
#: test chebfun uses), and its error is then of that size: within 2e-5 of the direct
#: evaluation (tests/test_ratio.py asserts it).
_TABLE_NODES = 16
_TABLE_MIN_EVENTS = 8 * _TABLE_NODES
_TABLE_TOLERANCE = 1e-5


def _tables(x: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The Chebyshev tables to try for events ``x`` ``(n, X)``, coarse first (none may pay)."""
    for k in (_TABLE_NODES, 2 * _TABLE_NODES):
        table = _chebyshev_table(x, k)
        if table is None:
            return
        yield table


def _resolved(values: np.ndarray, axis: int) -> bool:
    """Whether values at a table's points (along ``axis``) have negligible last coefficients."""
    return bool(np.all(_tail(values, axis) <= _TABLE_TOLERANCE))


def _tail(values: np.ndarray, axis: int) -> np.ndarray:
    """The largest of the last two Chebyshev coefficients of values along ``axis``."""
    k = values.shape[axis]
    coef = scipy.fft.dct(values, type=1, axis=axis) / (k - 1)  # Chebyshev coefficients
    return np.abs(np.take(coef, [k - 2, k - 1], axis=axis)).max(axis=axis)


def _chebyshev_table(x: np.ndarray, k: int = _TABLE_NODES) -> tuple[np.ndarray, np.ndarray] | None:
    """``k`` Chebyshev points ``(k, 1)`` spanning events ``x`` ``(n, 1)``, and interpolation.

    The matrix ``(n, k)`` interpolates values at the points to the events. None where a
    table would not pay: several features, at most ``_TABLE_MIN_EVENTS`` events, or all
    events equal. Barycentric interpolation at Chebyshev points of the second kind (Berrut
    & Trefethen 2004): stable, and for analytic functions its error falls geometrically with
    ``k``.
    """
    if x.shape[1] != 1 or len(x) <= _TABLE_MIN_EVENTS:
        return None
    lo, hi = float(x.min()), float(x.max())
    if not hi - lo > 1e-9 * max(1.0, abs(lo), abs(hi)):
        return None
    j = np.arange(k)
    nodes = 0.5 * (lo + hi) + 0.5 * (hi - lo) * np.cos(np.pi * j / (k - 1))
    nodes[[0, -1]] = hi, lo  # exactly: the extreme events sit on them
    weights = (-1.0) ** j
    weights[[0, -1]] *= 0.5
    matrix = x[:, :1] - nodes[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        np.divide(weights, matrix, out=matrix)
        total = matrix.sum(axis=1)
        matrix /= total[:, None]
    # an event on a node made its row infinite: it takes that node's value exactly
    hit = ~np.isfinite(total)
    if hit.any():
        matrix[hit] = x[hit, :1] == nodes[None, :]
    return nodes[:, None], matrix


class MLP(nn.Module):
    """A multilayer perceptron with SiLU activations (smooth, so scores are smooth too).

    Inputs ``(*, n_in)`` are standardised with the buffers ``shift`` and ``scale``; outputs
    are ``(*, n_out)``.
    """

    def __init__(self, n_in: int, n_out: int, hidden: Sequence[int] = (64, 64)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = n_in
        for h in hidden:
            layers += [nn.Linear(width, h), nn.SiLU()]
            width = h
        layers.append(nn.Linear(width, n_out))
        self.net = nn.Sequential(*layers)
        self.register_buffer("shift", torch.zeros(n_in))
        self.register_buffer("scale", torch.ones(n_in))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Evaluate on raw inputs ``(*, n_in)``; returns ``(*, n_out)``."""
        return self.net((inputs - self.shift) / self.scale)


class _Normaliser(nn.Module):
    """``c(theta, design) = log E[exp(g(x, theta, design)) | theta_ref, design]`` of a network g.

    A kernel (Gaussian process) regression, in the network's standardised ``(theta, design)``
    coordinates, of Monte Carlo estimates at ``nodes`` from held-out reference events, each
    weighted by its sampling variance. ``g - c`` is then normalised at the training designs;
    far from them (more than a few kernel lengths) ``c`` tends to the constant ``offset``.
    """

    def __init__(
        self,
        nodes: torch.Tensor,
        alpha: torch.Tensor,
        offset: torch.Tensor,
        shift: torch.Tensor,
        scale: torch.Tensor,
    ) -> None:
        super().__init__()
        for name, value in (
            ("nodes", nodes),
            ("alpha", alpha),
            ("offset", offset),
            ("shift", shift),
            ("scale", scale),
        ):
            self.register_buffer(name, value.double())

    def forward(self, theta: torch.Tensor, design: torch.Tensor) -> torch.Tensor:
        """``c`` at parameter points ``(n, P)`` and one design ``(D,)``: shape ``(n,)``, float64."""
        inputs = torch.cat([theta.double(), design.double().expand(len(theta), -1)], dim=-1)
        return _kernel((inputs - self.shift) / self.scale, self.nodes) @ self.alpha + self.offset

    @classmethod
    def fit(
        cls, net: MLP, n_features: int, ref: dict[str, torch.Tensor], theta: torch.Tensor
    ) -> _Normaliser | None:
        """Fit to ``net`` with reference events ``ref`` (``x``, ``design``) at points ``theta``.

        The designs with at least ``_NORM_MIN_EVENTS`` events share the points of ``theta`` as
        nodes (each gets the first ``max(_NORM_MIN_NODES, len(theta) // designs)``); ``None``
        when no design has that many events (designs drawn from a continuum, say).
        """
        designs, group, counts = torch.unique(
            ref["design"], dim=0, return_inverse=True, return_counts=True
        )
        kept = torch.nonzero(counts >= _NORM_MIN_EVENTS)[:, 0].tolist()
        points = theta[: max(_NORM_MIN_NODES, len(theta) // max(1, len(kept)))]
        nodes, mean, var = [], [], []
        with torch.no_grad():
            for j in kept:
                x = ref["x"][group == j]
                d = designs[j].expand(len(x), -1)
                for t in points:
                    g = net(torch.cat([x, t.expand(len(x), -1), d], dim=-1))[:, 0].double()
                    top = g.max()
                    w = torch.exp(g - top)
                    nodes.append(torch.cat([t, designs[j]]))
                    mean.append(torch.log(w.mean()) + top)
                    var.append(w.var() / (len(w) * w.mean() ** 2))
        if not nodes:
            return None
        shift, scale = net.shift[n_features:].double(), net.scale[n_features:].double()
        u = (torch.stack(nodes).double() - shift) / scale
        c, v = torch.stack(mean), torch.stack(var).clamp(min=1e-18)
        offset = (c / v).sum() / (1.0 / v).sum()
        signal = ((c - offset) ** 2).mean().clamp(min=1e-18)
        alpha = torch.linalg.solve(_kernel(u, u) + torch.diag(v / signal), c - offset)
        return cls(u, alpha, offset, shift, scale)


def _kernel(u: torch.Tensor, nodes: torch.Tensor) -> torch.Tensor:
    """Gaussian kernel matrix ``(n, m)`` between standardised points ``(n, K)`` and ``(m, K)``."""
    sq = ((u[:, None, :] - nodes[None, :, :]) ** 2).sum(dim=-1)
    return torch.exp(-sq / (2 * _NORM_LENGTH**2))


def ratio_loss(
    kind: str, log_r_hat: torch.Tensor, y: torch.Tensor, log_r_joint: torch.Tensor | None
) -> torch.Tensor:
    """Mean ratio loss of a batch: a scalar, or one per member ``(M,)`` for stacked members.

    Parameters
    ----------
    kind : {"carl", "rolr", "alice"}
        Which loss.
    log_r_hat : torch.Tensor
        Estimated ``log r(x | theta)``, shape ``(N,)`` or ``(M, N)``.
    y : torch.Tensor
        1 for events drawn at ``theta``, 0 for events drawn at ``theta_ref``, like
        ``log_r_hat``.
    log_r_joint : torch.Tensor or None
        Joint log ratio ``log p(z | theta) / p(z | theta_ref)``, like ``log_r_hat`` (rolr,
        alice).
    """
    if kind == "carl":
        return F.binary_cross_entropy_with_logits(log_r_hat, y, reduction="none").mean(dim=-1)
    assert log_r_joint is not None
    if kind == "alice":
        target = torch.sigmoid(log_r_joint)
        return F.binary_cross_entropy_with_logits(log_r_hat, target, reduction="none").mean(-1)
    # rolr: E[r(x,z) | x] = r(x) under theta_ref, E[1/r(x,z) | x] = 1/r(x) under theta
    hat = log_r_hat.clamp(-_CLAMP, _CLAMP)
    joint = log_r_joint.clamp(-_CLAMP, _CLAMP)
    sign = 1.0 - 2.0 * y  # +1 at theta_ref: regress r; -1 at theta: regress 1/r
    return ((torch.exp(sign * hat) - torch.exp(sign * joint)) ** 2).mean(dim=-1)


def score_loss(
    t_hat: torch.Tensor, t_joint: torch.Tensor, mask: torch.Tensor, inv_var: torch.Tensor
) -> torch.Tensor:
    """Score regression ``sum_p (t_hat - t_joint)^2 / var_p`` averaged over masked rows.

    Scores ``(..., N, P)`` and mask ``(..., N)``: a scalar, or one per member ``(M,)``.
    """
    sq = ((t_hat - t_joint) ** 2 * inv_var).sum(dim=-1)
    return (sq * mask).sum(dim=-1) / mask.sum(dim=-1).clamp(min=1.0)


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
    def _fit(
        self,
        data: dict[str, np.ndarray],
        *,
        seed: int,
        epochs: int,
        batch_size: int,
        learning_rate: float,
        validation_split: float,
        patience: int | None,
        warm_start: bool,
        progress: Progress,
    ) -> TrainingSummary:
        _check_training_options(epochs, batch_size, learning_rate, validation_split, patience)
        if warm_start:
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
            if warm_start:
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
                batch_size, learning_rate, patience, bar, **carl,
            )  # fmt: skip

        # stacks of a fixed size whatever the workers, so the weights do not depend on them
        stacks = [list(range(k, min(k + _STACK, len(nets)))) for k in range(0, len(nets), _STACK)]
        workers = min(training_workers(), len(stacks)) if len(stacks) > 1 else 1
        desc = f"{self.method}: {len(nets)} member(s)" + (
            f", {workers} stacks at once" if workers > 1 else ""
        )
        with _transient_bar(progress, total=epochs * len(nets), desc=desc, unit="epoch") as bar:
            shared = _SharedBar(bar)
            done = _run_jobs(fit_stack, [(members, shared) for members in stacks], workers)
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


class RatioEstimator(_NeuralEstimator):
    """Amortised neural estimator of ``log p(x | theta, design) - log p(x | theta_ref, design)``.

    Parameters
    ----------
    simulator : Simulator, optional
        Supplies the spaces, the feature count and (for gold methods) the joint ratio/score;
        checked for the capabilities ``method`` needs.
    method : str
        One of ``carl``, ``rolr``, ``alice``, ``alices`` (default), ``rascal``, ``cascal``.
    parameters, designs : Space, optional
        Needed only without a simulator.
    n_features : int, optional
        Columns of ``x``; needed only without a simulator.
    theta_ref : array_like, optional
        The reference parameters (default :func:`default_theta_ref`).
    hidden : sequence of int
        Hidden layer widths of each network.
    ensemble : int
        Number of independently trained networks; the mean is the estimate, the spread its
        uncertainty (:meth:`log_ratio_std`).
    alpha : float
        Weight of the score term for ``alices``, ``rascal`` and ``cascal``.
    device : str
        ``"cpu"`` (default) or ``"cuda"``.

    Examples
    --------
    >>> import numpy as np, activesci as asci
    >>> task = asci.tasks.gaussian()
    >>> est = RatioEstimator(task.simulator, method="alices", hidden=(16,))
    >>> _ = est.train(n_samples=4000, epochs=3, progress=False)
    >>> est.log_ratio(np.zeros((5, 1)), np.array([[0.0], [0.5]]), [np.pi]).shape
    (2, 5)
    """

    kind = "ratio"
    default_method = "alices"

    @classmethod
    def _io_sizes(cls, n_features: int, n_parameters: int, n_designs: int) -> tuple[int, int]:
        return n_features + n_parameters + n_designs, 1

    def _new_member(self) -> MLP:
        sizes = self._io_sizes(self.n_features, len(self.parameters), len(self.designs))
        net = MLP(*sizes, self.hidden)
        if self._likelihood_free:  # start from log r = 0, not from a random function of theta
            nn.init.zeros_(net.net[-1].weight)
            nn.init.zeros_(net.net[-1].bias)
        return net.to(self.device)

    def _inputs(self, data: dict[str, np.ndarray]) -> np.ndarray:
        return np.concatenate([data["x"], data["theta"], data["design"]], axis=1)

    def _forward(
        self, net: nn.Module, x: torch.Tensor, theta: torch.Tensor, design: torch.Tensor
    ) -> torch.Tensor:
        return net(torch.cat([x, theta, design], dim=-1))[..., 0]

    def _batch_loss(
        self, net: nn.Module, batch: dict[str, torch.Tensor], train: bool
    ) -> torch.Tensor:
        m = self._method
        if not (m.score and self.alpha > 0):
            log_r = self._forward(net, batch["x"], batch["theta"], batch["design"])
            return ratio_loss(m.ratio, log_r, batch["y"], batch.get("log_r"))
        # the joint score is regressed on the rows drawn at theta (y = 1) only, so only they
        # need d/dtheta: a double backward through the network, most of a step's cost. Each
        # member's rows are sorted by y; the first `drawn` of every member (the most any has)
        # get the derivative, and the mask drops those of them drawn at theta_ref
        y = batch["y"]
        order = torch.argsort(y, dim=-1, descending=True, stable=True)
        axis = y.dim() - 1
        rows = {
            k: torch.take_along_dim(v, order if v.dim() == y.dim() else order[..., None], axis)
            for k, v in batch.items()
        }
        drawn = int((rows["y"] > 0.5).sum(dim=-1).max())
        head = {k: v.narrow(axis, 0, drawn) for k, v in rows.items()}
        tail = {k: v.narrow(axis, drawn, v.shape[axis] - drawn) for k, v in rows.items()}
        theta = head["theta"].detach().requires_grad_(True)
        at_theta = self._forward(net, head["x"], theta, head["design"])
        at_ref = self._forward(net, tail["x"], tail["theta"], tail["design"])
        log_r = torch.cat([at_theta, at_ref], dim=-1)
        loss = ratio_loss(m.ratio, log_r, rows["y"], rows.get("log_r"))
        (t_hat,) = torch.autograd.grad(at_theta.sum(), theta, create_graph=train)
        return loss + self.alpha * score_loss(t_hat, head["score"], head["y"], self.inv_score_var)

    def train(
        self,
        simulator: Simulator | None = None,
        n_samples: int = 100_000,
        *,
        seed: int = 0,
        designs: Any = None,
        data: Any = None,
        epochs: int = 30,
        batch_size: int = 1024,
        learning_rate: float = 3e-3,
        validation_split: float = 0.2,
        patience: int | None = None,
        warm_start: bool = False,
        progress: Progress = True,
    ) -> TrainingSummary:
        """Simulate training data and fit every ensemble member.

        Parameters
        ----------
        simulator : Simulator, optional
            Defaults to the one given at construction.
        n_samples : int
            Simulated events in total: half at ``theta`` drawn from the prior, half at
            ``theta_ref``, each with a design drawn from ``designs``.
        seed : int
            Seeds the simulation, the split, the initialisation and the batches.
        designs : Space or array_like, optional
            Where to train: a space to draw designs from (default: the simulator's) or a list
            of design points ``(k, D)`` to draw among.
        data : TrainingData, optional
            Pre-simulated samples (``activesci.inference.training``) instead of simulating.
        epochs, batch_size, learning_rate, validation_split, patience : optional
            Adam whose learning rate decays exponentially to a tenth by the last epoch; the
            weights of the epoch with the best validation loss are kept. ``patience`` (default
            off) stops after that many epochs without improvement. Annealing to the end
            matters: per-event errors add up over thousands of events in a posterior, and a
            network stopped early, at a high learning rate, is biased. For ``carl`` (module
            docstring) the split and the batches keep each ``(theta, design)`` pair together,
            the reference events are re-paired among the pairs of their design every epoch,
            the weights validated and kept are a moving average over about 200 steps, and each
            network is then normalised with the held-out reference events at every training
            design that has at least 256 of them (a list of designs, not a continuum), at 128
            parameter points shared among those designs (at least 16 each).
        warm_start : bool
            Fine-tune: start from the current weights and input standardisation instead of a
            fresh initialisation (needs a trained estimator). A few epochs on data at the
            designs actually run sharpen an amortised estimator where it is used.
        progress : bool or callable
            Show tqdm progress bars (notebook-aware), or call ``progress(what, epoch,
            epochs)`` after every epoch (:data:`activesci.typing.Progress`).

        Returns
        -------
        TrainingSummary
        """
        from activesci.inference.training import TrainingData, simulate_training_data

        if data is None:
            sim = simulator or self.simulator
            if sim is None:
                raise ValidationError("train() needs a simulator (none was given at construction)")
            check_capabilities(sim, self._method)
            data = simulate_training_data(
                sim,
                n_samples,
                theta_ref=self.theta_ref,
                designs=designs,
                gold=self._method.needs,
                seed=seed,
            )
        if not isinstance(data, TrainingData):
            raise ValidationError(f"data must be a TrainingData, got {type(data).__name__}")
        data.check(self.parameters, self.designs, self.n_features)
        missing = [
            k
            for k, need in (("log_r", "joint_log_prob"), ("score", "joint_score"))
            if need in self._method.needs and getattr(data, k) is None
        ]
        if missing:
            raise MissingCapabilityError(
                f"method {self.method!r} needs {missing} in the training data"
            )
        return self._fit(
            data.arrays(),
            seed=seed,
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            validation_split=validation_split,
            patience=patience,
            warm_start=warm_start,
            progress=progress,
        )

    def _evaluate(self, x: Any, theta: Any, design: Any) -> np.ndarray:
        """Per-member ``log r`` on the (theta, x) grid: ``(members, n_theta, n_x)``.

        Each parameter point takes the first table resolved there (for every member), or
        else every event.
        """
        self._require_trained()
        xx = self._check_x(x)
        th = self.parameters.validate(theta)
        de = self._check_design(design)
        out = np.empty((len(self.members), len(th), len(xx)))
        rest = np.arange(len(th))  # parameter points not yet resolved
        for nodes, interpolate in _tables(xx):
            values = self._members_log_ratio(nodes, th[rest], de)
            ok = (_tail(values, axis=-1) <= _TABLE_TOLERANCE).all(axis=0)
            out[:, rest[ok]] = values[:, ok] @ interpolate.T
            rest = rest[~ok]
            if len(rest) == 0:
                return out
        out[:, rest] = self._members_log_ratio(xx, th[rest], de)
        return out

    def _members_log_ratio(self, xx: np.ndarray, th: np.ndarray, de: np.ndarray) -> np.ndarray:
        """:meth:`_evaluate` on checked events, parameters and design, at every event."""
        n_t, n_x = len(th), len(xx)
        out = np.empty((len(self.members), n_t, n_x))
        xt = torch.tensor(xx, dtype=torch.float32, device=self.device)
        tt = torch.tensor(th, dtype=torch.float32, device=self.device)
        dt = torch.tensor(de, dtype=torch.float32, device=self.device)
        rows = max(1, _EVAL_ROWS // n_x)

        def evaluate(k: int, lo: int) -> None:
            net, norm = self.members[k], self.normalisers[k]
            step = max(1, _CACHE_ROWS // n_x)
            for start in range(lo, min(lo + rows, n_t), step):
                t = tt[start : start + step]
                inp = torch.cat(
                    [
                        xt.expand(len(t), n_x, -1),
                        t[:, None, :].expand(-1, n_x, -1),
                        dt.expand(len(t), n_x, -1),
                    ],
                    dim=-1,
                )
                with torch.no_grad():
                    block = net(inp)[..., 0].double()
                    if norm is not None:
                        block = block - norm(t, dt)[:, None]
                out[k, start : start + len(t)] = block.cpu().numpy()

        blocks = [(k, lo) for k in range(len(self.members)) for lo in range(0, n_t, rows)]
        # threads only for blocks whose work outweighs starting them (~0.3 ms)
        large = len(blocks) > 1 and min(rows, n_t) * n_x >= _PARALLEL_MIN_ROWS
        _run_jobs(evaluate, blocks, training_workers() if large else 1)
        return out

    def log_ratio(self, x: Any, theta: Any, design: Any) -> np.ndarray:
        """Estimated ``log r(x | theta, design)`` for every (theta, x) pair.

        Parameters
        ----------
        x : array_like
            Events, shape ``(n_x, X)``.
        theta : array_like or mapping
            Parameters, shape ``(n_theta, P)`` (validated against the prior's space).
        design : array_like or mapping
            One design ``(D,)``.

        Returns
        -------
        numpy.ndarray
            Shape ``(n_theta, n_x)``, float64: the ensemble mean.
        """
        return self._evaluate(x, theta, design).mean(axis=0)

    def log_ratio_std(self, x: Any, theta: Any, design: Any) -> np.ndarray:
        """Spread (standard deviation) of the ensemble members, ``(n_theta, n_x)``; 0 for one."""
        return self._evaluate(x, theta, design).std(axis=0)

    def score(self, x: Any, theta: Any, design: Any) -> np.ndarray:
        """Estimated score ``d log r / d theta`` per event at one ``theta``: ``(n_x, P)``."""
        self._require_trained()
        xx = self._check_x(x)
        th = self.parameters.validate(theta)
        if len(th) != 1:
            raise ShapeError(f"score takes one theta, got {len(th)}")
        de = self._check_design(design)
        for nodes, interpolate in _tables(xx):
            values = self._score_at(nodes, th, de)
            if _resolved(values, axis=0):
                return interpolate @ values
        return self._score_at(xx, th, de)

    def _score_at(self, xx: np.ndarray, th: np.ndarray, de: np.ndarray) -> np.ndarray:
        """:meth:`score` on checked events, one parameter point and a design, at every event."""
        n = len(xx)
        xt = torch.tensor(xx, dtype=torch.float32, device=self.device)
        tt = torch.as_tensor(np.repeat(th, n, axis=0), dtype=torch.float32, device=self.device)
        dt = torch.as_tensor(
            np.repeat(de[None], n, axis=0), dtype=torch.float32, device=self.device
        )
        tt.requires_grad_(True)
        total = torch.zeros_like(tt)
        for net, norm in zip(self.members, self.normalisers, strict=True):
            log_r = self._forward(net, xt, tt, dt)
            if norm is not None:
                log_r = log_r - norm(tt, dt)
            (g,) = torch.autograd.grad(log_r.sum(), tt)
            total += g
        return (total / len(self.members)).double().cpu().numpy()


class ScoreEstimator(_NeuralEstimator):
    """SALLY: a network ``t_hat(x, design)`` of the score ``grad_theta log p(x | theta_ref)``.

    The estimated score is the locally optimal summary statistic of the events near
    ``theta_ref``; it is trained by regressing the simulator's joint score.

    Examples
    --------
    >>> import numpy as np, activesci as asci
    >>> est = ScoreEstimator(asci.tasks.gaussian().simulator, hidden=(16,))
    >>> _ = est.train(n_samples=2000, epochs=2, progress=False)
    >>> est.score(np.zeros((4, 1)), [np.pi]).shape
    (4, 1)
    """

    kind = "score"
    default_method = "sally"

    @classmethod
    def _io_sizes(cls, n_features: int, n_parameters: int, n_designs: int) -> tuple[int, int]:
        return n_features + n_designs, n_parameters

    def _new_member(self) -> MLP:
        sizes = self._io_sizes(self.n_features, len(self.parameters), len(self.designs))
        return MLP(*sizes, self.hidden).to(self.device)

    def _inputs(self, data: dict[str, np.ndarray]) -> np.ndarray:
        return np.concatenate([data["x"], data["design"]], axis=1)

    def _batch_loss(
        self, net: nn.Module, batch: dict[str, torch.Tensor], train: bool
    ) -> torch.Tensor:
        t_hat = net(torch.cat([batch["x"], batch["design"]], dim=-1))
        ones = torch.ones(t_hat.shape[:-1], device=t_hat.device)
        return score_loss(t_hat, batch["score"], ones, self.inv_score_var)

    def train(
        self,
        simulator: Simulator | None = None,
        n_samples: int = 100_000,
        *,
        seed: int = 0,
        designs: Any = None,
        epochs: int = 30,
        batch_size: int = 1024,
        learning_rate: float = 3e-3,
        validation_split: float = 0.2,
        patience: int | None = None,
        warm_start: bool = False,
        progress: Progress = True,
    ) -> TrainingSummary:
        """Simulate ``n_samples`` events at ``theta_ref`` with their joint score, and fit.

        The options are those of :meth:`RatioEstimator.train`.
        """
        from activesci.inference.training import simulate_score_data

        sim = simulator or self.simulator
        if sim is None:
            raise ValidationError("train() needs a simulator (none was given at construction)")
        check_capabilities(sim, self._method)
        data = simulate_score_data(
            sim, n_samples, theta_ref=self.theta_ref, designs=designs, seed=seed
        )
        return self._fit(
            data,
            seed=seed,
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            validation_split=validation_split,
            patience=patience,
            warm_start=warm_start,
            progress=progress,
        )

    def score(self, x: Any, design: Any) -> np.ndarray:
        """Estimated score at ``theta_ref`` per event, ``(n_x, P)`` (ensemble mean)."""
        self._require_trained()
        xx = self._check_x(x)
        de = self._check_design(design)
        inp = torch.as_tensor(
            np.concatenate([xx, np.repeat(de[None], len(xx), axis=0)], axis=1),
            dtype=torch.float32,
            device=self.device,
        )
        with torch.no_grad():
            out = torch.stack([net(inp) for net in self.members]).mean(dim=0)
        return out.double().cpu().numpy()


def _pair_ids(data: dict[str, np.ndarray]) -> np.ndarray:
    """Pair id ``0 .. G-1`` of each row of training data.

    Among the rows with one ``(theta, design)``, the k-th event drawn at ``theta`` and the k-th
    drawn at ``theta_ref`` share an id; a row without a partner is a pair of its own.
    """
    n = len(data["y"])
    _, key = np.unique(
        np.concatenate([data["theta"], data["design"]], axis=1), axis=0, return_inverse=True
    )
    key, label = key.ravel(), (data["y"] > 0.5).astype(np.int64)
    order = np.lexsort((np.arange(n), label, key))
    cls = 2 * key[order] + label[order]
    starts = np.flatnonzero(np.r_[True, cls[1:] != cls[:-1]])
    kth = np.empty(n, dtype=np.int64)
    kth[order] = np.arange(n) - np.repeat(starts, np.diff(np.r_[starts, n]))
    _, pair = np.unique(np.stack([key, kth], axis=1), axis=0, return_inverse=True)
    return pair.ravel()


def _shuffle_within(group: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """A random permutation ``p`` of ``range(len(group))`` with ``group[p] == group``."""
    key = torch.randperm(len(group), generator=gen).to(group.device)
    shuffled = torch.argsort(group * len(group) + key)  # by group, randomly within
    out = torch.empty_like(shuffled)
    out[torch.argsort(group, stable=True)] = shuffled
    return out


def _device(name: str) -> torch.device:
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as exc:
        raise ValidationError(f"unknown device {name!r}; use 'cpu' or 'cuda'") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValidationError("device='cuda' was asked for, but torch sees no CUDA GPU here")
    return device


def _check_training_options(
    epochs: int,
    batch_size: int,
    learning_rate: float,
    validation_split: float,
    patience: int | None,
) -> None:
    if not (isinstance(epochs, int) and epochs >= 1):
        raise ValidationError(f"epochs must be a positive integer, got {epochs!r}")
    if not (isinstance(batch_size, int) and batch_size >= 1):
        raise ValidationError(f"batch_size must be a positive integer, got {batch_size!r}")
    if not learning_rate > 0:
        raise ValidationError(f"learning_rate must be positive, got {learning_rate!r}")
    if not 0 < validation_split < 1:
        raise ValidationError(f"validation_split must be in (0, 1), got {validation_split!r}")
    if patience is not None and not (isinstance(patience, int) and patience >= 1):
        raise ValidationError(f"patience must be a positive integer or None, got {patience!r}")


class _CallbackBar:
    """The part of tqdm's interface training uses, reported to ``progress(what, done, total)``."""

    def __init__(self, progress: Callable[[str, int, int], None], desc: str, total: int) -> None:
        self.progress, self.desc, self.total, self.n = progress, desc, total, 0
        progress(desc, 0, total)

    def update(self, k: int = 1) -> None:
        self.n += k
        self.progress(self.desc, self.n, self.total)

    def set_postfix(self, **_: Any) -> None:
        """Losses are not reported through the callback."""


@contextlib.contextmanager
def _transient_bar(progress: Progress, **options: Any) -> Iterator[Any]:
    """A tqdm bar that leaves nothing behind once its work is done, or a callback's bar.

    In a notebook, tqdm leaves a closed widget in the cell's output ("Error displaying widget:
    model not found" in Voila and in saved notebooks) and paints an early-stopped bar red as if
    it had failed; here the bar is shown through a display handle that is blanked at the end.
    A callable ``progress`` is called instead (:data:`activesci.typing.Progress`), and once
    more with ``done == total`` at the end (early stopping is not a failure).
    """
    if callable(progress):
        bar = _CallbackBar(progress, options["desc"], options["total"])
        try:
            yield bar
        finally:
            progress(bar.desc, bar.total, bar.total)
        return
    from tqdm.auto import tqdm
    from tqdm.notebook import tqdm_notebook

    options["disable"] = not progress
    if options.get("disable") or not issubclass(tqdm, tqdm_notebook):
        with tqdm(leave=False, **options) as bar:
            yield bar
        return
    from IPython.display import HTML, display

    bar = tqdm(leave=False, display=False, **options)
    handle = display(bar.container, display_id=True)
    try:
        yield bar
    finally:
        bar.total = bar.n  # early stopping is not a failure
        bar.close()
        if handle is not None:
            handle.update(HTML(""))


def _run_jobs(work: Callable[..., Any], jobs: list[tuple[Any, ...]], workers: int) -> list[Any]:
    """``[work(*job) for job in jobs]``, on up to ``workers`` threads when there are several.

    For independent torch work (each job owns its output): torch releases the GIL inside its
    operations, so the threads use as many cores.
    """
    if workers <= 1 or len(jobs) <= 1:
        return [work(*job) for job in jobs]
    with ThreadPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
        return [future.result() for future in [pool.submit(work, *job) for job in jobs]]


class _SharedBar:
    """One bar for members trained at once: updates from several threads, under a lock."""

    def __init__(self, bar: Any) -> None:
        self.bar, self.lock = bar, threading.Lock()

    def update(self, k: int = 1) -> None:
        with self.lock:
            self.bar.update(k)

    def set_postfix(self, **values: Any) -> None:
        with self.lock:
            self.bar.set_postfix(**values)


class _Stack(nn.Module):
    """Member networks of one shape as one module, along a leading member axis.

    Inputs ``(M, B, n_in)`` give outputs ``(M, B, n_out)``; member ``m`` computes what
    ``nets[m]`` computes on ``inputs[m]`` (batched matrix products, so a training step's fixed
    costs are paid once for the stack). :meth:`unstack` writes the weights back.
    """

    def __init__(self, nets: Sequence[MLP]) -> None:
        super().__init__()
        layers = [_linears(net) for net in nets]
        self.weights = nn.ParameterList(
            nn.Parameter(torch.stack([ls[i].weight.detach().T for ls in layers]).contiguous())
            for i in range(len(layers[0]))
        )
        self.biases = nn.ParameterList(
            nn.Parameter(torch.stack([ls[i].bias.detach()[None] for ls in layers]).contiguous())
            for i in range(len(layers[0]))
        )
        self.register_buffer("shift", torch.stack([net.shift[None] for net in nets]))
        self.register_buffer("scale", torch.stack([net.scale[None] for net in nets]))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Evaluate on raw inputs ``(M, B, n_in)``; returns ``(M, B, n_out)``."""
        h = (inputs - self.shift) / self.scale
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = torch.baddbmm(b, h, w)
            if i < len(self.weights) - 1:
                h = F.silu(h)
        return h

    def unstack(self, nets: Sequence[MLP]) -> None:
        """Copy member ``m``'s weights into ``nets[m]``."""
        with torch.no_grad():
            for m, net in enumerate(nets):
                for layer, w, b in zip(_linears(net), self.weights, self.biases, strict=True):
                    layer.weight.copy_(w[m].T)
                    layer.bias.copy_(b[m, 0])


def _linears(net: MLP) -> list[nn.Linear]:
    """The linear layers of ``net``, input first."""
    return [layer for layer in net.net if isinstance(layer, nn.Linear)]


def _member_epoch(
    train: dict[str, torch.Tensor],
    gen: torch.Generator,
    pairs: torch.Tensor | None,
    reference: tuple[torch.Tensor, torch.Tensor] | None,
) -> dict[str, torch.Tensor]:
    """One member's training rows for an epoch, in its batch order (its own draws)."""
    device = train["x"].device
    if pairs is None:
        perm = torch.randperm(len(train["x"]), generator=gen).to(device)
    else:
        rank = torch.randperm(int(pairs.max()) + 1, generator=gen).to(device)
        perm = torch.argsort(rank[pairs], stable=True)
    epoch = train
    if reference is not None:
        rows, group = reference
        x = train["x"].clone()
        x[rows] = train["x"][rows[_shuffle_within(group, gen)]]
        epoch = {**train, "x": x}
    return {k: v[perm] for k, v in epoch.items()}


def _train_stack(
    nets: Sequence[MLP],
    train: dict[str, torch.Tensor],
    val: dict[str, torch.Tensor],
    batch_loss: Callable[[nn.Module, dict[str, torch.Tensor], bool], torch.Tensor],
    gens: Sequence[torch.Generator],
    epochs: int,
    batch_size: int,
    learning_rate: float,
    patience: int | None,
    bar: Any,
    *,
    pairs: torch.Tensor | None = None,
    reference: tuple[torch.Tensor, torch.Tensor] | None = None,
    average: int | None = None,
) -> list[tuple[MLP, dict[str, list[float]]]]:
    """Train ``nets`` together, each as if alone; returns each with its losses per epoch.

    Adam with exponential decay to lr/10 (elementwise, so one optimiser of the stack is one
    per member); each member keeps the weights of its best validation loss and stops
    recording after ``patience`` epochs without improvement (the stack stops when all have).
    Member ``m`` draws its batch order from ``gens[m]``. ``pairs`` (pair id ``0 .. G-1`` of
    each row): batches hold whole pairs. ``reference`` (rows, design group of each): every
    epoch, the ``x`` of those rows are shuffled among rows of one group. ``average`` (steps):
    the weights validated and kept are an exponential moving average over about that many
    steps.
    """
    stack = _Stack(nets)
    size = len(nets)
    optimizer = torch.optim.Adam(stack.parameters(), lr=learning_rate)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.1 ** (1.0 / epochs))
    n = len(train["x"])
    records: list[dict[str, list[float]]] = [{"train": [], "val": []} for _ in nets]
    averaged = copy.deepcopy(stack) if average else stack
    best_state = copy.deepcopy(averaged.state_dict())
    best = torch.full((size,), math.inf, dtype=torch.float64)
    waited = [0] * size
    active = [True] * size
    stacked_val = {k: v.expand(size, *v.shape) for k, v in val.items()}
    steps = 0
    for _ in range(epochs):
        stack.train()
        parts = [_member_epoch(train, gen, pairs, reference) for gen in gens]
        epoch = {k: torch.stack([part[k] for part in parts]) for k in train}
        total = torch.zeros(size, dtype=torch.float64, device=train["x"].device)
        for lo in range(0, n, batch_size):
            batch = {k: v[:, lo : lo + batch_size] for k, v in epoch.items()}
            losses = batch_loss(stack, batch, True)
            optimizer.zero_grad(set_to_none=True)
            losses.sum().backward()
            optimizer.step()
            if average:
                steps += 1
                with torch.no_grad():
                    for a, p in zip(averaged.parameters(), stack.parameters(), strict=True):
                        a.lerp_(p, max(1.0 / steps, 1.0 / average))
            total += losses.detach().double() * len(batch["x"][0])
        scheduler.step()
        averaged.eval()
        val_loss = _chunked_loss(averaged, stacked_val, batch_loss)
        improved = torch.zeros(size, dtype=torch.bool)
        for m in range(size):
            if not active[m]:
                continue
            records[m]["train"].append(float(total[m]) / n)
            records[m]["val"].append(float(val_loss[m]))
            if not math.isfinite(float(val_loss[m])):
                raise ValidationError(
                    "training diverged (the validation loss is not finite); try a smaller "
                    "learning_rate"
                )
            if val_loss[m] < best[m] - 1e-7:
                best[m], waited[m], improved[m] = val_loss[m], 0, True
            else:
                waited[m] += 1
                active[m] = patience is None or waited[m] < patience
        if improved.any():
            for key, value in averaged.state_dict().items():
                mask = improved.to(value.device)
                best_state[key][mask] = value[mask]
        bar.update(size)
        bar.set_postfix(train=f"{float(total.mean()) / n:.4g}", val=f"{float(val_loss.mean()):.4g}")
        if not any(active):
            break
    stack.load_state_dict(best_state)
    stack.unstack(nets)
    for net in nets:
        net.eval()
    return list(zip(nets, records, strict=True))


def _chunked_loss(
    net: nn.Module,
    data: dict[str, torch.Tensor],
    batch_loss: Callable[[nn.Module, dict[str, torch.Tensor], bool], torch.Tensor],
    chunk: int = 8192,
) -> torch.Tensor:
    """``batch_loss`` over ``data`` in chunks of rows (the last axis but the features').

    A scalar for one network, ``(M,)`` for a stack with data ``(M, n, ...)``; float64, on the
    CPU.
    """
    axis = data["x"].dim() - 2
    n = data["x"].shape[axis]
    total = torch.zeros((), dtype=torch.float64)
    for lo in range(0, n, chunk):
        part = {k: v.narrow(axis, lo, min(chunk, n - lo)) for k, v in data.items()}
        total = total + batch_loss(net, part, False).detach().double().cpu() * min(chunk, n - lo)
    return total / n
