"""A task of the user's own module, end to end: tasks as data (issue 12).

The module below is written to a temporary folder, as a scientist's own code would be: a
simulator with two parameters and a two-dimensional design, and a factory building its task.
It is run, killed with SIGKILL, resumed, reported and benchmarked from the command line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from _runs import kill_after

import activesci as asci
from activesci.errors import SpecError, ValidationError
from activesci.store import SQLiteRunStore

REPO = Path(__file__).resolve().parents[1]

USER_MODULE = textwrap.dedent(
    '''
    """A straight line through the origin, measured at two settings (a user's theory)."""
    import time

    import numpy as np
    from scipy import stats

    from activesci.simulators.base import SimulatorBase
    from activesci.spaces import Real, Space
    from activesci.tasks import Task
    from activesci.typing import Events


    class LineSimulator(SimulatorBase):
        """y ~ N(a d1 + b d2, 1), `events` per experiment; `delay` seconds per experiment."""

        def __init__(self, events=5, delay=0.0):
            self.parameters = Space([Real("a", -2.0, 2.0), Real("b", -2.0, 2.0)])
            self.designs = Space([Real("d1", -1.0, 1.0), Real("d2", -1.0, 1.0)])
            self.events_per_experiment = events
            self.delay = delay

        def _sample(self, theta, design, n, rng):
            time.sleep(self.delay)
            mean = (theta * design).sum(axis=1, keepdims=True)
            x = mean + rng.standard_normal((n, 1))
            return Events(x=x, z=x)

        def log_likelihood(self, x, theta, design):
            theta = self.parameters.validate(theta)
            design = self.designs.validate(design)
            mean = (theta * design).sum(axis=1)
            return stats.norm.logpdf(np.asarray(x)[:, 0][None, :], mean[:, None])


    def line_fit(events: int = 5, delay: float = 0.0) -> Task:
        return Task(
            name="line_fit",
            simulator=LineSimulator(events, delay),
            truth={"a": 0.5, "b": -0.3},
            description="A line through the origin, slopes a and b.",
            strategy_options={"fixed": {"design": [1.0, 1.0]}},
        )
    '''
)


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    folder = tmp_path / "usercode"
    folder.mkdir()
    (folder / "labtheory.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(folder))
    yield folder
    sys.modules.pop("labtheory", None)


def _env(folder: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(folder), str(REPO)]),
        "OMP_NUM_THREADS": "1",
    }


def _cli(folder: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "activesci.cli", *args],
        env=_env(folder),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


# -- tasks as data ------------------------------------------------------------------------------


def test_a_factory_of_a_user_module_is_recognised_with_its_options(user_module):
    import labtheory

    task = labtheory.line_fit(events=3)
    assert task.to_config() == {
        "task": "labtheory:line_fit",
        "task_options": {"events": 3, "delay": 0.0},
    }
    with pytest.raises(ValidationError, match="allow_plugins"):  # a data file may not import
        asci.tasks.load(**task.to_config())
    again = asci.tasks.load(**task.to_config(), allow_plugins=True)
    assert again.simulator.events_per_experiment == 3
    assert again.to_config() == task.to_config()


def test_tasks_without_an_importable_factory_say_how_to_get_one():
    sim = asci.tasks.gaussian().simulator
    task = asci.tasks.Task(name="by-hand", simulator=sim, truth={"mu0": 0.0})
    assert task.factory is None  # this function builds a task but does not return it
    with pytest.raises(ValidationError, match="register_task"):
        task.to_config()
    built = asci.tasks.Task(name="named", simulator=sim, truth={}, factory="gaussian")
    assert built.to_config()["task"] == "gaussian"


def test_registered_tasks_and_their_options_round_trip(monkeypatch):
    monkeypatch.setitem(asci.tasks.TASKS, "toy3", lambda: asci.tasks.gaussian(dim=3))
    assert asci.tasks.get("toy3").parameters.names == ["mu0", "mu1", "mu2"]
    for name in ("weinberg", "weinberg_lineshape", "gaussian"):
        config = asci.tasks.get(name).to_config()
        assert config["task"] == name
        assert asci.tasks.load(**config).to_config() == config
    with pytest.raises(ValidationError, match="must be an identifier"):
        asci.tasks.register_task("no spaces", asci.tasks.gaussian)
    with pytest.raises(ValidationError, match="returned int, not a Task"):
        asci.tasks.register_task("bad", lambda: 3)
        asci.tasks.get("bad")
    asci.tasks.TASKS.pop("bad", None)


def test_a_spec_naming_a_module_is_refused_unless_allowed(user_module):
    spec = {
        "name": "mine",
        "kind": "design",
        "task": "labtheory:line_fit",
        "strategies": ["random"],
        "seeds": 1,
        "budget": {"rounds": 1},
    }
    with pytest.raises(SpecError, match="at task: 'labtheory:line_fit'"):
        asci.bench.load_spec(spec)
    assert asci.bench.load_spec(spec, allow_plugins=True)["task"] == "labtheory:line_fit"


# -- end to end, from the command line ----------------------------------------------------------


def _summaries(run: Path) -> list[dict]:
    with SQLiteRunStore.open(run, readonly=True) as store:
        return [{k: r[k] for k in ("design", "mean", "std", "n")} for r in store.rounds()]


def test_a_user_task_runs_is_killed_resumes_reports_and_benchmarks(user_module, tmp_path):
    run, clean = tmp_path / "run", tmp_path / "clean"
    common = ["--task-option", "events=4", "delay=0.4", "--estimator", "exact"]
    common += ["--strategy", "random", "--rounds", "6", "--seed", "3"]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "activesci.cli",
            "run",
            "labtheory:line_fit",
            *common,
            "--out",
            str(run),
        ],
        env=_env(user_module),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert 2 <= kill_after(proc, run, 2) < 6

    refused = _cli(user_module, "resume", str(run), cwd=tmp_path)
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1 and "--allow-plugins" in refused.stderr
    resumed = _cli(user_module, "resume", str(run), "--allow-plugins", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    uninterrupted = _cli(
        user_module, "run", "labtheory:line_fit", *common, "--out", str(clean), cwd=tmp_path
    )
    assert uninterrupted.returncode == 0, uninterrupted.stderr
    assert _summaries(run) == _summaries(clean)  # bit-identical: same designs, data, posteriors
    assert len(_summaries(run)) == 6

    assert _cli(user_module, "report", str(run), cwd=tmp_path).returncode == 2
    report = _cli(user_module, "report", str(run), "--allow-plugins", cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    html = Path(json.loads(report.stdout)["report"]).read_text()
    assert "A line through the origin" in html

    out = tmp_path / "bench.json"
    bench = _cli(
        user_module,
        "bench",
        "labtheory:line_fit",
        "--task-option",
        "events=4",
        "--strategies",
        "random",
        "fixed",
        "--repeats",
        "2",
        "--rounds",
        "2",
        "--target-std",
        "0.5",
        "--out",
        str(out),
        cwd=tmp_path,
    )
    assert bench.returncode == 0, bench.stderr
    result = json.loads(out.read_text())
    assert result["parameters"] == ["a", "b"]
    assert [s["strategy"] for s in result["summaries"]] == ["random", "fixed"]
    assert result["runs"]["fixed"][0]["designs"] == [[1.0, 1.0], [1.0, 1.0]]


def test_a_particle_posterior_run_resumes_bit_identically_after_kill_9(tmp_path):
    """Four parameters: the learner holds particles, and the EIG is the contrastive one."""
    run, clean = tmp_path / "run", tmp_path / "clean"
    common = ["location_finding", "--estimator", "exact", "--strategy", "eig", "--rounds", "4"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "activesci.cli", "run", *common, "--out", str(run)],
        env=_env(tmp_path),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert 2 <= kill_after(proc, run, 2) < 4
    assert _cli(tmp_path, "resume", str(run), cwd=tmp_path).returncode == 0
    assert _cli(tmp_path, "run", *common, "--out", str(clean), cwd=tmp_path).returncode == 0
    assert _summaries(run) == _summaries(clean)
    with SQLiteRunStore.open(run, readonly=True) as store:
        assert store.metadata()["posterior"] == "particles"
        last = store.rounds()[-1]
    assert len(last["pairs"]) == 6  # corner plot data: every pair of the 4 parameters
    assert "s1_x|s2_y" in last["pairs"]


# -- any size: the learner's choice of posterior ------------------------------------------------


def test_the_learner_holds_particles_where_a_grid_cannot_and_both_follow_the_protocol():
    from activesci.inference.grid import GridPosterior
    from activesci.inference.particles import SamplePosterior
    from activesci.typing import Posterior

    four = asci.ActiveLearner("location_finding", estimator="exact", strategy="random")
    three = asci.ActiveLearner("weinberg_lineshape", estimator="exact", strategy="fixed")
    forced = asci.ActiveLearner(
        "gaussian", estimator="exact", strategy="fixed", posterior="particles", particles=500
    )
    assert isinstance(four.posterior, SamplePosterior)
    assert isinstance(three.posterior, GridPosterior)
    assert isinstance(forced.posterior, SamplePosterior) and forced.posterior.n_particles == 500
    for learner in (four, three, forced):
        assert isinstance(learner.posterior, Posterior)
    with pytest.raises(ValidationError, match="at most 3 parameters"):
        asci.ActiveLearner("location_finding", estimator="exact", posterior="grid")
    with pytest.raises(ValidationError, match="posterior must be one of"):
        asci.ActiveLearner("gaussian", estimator="exact", posterior="histogram")
    state = forced.run(rounds=2)
    mean, std = forced.task.simulator.posterior(forced.posterior.observations)  # analytic
    assert abs(state.posterior.mean()[0] - mean[0]) < 0.2 * std[0]
    assert abs(state.posterior.std()[0] / std[0] - 1) < 0.1


def test_a_factory_taking_keywords_is_rebuilt_with_them(tmp_path, monkeypatch):
    (tmp_path / "kwtheory.py").write_text(
        "from activesci.tasks import Task, gaussian\n"
        "def toy(**options):\n"
        "    sim = gaussian(**options).simulator\n"
        "    return Task(name='toy', simulator=sim, truth={})\n"
        "def star(*dims):\n"
        "    sim = gaussian(dim=len(dims)).simulator\n"
        "    return Task(name='star', simulator=sim, truth={})\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import kwtheory

    task = kwtheory.toy(dim=2, events_per_experiment=3)
    assert task.to_config() == {
        "task": "kwtheory:toy",
        "task_options": {"dim": 2, "events_per_experiment": 3},
    }
    again = asci.tasks.load(**task.to_config(), allow_plugins=True)
    assert again.simulator.events_per_experiment == 3 and len(again.parameters) == 2
    assert kwtheory.star(1, 2).factory is None  # *args cannot be passed by name
    sys.modules.pop("kwtheory", None)
