"""The networks and losses of the neural estimators (:mod:`activesci.inference.ratio`).

* :class:`MLP`: a multilayer perceptron with SiLU activations, inputs standardised;
* ``_Stack``: member networks of one shape as one module (batched matrix products);
* ``_Normaliser``: CARL's normalisation ``c(theta, design)`` by kernel regression;
* :func:`ratio_loss` and :func:`score_loss`: per batch, or one per stacked member.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MLP", "ratio_loss", "score_loss"]

_CLAMP = 15.0  # |log r| above this is clamped in the ratio regression (exp overflows otherwise)
_NORM_MIN_NODES = 16  # carl: ... but at least this many at each design
_NORM_MIN_EVENTS = 256  # carl: held-out reference events a design needs to be normalised at
_NORM_LENGTH = 0.5  # carl: kernel length of the normaliser, in standardised units


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
