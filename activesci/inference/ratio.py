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

from typing import Any

import numpy as np
import torch
from torch import nn

from activesci.errors import (
    MissingCapabilityError,
    ShapeError,
    ValidationError,
)
from activesci.inference.chebyshev import _tables, resolved_at
from activesci.inference.fitting import (
    _run_jobs,
)
from activesci.inference.methods import (
    METHODS,
    Method,
)
from activesci.inference.networks import MLP, ratio_loss, score_loss
from activesci.inference.neural import _NeuralEstimator
from activesci.threads import training_workers
from activesci.typing import Simulator

__all__ = [
    "METHODS",
    "MLP",
    "Method",
    "RatioEstimator",
    "ScoreEstimator",
    "ratio_loss",
    "score_loss",
]

_EVAL_ROWS = 1 << 17  # rows of one job (a thread's share) when evaluating on a grid
#: ... evaluated in forward passes of about this many rows, whose activations (0.5 MB) stay in
#: the CPU's cache. A line-shape ensemble on a grid, 2 CPUs: 145 ns per network row against
#: 304 ns in passes of 2^17 rows (benchmarks/training.py). Smaller passes lose to Python's
#: per-pass overhead when two threads share the interpreter (1024 rows: 221 ns)
_CACHE_ROWS = 2048
_PARALLEL_MIN_ROWS = 1 << 14  # rows per block from which the members' blocks run on threads


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

    def _simulate(self, simulator: Simulator, n: int, *, designs: Any, seed: int) -> Any:
        from activesci.inference.training import simulate_training_data

        return simulate_training_data(
            simulator,
            n,
            theta_ref=self.theta_ref,
            designs=designs,
            gold=self._method.needs,
            seed=seed,
        )

    def _training_arrays(self, data: Any) -> dict[str, np.ndarray]:
        from activesci.inference.training import TrainingData

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
        return data.arrays()

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
            ok = resolved_at(values, axis=-1).all(axis=0)
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
            if resolved_at(values, axis=0).all():
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

    def _simulate(self, simulator: Simulator, n: int, *, designs: Any, seed: int) -> Any:
        from activesci.inference.training import simulate_score_data

        return simulate_score_data(
            simulator, n, theta_ref=self.theta_ref, designs=designs, seed=seed
        )

    def _training_arrays(self, data: Any) -> dict[str, np.ndarray]:
        keys = ("x", "design", "score")
        if not (isinstance(data, dict) and set(data) == set(keys)):
            raise ValidationError(
                f"data must be simulate_score_data's arrays {list(keys)}, got "
                f"{sorted(data) if isinstance(data, dict) else type(data).__name__}"
            )
        arrays = {k: np.asarray(data[k], dtype=np.float64) for k in keys}
        widths = {"x": self.n_features, "design": len(self.designs), "score": len(self.parameters)}
        for k, width in widths.items():
            if arrays[k].ndim != 2 or arrays[k].shape != (len(arrays["x"]), width):
                raise ShapeError(
                    f"data[{k!r}] must have shape ({len(arrays['x'])}, {width}), got "
                    f"{arrays[k].shape}"
                )
        return arrays

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
