"""Command steps: run a program on the host or in a container, with checked outputs.

:class:`CommandStep` is the unit of work of a workflow: a command, the files it needs, the
files it must produce, where it runs (``runtime="local"``, ``"podman"`` or ``"docker"`` with an
``image``), a timeout and a bounded number of retries. A step that fails, hangs or leaves an
output missing or unreadable raises :class:`~activesci.errors.StepError` naming the step, its
command and the tail of its stderr, and its partial outputs are deleted, so nothing downstream
ever reads them. Inputs and outputs are paths inside the work folder: an absolute path, a
``..`` or a symlink that leads out of it is a :class:`~activesci.errors.ValidationError` before
anything runs. The command runs in a session of its own, and a timeout kills the whole session
(every process the command started), not only the command itself; a container step's container
is removed too (it runs apart from the podman or docker client that started it).

:class:`CommandSimulator` turns any program or image that speaks the ``activesci simulate``
contract (``PROGRAM TASK --theta k=v ... --design k=v ... --n N --seed S --out FILE.npz``,
writing an ``activesci.events/1`` file) into a :class:`~activesci.typing.Simulator`.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from activesci.errors import StepError, ValidationError
from activesci.simulators.base import SimulatorBase
from activesci.simulators.eventfile import read_events
from activesci.tasks import Task
from activesci.typing import Events
from activesci.workflow.containers import RUNTIMES, container_argv

__all__ = ["CommandSimulator", "CommandStep", "StepResult", "check_output", "task_arguments"]

_TAIL = 2000  # characters of stderr quoted in errors


def check_output(path: Path) -> None:
    """Check that an output exists and parses by its suffix (``.npz``, ``.json``); else raise.

    Raises
    ------
    ValueError
        Naming the file and what is wrong with it.
    """
    if not path.exists():
        raise ValueError(f"output {path.name} was not written")
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as data:
                for key in data.files:
                    data[key]
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise ValueError(f"output {path.name} is not a readable .npz archive ({exc})") from None
    elif path.suffix == ".json":
        try:
            json.loads(path.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"output {path.name} is not valid JSON ({exc})") from None
    elif path.stat().st_size == 0:
        raise ValueError(f"output {path.name} is empty")


def task_arguments(task: Task) -> list[str]:
    """``activesci simulate``'s arguments that rebuild ``task``: its ref and its options.

    Options go as ``--task-option NAME=JSON``, so a task of the user's own factory (with its
    own options) is rebuilt in the step exactly as in the learner.
    """
    config = task.to_config()
    options = [f"{k}={json.dumps(v)}" for k, v in config["task_options"].items()]
    return [config["task"], *(["--task-option", *options] if options else [])]


@dataclass
class StepResult:
    """What a successful step did."""

    name: str
    argv: list[str]
    outputs: list[Path]
    attempts: int
    seconds: float
    stdout: str


@dataclass
class CommandStep:
    """A command run in a work folder, on the host or in a container.

    Parameters
    ----------
    name : str
        Names the step in errors and DAG views.
    command : sequence of str
        Program and arguments; file names are relative to the work folder (a container sees
        it at ``/work``). On the host, a leading ``activesci`` runs this Python's activesci.
    outputs, inputs : sequence of str
        Files the step must produce / needs before it starts: paths relative to the work
        folder, without ``..``; a symlink that leads out of the folder is refused.
    image : str, optional
        Container image; required for ``runtime="podman"`` or ``"docker"``.
    runtime : {"local", "podman", "docker"}
        Where the command runs.
    timeout : float
        Seconds before the step, and every process it started, is killed and counted as failed.
    retries : int
        Further attempts after a failure (0-10).
    check : callable, optional
        ``check(path)`` raises ``ValueError`` for a bad output (default :func:`check_output`).
    """

    name: str
    command: Sequence[str]
    outputs: Sequence[str] = ()
    inputs: Sequence[str] = ()
    image: str | None = None
    runtime: str = "local"
    timeout: float = 600.0
    retries: int = 0
    check: Callable[[Path], None] = field(default=check_output, repr=False)

    def __post_init__(self) -> None:
        if self.runtime not in RUNTIMES:
            raise ValidationError(f"unknown runtime {self.runtime!r}; expected one of {RUNTIMES}")
        if self.runtime != "local" and not self.image:
            raise ValidationError(f"step {self.name!r}: runtime {self.runtime!r} needs an image")
        if isinstance(self.command, str) or not self.command:
            raise ValidationError(
                f"step {self.name!r}: command must be a list of strings, got {self.command!r}"
            )
        self.command = [str(part) for part in self.command]
        if not (isinstance(self.retries, int) and 0 <= self.retries <= 10):
            raise ValidationError(f"retries must be an integer in [0, 10], got {self.retries!r}")
        if not (isinstance(self.timeout, int | float) and self.timeout > 0):
            raise ValidationError(f"timeout must be positive seconds, got {self.timeout!r}")
        self.inputs = [self._relative(name, "input") for name in self.inputs]
        self.outputs = [self._relative(name, "output") for name in self.outputs]

    def _relative(self, name: Any, what: str) -> str:
        """``name`` if it is a path relative to the work folder without ``..``; else raise."""
        path = Path(str(name))
        if not str(name) or path.is_absolute() or ".." in path.parts or not path.parts:
            raise ValidationError(
                f"step {self.name!r}: {what} {name!r} must be a path relative to the work "
                "folder, without '..'"
            )
        return str(name)

    def _confined(self, folder: Path) -> None:
        """Raise if an input or output leads out of ``folder`` through a symlink."""
        root = folder.resolve()
        for what, names in (("input", self.inputs), ("output", self.outputs)):
            for name in names:
                target = (folder / name).resolve()
                if not target.is_relative_to(root):
                    raise ValidationError(
                        f"step {self.name!r}: {what} {name!r} resolves to {str(target)!r}, "
                        f"outside the work folder {str(root)!r} (through a symlink)"
                    )

    def argv(self, workdir: str | os.PathLike[str], *, name: str | None = None) -> list[str]:
        """The full command line this step runs in ``workdir`` (its container called ``name``)."""
        command = list(self.command)
        if self.runtime == "local" and command[0] == "activesci" and not shutil.which("activesci"):
            command = [sys.executable, "-m", "activesci.cli", *command[1:]]
        return container_argv(self.runtime, self.image or "", command, workdir, name=name)

    def run(self, workdir: str | os.PathLike[str]) -> StepResult:
        """Run the step in ``workdir`` (retrying up to ``retries`` times).

        Raises
        ------
        StepError
            The last attempt failed, timed out, or left an output missing or unreadable.
        ValidationError
            An input or output leads out of ``workdir`` through a symlink (nothing ran).
        """
        folder = Path(workdir)
        self._confined(folder)
        missing = [i for i in self.inputs if not (folder / i).exists()]
        if missing:
            raise StepError(f"step {self.name!r}: input(s) {missing} missing in {folder}")
        name = None if self.runtime == "local" else f"activesci-{secrets.token_hex(8)}"
        argv = self.argv(folder, name=name)
        start = time.perf_counter()
        why, stderr = "", ""
        for attempt in range(1, self.retries + 2):
            self._remove_outputs(folder)
            try:
                done = _run_session(argv, folder, self.timeout, self.runtime, name)
            except subprocess.TimeoutExpired as exc:
                why = f"timed out after {self.timeout:g} s"
                stderr = _text(exc.stderr)
                continue
            except OSError as exc:
                why, stderr = f"could not start ({exc})", ""
                break
            stderr = done.stderr
            if done.returncode != 0:
                why = f"exited with status {done.returncode}"
                continue
            try:
                for out in self.outputs:
                    self.check(folder / out)
            except ValueError as exc:
                why = str(exc)
                continue
            return StepResult(
                self.name,
                argv,
                [folder / o for o in self.outputs],
                attempt,
                time.perf_counter() - start,
                done.stdout,
            )
        self._remove_outputs(folder)
        tail = stderr[-_TAIL:].rstrip() or "(empty)"
        raise StepError(
            f"step {self.name!r} failed after {attempt} attempt(s): {why}\n"
            f"command: {shlex.join(argv)}\nstderr (tail):\n{tail}"
        )

    def _remove_outputs(self, folder: Path) -> None:
        for out in self.outputs:
            (folder / out).unlink(missing_ok=True)


def _run_session(
    argv: list[str], folder: Path, timeout: float, runtime: str, container: str | None
) -> subprocess.CompletedProcess:
    """Run ``argv`` in a new session; on a timeout or an interrupt kill the whole session.

    The ``container`` of a podman or docker step is removed as well: the client's death does
    not stop it.

    Raises
    ------
    subprocess.TimeoutExpired
        After ``timeout`` seconds, once every process of the session is dead; it carries the
        output read until then.
    """
    proc = subprocess.Popen(
        argv,
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except BaseException as exc:
        os.killpg(proc.pid, signal.SIGKILL)
        if container is not None:
            subprocess.run([runtime, "rm", "-f", container], capture_output=True, check=False)
        out, err = proc.communicate()
        if isinstance(exc, subprocess.TimeoutExpired):
            exc.stdout, exc.stderr = out, err
        raise
    return subprocess.CompletedProcess(argv, proc.returncode, stdout, stderr)


def _text(data: Any) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else str(data)


class CommandSimulator(SimulatorBase):
    """A simulator that runs an external command (or image) per parameter point.

    Parameters
    ----------
    task : Task
        Gives the parameter and design spaces, the feature names and the task name passed to
        the command; its simulator's ``expected_count`` (if any) sets experiment sizes.
    command : sequence of str
        The program, before the task name (default ``["activesci", "simulate"]``).
    image, runtime, timeout, retries
        As for :class:`CommandStep`.
    workdir : path, optional
        Where event files are written (default: a temporary folder per call).

    Notes
    -----
    One command runs per distinct ``(theta, design)`` row, so this suits experiments and
    small batches, not training sets of 10^5 different points. The command's seed is drawn
    from ``rng``, so a seeded generator gives reproducible events.
    """

    def __init__(
        self,
        task: Task,
        *,
        command: Sequence[str] = ("activesci", "simulate"),
        image: str | None = None,
        runtime: str = "local",
        timeout: float = 600.0,
        retries: int = 0,
        workdir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.task = task
        self.parameters = task.parameters
        self.designs = task.designs
        self.feature_names = tuple(getattr(task.simulator, "feature_names", ()))
        self.luminosity = getattr(task.simulator, "luminosity", None)
        self.events_per_experiment = getattr(task.simulator, "events_per_experiment", 100)
        self.command = list(command)
        self.step_options = {"image": image, "runtime": runtime, "timeout": timeout}
        self.step_options["retries"] = retries
        CommandStep("check", self.command, **self.step_options)  # validates the options
        self.workdir = None if workdir is None else Path(workdir)
        if "expected_count" in task.simulator.capabilities:
            self.expected_count = task.simulator.expected_count

    def _sample(
        self, theta: np.ndarray, design: np.ndarray, n: int, rng: np.random.Generator
    ) -> Events:
        if len(theta) == 1 and len(design) == 1:
            return self._call(theta[0], design[0], n, int(rng.integers(2**31)))
        th = np.broadcast_to(theta, (n, theta.shape[1]))
        de = np.broadcast_to(design, (n, design.shape[1]))
        keys = np.concatenate([th, de], axis=1)
        unique, inverse = np.unique(keys, axis=0, return_inverse=True)
        xs: list[np.ndarray | None] = [None] * n
        zs: list[np.ndarray | None] = [None] * n
        for k, key in enumerate(unique):
            rows = np.flatnonzero(inverse.ravel() == k)
            p = theta.shape[1]
            events = self._call(key[:p], key[p:], len(rows), int(rng.integers(2**31)))
            for j, row in enumerate(rows):
                xs[row] = events.x[j]
                zs[row] = None if events.z is None else events.z[j]
        z = None if any(v is None for v in zs) else np.stack(zs)  # type: ignore[arg-type]
        return Events(x=np.stack(xs), z=z)  # type: ignore[arg-type]

    def _call(self, theta: np.ndarray, design: np.ndarray, n: int, seed: int) -> Events:
        """Run the command for ``n`` events at one point and read its event file."""
        theta_args = [f"{k}={v}" for k, v in self.parameters.to_dict(theta).items()]
        design_args = [f"{k}={v}" for k, v in self.designs.to_dict(design).items()]
        with tempfile.TemporaryDirectory(dir=self.workdir) as tmp:
            step = CommandStep(
                "simulate",
                [
                    *self.command,
                    *task_arguments(self.task),
                    "--theta",
                    *theta_args,
                    "--design",
                    *design_args,
                    "--n",
                    str(n),
                    "--seed",
                    str(seed),
                    "--out",
                    "events.npz",
                ],
                outputs=["events.npz"],
                **self.step_options,
            )
            step.run(tmp)
            # the program's file is data: it must hold this task, point and event count
            data = read_events(
                Path(tmp) / "events.npz", task=self.task.name, theta=theta, design=design, n=n
            )
        return Events(x=data.x, z=data.z)
