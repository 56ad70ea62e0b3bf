"""Command steps on the host, the command simulator, and workflow experiments."""

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import activesci as asci
from activesci.cli import main
from activesci.errors import StepError, ValidationError
from activesci.io import verify_checksum
from activesci.workflow.experiment import WorkflowExperiment
from activesci.workflow.steps import CommandSimulator, CommandStep

PY = sys.executable


def test_a_step_checks_its_outputs(tmp_path):
    code = "import json; json.dump({'a': 1}, open('out.json', 'w'))"
    result = CommandStep("write", [PY, "-c", code], outputs=["out.json"]).run(tmp_path)
    assert result.attempts == 1 and result.outputs == [tmp_path / "out.json"]


def test_a_failing_step_names_itself_its_command_and_stderr(tmp_path):
    code = "import sys; sys.stderr.write('detector on fire'); sys.exit(3)"
    step = CommandStep("measure", [PY, "-c", code], outputs=["x.npz"], retries=2)
    with pytest.raises(StepError) as err:
        step.run(tmp_path)
    text = str(err.value)
    assert "step 'measure' failed after 3 attempt(s): exited with status 3" in text
    assert "detector on fire" in text and "sys.exit(3)" in text


def test_hanging_and_output_less_steps_fail_and_leave_nothing_partial(tmp_path):
    hang = CommandStep("hang", [PY, "-c", "import time; time.sleep(30)"], timeout=1)
    with pytest.raises(StepError, match="timed out after 1 s"):
        hang.run(tmp_path)
    silent = CommandStep("silent", [PY, "-c", "pass"], outputs=["events.npz"])
    with pytest.raises(StepError, match=r"output events\.npz was not written"):
        silent.run(tmp_path)
    garbage = CommandStep(
        "garbage",
        [PY, "-c", "open('events.npz', 'w').write('half a file')"],
        outputs=["events.npz"],
    )
    with pytest.raises(StepError, match=r"not a readable \.npz archive"):
        garbage.run(tmp_path)
    assert not (tmp_path / "events.npz").exists()  # the partial output was removed


def test_retries_recover_from_a_flaky_step(tmp_path):
    code = (
        "import os, sys\n"
        "if not os.path.exists('tried'):\n"
        "    open('tried', 'w').close(); sys.exit(1)\n"
        "open('out.txt', 'w').write('ok')\n"
    )
    result = CommandStep("flaky", [PY, "-c", code], outputs=["out.txt"], retries=1).run(tmp_path)
    assert result.attempts == 2


def test_bad_steps_are_refused(tmp_path):
    with pytest.raises(ValidationError, match="unknown runtime 'kubernetes'"):
        CommandStep("s", ["true"], runtime="kubernetes")
    with pytest.raises(ValidationError, match="runtime 'podman' needs an image"):
        CommandStep("s", ["true"], runtime="podman")
    with pytest.raises(ValidationError, match="command must be a list of strings"):
        CommandStep("s", "activesci simulate")
    with pytest.raises(ValidationError, match="retries must be an integer in"):
        CommandStep("s", ["true"], retries=99)
    with pytest.raises(StepError, match=r"input\(s\) \['in.npz'\] missing"):
        CommandStep("s", ["true"], inputs=["in.npz"]).run(tmp_path)
    with pytest.raises(StepError, match=r"step 'ghost' failed after 1 attempt.*could not start"):
        CommandStep("ghost", ["no-such-program-xyz"], outputs=["a.npz"]).run(tmp_path)


def test_command_simulator_reproduces_the_in_process_simulator():
    task = asci.tasks.weinberg(luminosity=0.2)
    sim = CommandSimulator(task)
    events = sim.sample([0.22], [91.19], np.random.default_rng(5), n=50)
    seed = int(np.random.default_rng(5).integers(2**31))
    direct = task.simulator.sample([0.22], [91.19], np.random.default_rng(seed), n=50)
    assert np.array_equal(events.x, direct.x)
    obs = sim.run_experiment([0.2315], [91.19], np.random.default_rng(0))
    assert 200 < obs.n < 500 and obs.luminosity == 0.2  # ~350 expected at the pole


def test_workflow_experiment_feeds_a_resumable_learner(tmp_path):
    task = asci.tasks.gaussian()
    options = {"estimator": "exact", "strategy": "random", "seed": 2, "progress": False}

    def experiment(run):  # the work folder inside the run folder, as resume requires
        return WorkflowExperiment(task, seed=2, workdir=run / "experiment")

    whole = asci.ActiveLearner(
        task, experiment=experiment(tmp_path / "a"), store=tmp_path / "a", **options
    )
    whole.run(3)
    files = sorted(p.name for p in (tmp_path / "a" / "experiment").glob("round-*.npz"))
    assert files == ["round-0000.npz", "round-0001.npz", "round-0002.npz"]
    verify_checksum(tmp_path / "a" / "experiment" / "round-0002.npz")
    part = asci.ActiveLearner(
        task, experiment=experiment(tmp_path / "b"), store=tmp_path / "b", **options
    )
    part.run(2)
    part.close()
    resumed = asci.ActiveLearner.resume(tmp_path / "b", progress=False)
    assert "WorkflowExperiment" in repr(resumed.experiment)
    resumed.run(1)
    assert resumed.posterior.mean() == pytest.approx(whole.posterior.mean(), rel=1e-12)


