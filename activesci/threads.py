"""How many threads torch and numpy's BLAS may use: the CPUs granted, not the CPUs visible.

torch starts one intra-op thread per visible core. On mybinder, in a container with a CPU quota
or on a shared lab machine, more cores are visible than granted, or neighbours use them, and a
thread that waits for a busy core stalls every parallel operation of the step it belongs to.
Our networks are small MLPs (two hidden layers of 64, batches of 1024), so a second thread buys
little and costs much as soon as a core is not free.

Measured on the 2-core development machine (Intel Xeon, torch 2.13 CPU, MKL + OpenMP), never
quiet: other engineers' jobs kept the load average at 3-12 (two of them at nice 0, ours at nice
10), so "alone" means beside those and "busy" beside those and one more ``python -c "while
True: pass"``. Seconds, one run each, ``benchmarks/threads.py``:

==========================================  =======  =====  =====  ========
workload                                    threads  alone  busy   slowdown
==========================================  =======  =====  =====  ========
training (ALICES, weinberg, 2e4 samples)    1        12.4   37.0   3.0x
training                                    2        70.6   239.1  3.4x
demo (2 rounds, 2e4 samples), policy        1        46.3   55.4   1.20x
demo, torch's default                       2        156.9  243.1  1.55x
single-threaded Python loop (control)       1        2.3    4.1    1.82x
==========================================  =======  =====  =====  ========

The demo rows and the control are one run. Other runs of the demo gave the policy 1.31x and
2.06x (median of 2 interleaved repeats) and torch's default 4.1x; the control, 1.8-1.9x, is
the floor while other jobs hold both cores (the busy process then halves any workload's share),
so the policy's slowdown is mostly the machine's. What held in every run: two
threads were 3.4-5.7x slower than one alone and 4.4-6.5x slower beside the busy process, because
each parallel operation of a small network waits for its slowest thread, and a thread that
shares a core waits a whole time slice. The issue's figures, with one busy neighbour: a
training 9.3 s with 1 thread and 26.1 s with torch's default 2; ``activesci demo`` 700 s instead
of 95 s. What a second thread gains on a quiet machine could not be measured here; it is at most
2x, less the cost of splitting 64-wide matrix products. Hence the policy (:func:`policy_threads`):
one thread up to 2 CPUs, half the CPUs above, so that a neighbour (or numpy's BLAS) takes the
other half without stalling torch; one inter-op thread. Above 2 CPUs the halving is a
judgement, not a measurement (no larger machine was at hand); ``ACTIVESCI_THREADS`` overrides it.

Coarser parallelism is safe where the fine kind is not: the members of an ensemble share no
operation, so :func:`training_workers` (the CPUs granted per torch thread, override
``ACTIVESCI_TRAINING_WORKERS``) of them train and evaluate at once on Python threads; torch
releases the GIL inside each operation. A member whose core is busy only waits its turn.

The CPUs granted (:func:`available_cpus`) are the fewest of the CPU affinity
(``os.sched_getaffinity``) and the cgroup quota (v2 ``cpu.max``, v1 ``cpu.cfs_quota_us`` /
``cpu.cfs_period_us``), rounded up. Unreadable or malformed cgroup files are ignored.

One override: the environment variable ``ACTIVESCI_THREADS`` (a positive integer), or
:func:`set_threads` from Python. A choice the user already made is kept: with
``OMP_NUM_THREADS``, ``MKL_NUM_THREADS`` or ``OPENBLAS_NUM_THREADS`` set, or after
``torch.set_num_threads`` with a count other than torch's default, :func:`configure_threads`
changes nothing.

>>> policy_threads(2), policy_threads(8)
(1, 4)
>>> parse_cpu_max("150000 100000")
1.5
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from activesci.errors import ValidationError

__all__ = [
    "ENV",
    "USER_ENV",
    "WORKERS_ENV",
    "available_cpus",
    "configure_threads",
    "cpu_quota",
    "parse_cfs",
    "parse_cpu_max",
    "policy_threads",
    "requested_threads",
    "set_threads",
    "training_workers",
]

#: The override: a positive integer, the torch and BLAS threads of every activesci entry point.
ENV = "ACTIVESCI_THREADS"
#: The override of :func:`training_workers`: a positive integer, networks trained at once.
WORKERS_ENV = "ACTIVESCI_TRAINING_WORKERS"
#: Variables by which a user already chose threads for torch or BLAS; the policy keeps them.
USER_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
#: Where the cgroup file systems are mounted.
CGROUP_ROOT = Path("/sys/fs/cgroup")

# The count set_threads last gave torch (None: never), to tell our choice from the user's.
_applied: dict[str, int | None] = {"torch": None}


def parse_cpu_max(text: str) -> float | None:
    """The CPU quota in CPUs from a cgroup v2 ``cpu.max`` (``"150000 100000"`` -> 1.5).

    Returns None for no limit (``"max 100000"``) and for malformed content.
    """
    parts = text.split()
    if len(parts) == 1:
        parts.append("100000")  # the period may be left out; the kernel's default
    if len(parts) != 2 or parts[0] == "max":
        return None
    return _ratio(parts[0], parts[1])


def parse_cfs(quota: str, period: str) -> float | None:
    """The CPU quota in CPUs from cgroup v1 ``cpu.cfs_quota_us`` and ``cpu.cfs_period_us``.

    Returns None for no limit (quota ``-1``) and for malformed content.
    """
    return _ratio(quota.strip(), period.strip())


def _ratio(quota: str, period: str) -> float | None:
    try:
        q, p = int(quota), int(period)
    except ValueError:
        return None
    return q / p if q > 0 and p > 0 else None


def cpu_quota(
    root: str | os.PathLike[str] = CGROUP_ROOT, cgroup: str | None = None
) -> float | None:
    """The process's CPU quota in CPUs (may be fractional), or None if there is none.

    Reads cgroup v2 ``cpu.max`` of the process's cgroup and of every parent up to ``root``
    and cgroup v1 ``cpu/cpu.cfs_quota_us``; the smallest quota wins. Unreadable or malformed
    files count as no limit.

    Parameters
    ----------
    root : path
        Where the cgroup file systems are mounted.
    cgroup : str, optional
        The process's v2 cgroup, e.g. ``"/user.slice/job"`` (default: from ``/proc/self/cgroup``).
    """
    root = Path(root)
    if cgroup is None:
        lines = (_read(Path("/proc/self/cgroup")) or "").splitlines()
        cgroup = next((line[3:].strip() for line in lines if line.startswith("0::/")), "/")
    quotas = [parse_cpu_max(text) for text in _read_v2(root, cgroup)]
    quota_us = _read(root / "cpu" / "cpu.cfs_quota_us") or _read(
        root / "cpu,cpuacct" / "cpu.cfs_quota_us"
    )
    period_us = _read(root / "cpu" / "cpu.cfs_period_us") or _read(
        root / "cpu,cpuacct" / "cpu.cfs_period_us"
    )
    if quota_us is not None and period_us is not None:
        quotas.append(parse_cfs(quota_us, period_us))
    found = [q for q in quotas if q is not None]
    return min(found) if found else None


def _read_v2(root: Path, cgroup: str) -> list[str]:
    """The ``cpu.max`` texts from the v2 cgroup ``cgroup`` up to ``root``."""
    folder = root / cgroup.strip().lstrip("/")
    if ".." in Path(cgroup).parts:
        folder = root
    texts = []
    while True:
        text = _read(folder / "cpu.max")
        if text is not None:
            texts.append(text)
        if folder == root or root not in folder.parents:
            return texts
        folder = folder.parent


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError):
        return None


def available_cpus(root: str | os.PathLike[str] = CGROUP_ROOT) -> int:
    """The CPUs this process may use: its CPU affinity, capped by the cgroup quota rounded up."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cpus = os.cpu_count() or 1
    quota = cpu_quota(root)
    if quota is not None:
        cpus = min(cpus, math.ceil(quota))
    return max(1, cpus)


