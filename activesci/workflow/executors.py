"""Executors: where the nodes of a workflow DAG run, as adage backends.

Each executor implements adage's backend protocol (``submit``, ``ready``, ``successful``,
``result``, ``fail_info``) so ``adage.rundag`` can drive it, plus ``close`` (and the context
manager protocol):

* :class:`InlineExecutor`: in this process, one task at a time (debugging, notebooks);
* :class:`ProcessExecutor`: a local process pool (``concurrent.futures``);
* :class:`DaskExecutor`: a Dask cluster. Without an address it starts a ``LocalCluster``;
  with one (``tcp://scheduler:8786``) it joins a real cluster. For Slurm, PBS or Kubernetes,
  start the cluster with ``dask-jobqueue`` (``SLURMCluster``) or ``dask-kubernetes``
  (``KubeCluster``) and pass its ``scheduler_address``, or pass the cluster object itself.

Tasks are zero-argument callables (``functools.partial`` of module-level functions) so they
pickle to other processes and machines; the same seeds give the same results everywhere.

>>> import functools, operator
>>> with make_executor("inline") as ex:
...     proxy = ex.submit(functools.partial(operator.add, 2, 3))
...     ex.ready(proxy), ex.successful(proxy), ex.result(proxy)
(True, True, 5)
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from activesci.errors import MissingExtraError, ValidationError
from activesci.typing import Closing, Executor

__all__ = ["EXECUTORS", "DaskExecutor", "InlineExecutor", "ProcessExecutor", "make_executor"]


class _Executor(Closing):
    """Shared parts: ``with executor:`` closes it (:class:`~activesci.typing.Executor`)."""

    name = "executor"

    def close(self) -> None:
        """Release workers (no-op by default)."""


@dataclass
class _Done:
    """An inline task's outcome."""

    value: Any = None
    error: BaseException | None = None


class InlineExecutor(_Executor):
    """Run each task at submission, in this process."""

    name = "inline"

    def submit(self, task: Callable[[], Any]) -> _Done:
        """Run ``task`` now and keep its result or exception."""
        try:
            return _Done(value=task())
        except Exception as exc:
            return _Done(error=exc)

    def ready(self, proxy: _Done) -> bool:
        """Always ready: the task ran at submission."""
        return True

    def successful(self, proxy: _Done) -> bool:
        """Whether the task returned without raising."""
        return proxy.error is None

    def result(self, proxy: _Done) -> Any:
        """The task's return value (re-raises its exception)."""
        if proxy.error is not None:
            raise proxy.error
        return proxy.value

    def fail_info(self, proxy: _Done) -> BaseException | None:
        """The exception the task raised."""
        return proxy.error


class _FutureExecutor(_Executor):
    """Backends whose proxies are ``concurrent.futures``-like futures."""

    def ready(self, proxy: Any) -> bool:
        """Whether the task finished (either way)."""
        return bool(proxy.done())

    def successful(self, proxy: Any) -> bool:
        """Whether the task finished without raising."""
        return bool(proxy.done()) and proxy.exception() is None

    def result(self, proxy: Any) -> Any:
        """The task's return value (re-raises its exception)."""
        return proxy.result()

    def fail_info(self, proxy: Any) -> BaseException | None:
        """The exception the task raised."""
        return proxy.exception()


class ProcessExecutor(_FutureExecutor):
    """A local pool of ``workers`` processes (started with ``spawn``: safe with torch threads).

    Parameters
    ----------
    workers : int, optional
        Pool size; default the number of CPUs.
    """

    name = "processes"

    def __init__(self, workers: int | None = None) -> None:
        if workers is not None and not (isinstance(workers, int) and workers >= 1):
            raise ValidationError(f"workers must be a positive integer, got {workers!r}")
        self.pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("spawn")
        )

    def submit(self, task: Callable[[], Any]) -> concurrent.futures.Future[Any]:
        """Send ``task`` to a worker process."""
        return self.pool.submit(task)

    def close(self) -> None:
        """Shut the pool down."""
        self.pool.shutdown(wait=True, cancel_futures=True)


class DaskExecutor(_FutureExecutor):
    """Run tasks on a Dask cluster (``pip install 'activesci[dask]'``).

    Parameters
    ----------
    address : str or cluster, optional
        A scheduler address (``tcp://host:8786``) or a cluster object (``LocalCluster``,
        ``dask_jobqueue.SLURMCluster``, ``dask_kubernetes.KubeCluster``). ``None`` starts a
        ``LocalCluster`` of ``workers`` single-threaded worker processes, closed by ``close``.
    workers : int
        Workers of the local cluster.
    """

    name = "dask"

    def __init__(self, address: Any = None, *, workers: int = 2) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise MissingExtraError(
                "the dask executor needs dask.distributed: pip install 'activesci[dask]'"
            ) from None
        self._cluster = None
        self._results: dict[Any, Any] = {}
        if address is None:
            self._cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=40,
            )
            address = self._cluster
        self.client = Client(address)

    def submit(self, task: Callable[[], Any]) -> Any:
        """Send ``task`` to the cluster (never cached: every submission runs)."""
        return self.client.submit(task, pure=False)

    def successful(self, proxy: Any) -> bool:
        """Whether the task finished without raising (the future's local status: no round trip)."""
        return proxy.status == "finished"

    def result(self, proxy: Any) -> Any:
        """The task's return value, fetched from the cluster once.

        adage asks for the result of every finished node on every tick; without the cache each
        ask is a round trip to the scheduler, and the polling steals a core from the workers.
        """
        if proxy.key not in self._results:
            self._results[proxy.key] = proxy.result()
        return self._results[proxy.key]

    def close(self) -> None:
        """Disconnect; stop the local cluster if this executor started it."""
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()


#: Executor factories by name.
EXECUTORS: dict[str, Callable[..., Any]] = {
    "inline": InlineExecutor,
    "processes": ProcessExecutor,
    "dask": DaskExecutor,
}


def make_executor(executor: Any = "inline", **options: Any) -> Executor:
    """An executor from its name (``inline``, ``processes``, ``dask``), or pass one through."""
    if not isinstance(executor, str):
        missing = [
            m for m in ("submit", "ready", "successful", "result") if not hasattr(executor, m)
        ]
        if missing:
            raise ValidationError(
                f"{type(executor).__name__} is not an executor: it lacks {missing}"
            )
        return executor
    try:
        return EXECUTORS[executor](**options)
    except KeyError:
        raise ValidationError(
            f"unknown executor {executor!r}; expected one of {sorted(EXECUTORS)}"
        ) from None
