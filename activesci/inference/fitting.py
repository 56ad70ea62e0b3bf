"""Fitting the neural estimators: the training loop of stacked members, batches, progress.

:func:`_train_stack` trains member networks of one shape together, each as if alone (its own
generator, batch order, Adam state, best weights and patience) and reports each epoch to a
bar of :mod:`activesci.progress`; :func:`_run_jobs` runs independent torch work on threads.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
from torch import nn

from activesci.errors import ValidationError
from activesci.inference.networks import MLP, _Stack
from activesci.typing import Progress

__all__ = ["FitOptions"]


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


@dataclass(frozen=True)
class FitOptions:
    """How a neural estimator fits its networks: the options of ``train`` after the data.

    Adam whose learning rate decays exponentially to a tenth by the last epoch; the weights of
    the epoch with the best validation loss are kept. Annealing to the end matters: per-event
    errors add up over thousands of events in a posterior, and a network stopped early, at a
    high learning rate, is biased.

    Attributes
    ----------
    epochs, batch_size, learning_rate : int, int, float
        The schedule.
    validation_split : float
        The fraction of the samples (of the ``(theta, design)`` pairs, for ``carl``) held out.
    patience : int, optional
        Stop after that many epochs without improvement (default: off).
    warm_start : bool
        Fine-tune: start from the current weights and input standardisation instead of a
        fresh initialisation (needs a trained estimator).
    progress : bool or callable
        tqdm progress bars (notebook-aware), or ``progress(what, epoch, epochs)`` after every
        epoch (:data:`activesci.typing.Progress`).

    Raises
    ------
    ValidationError
        An option out of its range.
    """

    epochs: int = 30
    batch_size: int = 1024
    learning_rate: float = 3e-3
    validation_split: float = 0.2
    patience: int | None = None
    warm_start: bool = False
    progress: Progress = True

    def __post_init__(self) -> None:
        epochs, batch_size, patience = self.epochs, self.batch_size, self.patience
        if not (isinstance(epochs, int) and epochs >= 1):
            raise ValidationError(f"epochs must be a positive integer, got {epochs!r}")
        if not (isinstance(batch_size, int) and batch_size >= 1):
            raise ValidationError(f"batch_size must be a positive integer, got {batch_size!r}")
        if not self.learning_rate > 0:
            raise ValidationError(f"learning_rate must be positive, got {self.learning_rate!r}")
        if not 0 < self.validation_split < 1:
            raise ValidationError(
                f"validation_split must be in (0, 1), got {self.validation_split!r}"
            )
        if patience is not None and not (isinstance(patience, int) and patience >= 1):
            raise ValidationError(f"patience must be a positive integer or None, got {patience!r}")

    @classmethod
    def of(cls, options: dict[str, Any]) -> FitOptions:
        """The options given to ``train`` by keyword; an unknown name is a ``TypeError``."""
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise TypeError(f"train() got an unexpected option {unknown[0]!r}; it takes {known}")
        return cls(**options)


def _run_jobs(work: Callable[..., Any], jobs: list[tuple[Any, ...]], workers: int) -> list[Any]:
    """``[work(*job) for job in jobs]``, on up to ``workers`` threads when there are several.

    For independent torch work (each job owns its output): torch releases the GIL inside its
    operations, so the threads use as many cores.
    """
    if workers <= 1 or len(jobs) <= 1:
        return [work(*job) for job in jobs]
    with ThreadPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
        return [future.result() for future in [pool.submit(work, *job) for job in jobs]]


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