def test_run_command_with_a_workflow_experiment(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["run", "gaussian", "--estimator", "exact", "--strategy", "fixed", "--rounds", "2"]
    assert main([*args, "--experiment", "workflow", "--out", str(out)]) == 0
    assert (out / "experiment" / "round-0001.npz").exists()
    assert "report" in capsys.readouterr().out


def test_a_moved_run_folder_resumes_in_its_own_work_folder(tmp_path, capsys):
    # the work folder is stored relative to the run folder: once stored absolute, a moved
    # run was refused (its old work folder is outside it), or ran in the old place
    old, new = tmp_path / "old", tmp_path / "moved" / "run"
    args = ["run", "gaussian", "--estimator", "exact", "--strategy", "fixed", "--rounds", "1"]
    assert main([*args, "--experiment", "workflow", "--out", str(old)]) == 0
    new.parent.mkdir()
    old.rename(new)
    assert main(["resume", str(new), "--rounds", "2"]) == 0
    assert (new / "experiment" / "round-0001.npz").exists()
    assert not old.exists()
    capsys.readouterr()


def test_workflow_experiment_replays_the_simulated_experiment(tmp_path):
    task = asci.tasks.weinberg(luminosity=0.2)
    flow = WorkflowExperiment(task, seed=9, workdir=tmp_path)
    sim = task.experiment(seed=9)
    for design in ([91.19], [60.0]):
        a, b = flow.run(design), sim.run(design)
        assert a.n == b.n and np.array_equal(a.x, b.x)


def test_step_outputs_must_stay_in_the_work_folder(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    for output in ("../victim.txt", str(victim), "a/../../victim.txt", ""):
        with pytest.raises(ValidationError, match=r"step 'v': output .* must be a path relative"):
            CommandStep("v", ["false"], outputs=[output]).run(work)
    with pytest.raises(ValidationError, match=r"step 'v': input '\.\./victim\.txt' must be"):
        CommandStep("v", ["false"], inputs=["../victim.txt"])
    (work / "link").symlink_to(tmp_path)
    with pytest.raises(ValidationError, match=r"outside the work folder .*\(through a symlink\)"):
        CommandStep("v", ["false"], outputs=["link/victim.txt"]).run(work)
    (work / "out.txt").symlink_to(victim)
    with pytest.raises(ValidationError, match=r"output 'out\.txt' resolves to .*victim\.txt"):
        CommandStep("v", ["false"], outputs=["out.txt"]).run(work)
    assert victim.read_text() == "keep"


def _processes_with(argument: str) -> list[int]:
    """Ids of the live processes whose command line has ``argument``."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if argument.encode() in (proc / "cmdline").read_bytes().split(b"\0"):
                found.append(int(proc.name))
        except (OSError, ValueError):
            continue
    return found


def test_a_timeout_kills_every_process_the_step_started(tmp_path):
    seconds = f"25.{os.getpid()}"  # names this test's sleep among the machine's processes
    step = CommandStep("nested", ["bash", "-c", f"sleep {seconds} >/dev/null 2>&1; true"])
    step.timeout = 2
    start = time.monotonic()
    with pytest.raises(StepError, match="timed out after 2 s"):
        step.run(tmp_path)
    assert time.monotonic() - start < 10
    deadline = time.monotonic() + 5
    while _processes_with(seconds) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = _processes_with(seconds)
    for pid in left:  # do not leave them to other tests
        os.kill(pid, signal.SIGKILL)
    assert not left, "the step's grandchild survived its timeout"


def test_a_workflow_experiment_from_a_store_is_checked_as_data(tmp_path):
    task = asci.tasks.gaussian()
    run = tmp_path / "run"
    exp = WorkflowExperiment(task, seed=3, workdir=run / "experiment")
    config = exp.to_config()
    again = WorkflowExperiment.from_config(task, config, run_dir=run, runs=2)
    assert again.to_config() == config | {"workdir": str((run / "experiment").resolve())}
    assert again.runs == 2
    evil = config | {"runtime": "podman", "image": "quay.io/evil/root:1", "workdir": "/"}
    with pytest.raises(ValidationError, match=r"image 'quay.io/evil/root:1' is not a local"):
        WorkflowExperiment.from_config(task, evil, run_dir=run)
    for change, message in (
        ({"workdir": str(tmp_path)}, r"workdir '.*' is not a folder inside the run folder"),
        ({"entrypoint": "sh"}, r"unknown key\(s\) \['entrypoint'\]"),
        ({"kind": "simulated"}, "must be a mapping with kind 'workflow'"),
        ({"seed": "1; rm -rf ~"}, "seed must be a non-negative integer, got '1; rm -rf ~'"),
        ({"retries": 1e9}, "retries must be an integer in"),
        ({"truth": {"phi": "x"}}, "phi"),
    ):
        with pytest.raises(ValidationError, match=message):
            WorkflowExperiment.from_config(task, config | change, run_dir=run)


def test_resume_runs_no_image_or_work_folder_that_a_crafted_store_names(
    tmp_path, capsys, monkeypatch
):
    run = tmp_path / "run"
    args = ["run", "gaussian", "--estimator", "exact", "--strategy", "fixed", "--rounds", "1"]
    assert main([*args, "--experiment", "workflow", "--out", str(run)]) == 0
    capsys.readouterr()
    with sqlite3.connect(run / "run.sqlite") as db:
        (document,) = db.execute("SELECT document FROM metadata").fetchone()
    meta = json.loads(document)

    def craft(**experiment):
        changed = meta | {"experiment": meta["experiment"] | experiment}
        with sqlite3.connect(run / "run.sqlite") as db:
            db.execute("UPDATE metadata SET document = ? WHERE id = 0", (json.dumps(changed),))

    def no_process(*args, **kwargs):
        pytest.fail(f"resume started {args[0]!r}")

    monkeypatch.setattr(subprocess, "Popen", no_process)
    for experiment, message in (
        ({"runtime": "podman", "image": "docker.io/evil"}, "image 'docker.io/evil' is not a local"),
        ({"runtime": "docker", "image": None}, "image None is not a local"),
        ({"workdir": "/"}, r"workdir '/' is not a folder inside the run folder"),
        ({"workdir": str(run)}, r"workdir '.*' is not a folder inside the run folder"),
        ({"workdir": str(run / ".." / "elsewhere")}, "is not a folder inside the run folder"),
    ):
        craft(**experiment)
        assert main(["resume", str(run), "--rounds", "2"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and re.search(message, err), err
        with pytest.raises(ValidationError, match=message):
            asci.ActiveLearner.resume(run, progress=False)
    assert not (tmp_path / "elsewhere").exists()
    craft(runtime="podman", image="docker.io/evil")  # confirmed by the caller: accepted
    resumed = asci.ActiveLearner.resume(run, progress=False, allow_images=["docker.io/evil"])
    assert resumed.experiment.image == "docker.io/evil" and resumed.round == 1
    resumed.close()
    assert main(["resume", str(run), "--allow-image", "docker.io/evil", "--rounds", "1"]) == 0


def test_a_workflow_experiment_refuses_events_of_another_point(tmp_path, monkeypatch):
    from activesci.errors import EventFileError

    task = asci.tasks.gaussian()
    script = tmp_path / "liar.py"  # runs `activesci simulate` at another theta or design
    script.write_text(
        "import sys\nfrom activesci.cli import main\nargs = sys.argv[3:]\n"
        "args[args.index(sys.argv[1]) + 1] = sys.argv[2]\n"
        "sys.exit(main(['simulate', *args]))\n"
    )
    build = WorkflowExperiment._step
    for option, value, message in (
        ("--theta", "mu0=0.25", r"'theta' is \[0.25\], but \[0.5\] was asked for"),
        ("--design", "phase=2.0", r"'design' is \[2.0\], but \[1.0\] was asked for"),
    ):

        def lying(self, k, design, option=option, value=value):
            step = build(self, k, design)
            step.command = [PY, str(script), option, value, *step.command[2:]]
            return step

        monkeypatch.setattr(WorkflowExperiment, "_step", lying)
        exp = WorkflowExperiment(task, {"mu0": 0.5}, seed=1, workdir=tmp_path / "work")
        with pytest.raises(EventFileError, match=message):
            exp.run([1.0])
        assert exp.runs == 0 and not (tmp_path / "work" / "round-0000.npz.sha256").exists()


def test_a_workflow_experiment_given_to_a_resumed_learner_does_not_repeat_seeds(tmp_path):
    task = asci.tasks.gaussian()
    options = {"estimator": "exact", "strategy": "random", "seed": 2, "progress": False}

    def learner(run):
        experiment = WorkflowExperiment(task, seed=2, workdir=run / "experiment")
        return asci.ActiveLearner(task, experiment=experiment, store=run, **options)

    whole = learner(tmp_path / "a")
    whole.run(3)
    part = learner(tmp_path / "b")
    part.run(2)
    part.close()
    resumed = learner(tmp_path / "b")  # the same settings and store: continues at round 2
    assert resumed.round == 2 and resumed.experiment.runs == 2
    resumed.run(1)
    assert resumed.posterior.mean() == pytest.approx(whole.posterior.mean(), rel=1e-12)
    assert (tmp_path / "b" / "experiment" / "round-0002.npz").is_file()
