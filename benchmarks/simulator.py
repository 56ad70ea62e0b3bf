"""Single-core throughput of the Weinberg simulator: a benchmark, never a timed unit test.

On one pinned CPU core (Linux only: it uses ``os.sched_setaffinity``) this measures

* ``WeinbergSimulator.sample`` at ``sin2w = 0.2315``, ``sqrt_s = 88`` GeV, at truth level
  (``AngularDetector.perfect()``) and with the default detector (acceptance 0.95, resolution
  0.02, misid 0.005), in millions of events per second, for numpy's PCG64 (what
  ``numpy.random.default_rng`` uses) and SFC64 bit generators;
* numpy's raw ``Generator.random`` and ``Generator.standard_normal`` into a 2^15 buffer (the
  simulator's block size), for context: they bound what sampling can reach;
* ``WeinbergSimulator.log_likelihood`` of 10^4 recorded events (default detector) on a grid of
  200 ``sin2w`` values in [0.15, 0.35], in (theta, x) evaluations per second and in ms per call.

Every measurement is warmed up with one call, then repeated; the table gives the median, min
and max over the repeats and the target on the median where there is one (truth level
>= 100 M events/s, with detector >= 40 M events/s). The same numbers, with the per-repeat
values and the machine, go to ``benchmarks/results/simulator.json`` (git-ignored), and with
the default events and repeats the README's table to ``benchmarks/quoted/simulator.json``.

``--clock cpu`` times each repeat by the process's CPU time instead of the wall clock: on a
machine shared with other jobs, the wall clock also counts the time the pinned core spent on
them (contention for caches and memory bandwidth still counts either way).

Run from the repository root::

    .venv/bin/python benchmarks/simulator.py                              # 10^7 events, 7 repeats
    .venv/bin/python benchmarks/simulator.py --events 100000 --repeats 2  # quick smoke run
    .venv/bin/python benchmarks/simulator.py --clock cpu                  # on a busy machine
"""

from __future__ import annotations

import os

# One thread everywhere; this has to happen before numpy loads its BLAS/OpenMP runtimes.
os.environ["OMP_NUM_THREADS"] = "1"
os.environ["OPENBLAS_NUM_THREADS"] = "1"
os.environ["MKL_NUM_THREADS"] = "1"

import argparse
import gc
import json
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from _common import cpu_model, git_commit, positive_int, write_quoted

from activesci.simulators.detector import AngularDetector
from activesci.simulators.weinberg import WeinbergSimulator

THETA = {"sin2w": 0.2315}
DESIGN = {"sqrt_s": 88.0}
SEED = 20240611
BLOCK = 1 << 15  # buffer of the raw generator benchmarks, the simulator's block size
LL_EVENTS = 10_000  # recorded events x in the log-likelihood benchmark
LL_GRID = 200  # sin2w values in the log-likelihood benchmark
TARGETS = {"truth": 100.0, "detector": 40.0}  # M events/s, on the median
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "simulator.json"

GENERATORS: dict[str, Callable[[int], np.random.Generator]] = {
    "PCG64": np.random.default_rng,
    "SFC64": lambda seed: np.random.Generator(np.random.SFC64(seed)),
}


@dataclass(frozen=True)
class Result:
    """One benchmark row: a value per repeat, in ``unit``, and the target on the median."""

    what: str
    generator: str
    unit: str
    values: tuple[float, ...]
    target: float | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def as_json(self) -> dict[str, Any]:
        return {
            "what": self.what,
            "generator": self.generator,
            "unit": self.unit,
            "median": self.median,
            "min": min(self.values),
            "max": max(self.values),
            "values": list(self.values),
            "target": self.target,
            "meets_target": None if self.target is None else self.median >= self.target,
        }


def pin_to_one_core() -> int:
    """Restrict this process to the first CPU it may run on and return that CPU's number."""
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


#: The clocks ``timings`` can read: the wall clock, or this process's CPU time.
CLOCK: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.process_time}


def timings(
    call: Callable[[], object], repeats: int, clock: Callable[[], float] = time.perf_counter
) -> list[float]:
    """Seconds taken by each of ``repeats`` calls of ``call``, after one warm-up call."""
    call()
    gc.collect()
    gc.disable()
    try:
        seconds = []
        for _ in range(repeats):
            start = clock()
            call()
            seconds.append(clock() - start)
    finally:
        gc.enable()
    return seconds


def bench_sample(
    level: str, generator: str, n_events: int, repeats: int, clock: Callable[[], float]
) -> Result:
    """Events per second of ``sample`` at truth level or with the default detector."""
    detector = AngularDetector.perfect() if level == "truth" else AngularDetector()
    sim = WeinbergSimulator(detector=detector)
    rng = GENERATORS[generator](SEED)
    seconds = timings(lambda: sim.sample(THETA, DESIGN, rng, n=n_events), repeats, clock)
    return Result(
        what=f"sample, {level}",
        generator=generator,
        unit="M events/s",
        values=tuple(n_events / s / 1e6 for s in seconds),
        target=TARGETS[level],
    )