def policy_threads(cpus: int) -> int:
    """Torch and BLAS threads for ``cpus`` granted CPUs: 1 up to 2 CPUs, else ``cpus // 2``."""
    if isinstance(cpus, bool) or not isinstance(cpus, int) or cpus < 1:
        raise ValidationError(f"cpus must be a positive integer, got {cpus!r}")
    return 1 if cpus <= 2 else cpus // 2


def requested_threads(environ: Mapping[str, str] | None = None) -> int | None:
    """The thread count in ``ACTIVESCI_THREADS``, or None if it is unset or empty.

    Raises
    ------
    ValidationError
        If the variable is set to anything but a positive integer.
    """
    return _env_count(environ, ENV, "threads")


def _env_count(environ: Mapping[str, str] | None, name: str, unit: str) -> int | None:
    """The positive integer in the variable ``name``, or None if it is unset or empty."""
    text = (os.environ if environ is None else environ).get(name, "").strip()
    if not text:
        return None
    if not text.isdecimal() or int(text) < 1:
        raise ValidationError(f"{name} must be a positive integer ({unit}), got {text!r}")
    return int(text)


def set_threads(n: int) -> int:
    """Use ``n`` threads in torch (intra-op) and in numpy's BLAS; one torch inter-op thread.

    Parameters
    ----------
    n : int
        Threads, >= 1.

    Returns
    -------
    int
        ``n``.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValidationError(f"threads must be a positive integer, got {n!r}")
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # only possible before torch's first inter-op work; harmless after
        pass
    threadpool_limits(limits=n, user_api="blas")  # not a context: stays in force
    _applied["torch"] = n
    return n


def configure_threads(
    environ: Mapping[str, str] | None = None, root: str | os.PathLike[str] = CGROUP_ROOT
) -> int | None:
    """Apply the thread policy unless the user chose already; the entry points call this.

    ``ACTIVESCI_THREADS`` wins. Otherwise nothing changes if ``OMP_NUM_THREADS``,
    ``MKL_NUM_THREADS`` or ``OPENBLAS_NUM_THREADS`` is set, or if torch's thread count is no
    longer what torch or :func:`set_threads` left (the user called ``torch.set_num_threads``).
    Otherwise :func:`policy_threads` of :func:`available_cpus`.

    Returns
    -------
    int or None
        The threads set, or None if the user's choice was kept.

    Raises
    ------
    ValidationError
        If ``ACTIVESCI_THREADS`` is not a positive integer.
    """
    environ = os.environ if environ is None else environ
    requested = requested_threads(environ)
    if requested is not None:
        return set_threads(requested)
    if any(environ.get(name, "").strip() for name in USER_ENV):
        return None
    if "torch" in sys.modules and not _torch_untouched():
        return None
    return set_threads(policy_threads(available_cpus(root)))


def _torch_untouched() -> bool:
    """Whether torch's intra-op threads are still torch's default or our last choice."""
    import torch

    current = torch.get_num_threads()
    if _applied["torch"] is not None:
        return current == _applied["torch"]
    # torch's default: the cores it may run on (MKL: physical cores; OpenMP: the affinity)
    try:
        visible = len(os.sched_getaffinity(0))
    except AttributeError:
        visible = os.cpu_count() or 1
    return current in {visible, os.cpu_count(), _physical_cores()}


def _physical_cores() -> int | None:
    """Distinct (package, core) pairs among the CPUs of the affinity (Linux), else None."""
    try:
        cpus = os.sched_getaffinity(0)
    except AttributeError:
        return None
    cores = set()
    for cpu in cpus:
        topology = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        package, core = _read(topology / "physical_package_id"), _read(topology / "core_id")
        if package is None or core is None:
            return None
        cores.add((package.strip(), core.strip()))
    return len(cores) or None


def training_workers(
    environ: Mapping[str, str] | None = None, root: str | os.PathLike[str] = CGROUP_ROOT
) -> int:
    """How many ensemble members to train at once: the CPUs granted per torch thread.

    Members are independent, so unlike a second intra-op thread (which stalls every operation
    when a core is busy), a second member on a busy core at worst shares it: training takes
    about as long as training in turn. ``ACTIVESCI_TRAINING_WORKERS`` overrides the count.

    Returns
    -------
    int
        ``max(1, available_cpus() // torch threads)``, or the override.

    Raises
    ------
    ValidationError
        If ``ACTIVESCI_TRAINING_WORKERS`` is not a positive integer.
    """
    requested = _env_count(environ, WORKERS_ENV, "networks")
    if requested is not None:
        return requested
    import torch

    return max(1, available_cpus(root) // max(1, torch.get_num_threads()))