def bench_raw(
    method: str, generator: str, n_events: int, repeats: int, clock: Callable[[], float]
) -> Result:
    """Numbers per second of ``rng.<method>(out=buf)`` on a ``BLOCK``-sized buffer.

    Each repeat fills the buffer often enough to draw about ``n_events`` numbers.
    """
    fill = getattr(GENERATORS[generator](SEED), method)
    buf = np.empty(BLOCK)
    calls = max(1, n_events // BLOCK)

    def run() -> None:
        for _ in range(calls):
            fill(out=buf)

    seconds = timings(run, repeats, clock)
    return Result(
        what=f"rng.{method}, 2^15 buffer",
        generator=generator,
        unit="M numbers/s",
        values=tuple(calls * BLOCK / s / 1e6 for s in seconds),
    )


def bench_log_likelihood(repeats: int, clock: Callable[[], float]) -> list[Result]:
    """``log_likelihood`` of ``LL_EVENTS`` recorded events on ``LL_GRID`` sin2w values."""
    sim = WeinbergSimulator()
    x = sim.sample(THETA, DESIGN, GENERATORS["PCG64"](SEED), n=LL_EVENTS).x
    grid = np.linspace(0.15, 0.35, LL_GRID)[:, None]
    seconds = timings(lambda: sim.log_likelihood(x, grid, DESIGN), repeats, clock)
    what = f"log_likelihood, {LL_GRID} x {LL_EVENTS}"
    evaluations = LL_GRID * LL_EVENTS
    return [
        Result(what, "-", "M evals/s", tuple(evaluations / s / 1e6 for s in seconds)),
        Result(what, "-", "ms", tuple(s * 1e3 for s in seconds)),
    ]


def format_table(results: list[Result]) -> str:
    """A fixed-width text table of the results, one line per row."""
    header = ("what", "generator", "median", "min", "max", "unit", "target")
    rows = [
        (
            r.what,
            r.generator,
            f"{r.median:.2f}",
            f"{min(r.values):.2f}",
            f"{max(r.values):.2f}",
            r.unit,
            "-" if r.target is None else f">= {r.target:g}",
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    numeric = {2, 3, 4}

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(
            cell.rjust(w) if i in numeric else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(row) for row in rows)])


def parse_args() -> argparse.Namespace:
    """The command line: ``--events``, ``--repeats`` and ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--events", type=positive_int, default=10**7, help="events per sample call (10^7)"
    )
    parser.add_argument(
        "--repeats", type=positive_int, default=7, help="timed repeats after a warm-up (7)"
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"JSON results file ({DEFAULT_OUT})"
    )
    parser.add_argument(
        "--clock", choices=sorted(CLOCK), default="wall", help="time by wall clock or CPU time"
    )
    return parser.parse_args()


#: The README table's rows: (what, generator) of a result and how the README names them.
README_ROWS = [
    ("sample, truth", "PCG64"),
    ("sample, truth", "SFC64"),
    ("sample, detector", "PCG64"),
    ("sample, detector", "SFC64"),
    ("rng.standard_normal, 2^15 buffer", "PCG64"),
]


def quote(results: list[Result], machine: dict[str, Any], command: str) -> Path:
    """Write the README's table (``benchmarks/quoted/simulator.json``)."""
    by_key = {(r.what, r.generator, r.unit): r for r in results}
    rows: list[list[Any]] = []
    for what, generator in README_ROWS:
        r = next(v for (w, g, _), v in by_key.items() if (w, g) == (what, generator))
        rows.append([None, None, [r.median], None if r.target is None else [r.target]])
    ll = f"log_likelihood, {LL_GRID} x {LL_EVENTS}"
    rate, ms = by_key[(ll, "-", "M evals/s")], by_key[(ll, "-", "ms")]
    rows.append([None, None, [rate.median, ms.median], None])
    return write_quoted(
        "simulator",
        script="benchmarks/simulator.py",
        command=command,
        machine=machine,
        threads="1, pinned to one core",
        columns=["what", "bit generator", "median", "target"],
        rows=rows,
    )


def main() -> None:
    """Pin to one core, run every benchmark, print the table and write the JSON."""
    cpu = pin_to_one_core()
    args = parse_args()
    clock = CLOCK[args.clock]
    machine = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_pinned": cpu,
        "load_average_at_start": list(os.getloadavg()),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "clock": args.clock,
        "n_events": args.events,
        "repeats": args.repeats,
        "log_likelihood": {"n_x": LL_EVENTS, "n_theta": LL_GRID},
    }
    results = [
        bench_sample(level, generator, args.events, args.repeats, clock)
        for level in TARGETS
        for generator in GENERATORS
    ]
    results += [
        bench_raw(method, generator, args.events, args.repeats, clock)
        for method in ("random", "standard_normal")
        for generator in GENERATORS
    ]
    results += bench_log_likelihood(args.repeats, clock)

    print(
        f"WeinbergSimulator on CPU {cpu} ({machine['cpu_model']}), Python {machine['python']}, "
        f"numpy {machine['numpy']}: {args.events} events, {args.repeats} repeats"
    )
    print(format_table(results))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {**machine, "results": [r.as_json() for r in results]}
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {args.out}")
    if (args.events, args.repeats) == (10**7, 7):  # the README quotes the default run
        command = "python benchmarks/simulator.py" + (" --clock cpu" if args.clock == "cpu" else "")
        print(f"wrote {quote(results, machine, command)}")


if __name__ == "__main__":
    main()
