"""Containerised steps: command lines, a locally built podman image, and a real simulate in it.

The image is built from Debian packages by ``docker/build-local-image.sh`` (no registry). The
first build debootstraps a base (minutes, cached in ``~/.cache/activesci``); with the base
cached, a build after a source change takes seconds and a container run about a second.
"""

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from activesci.cli import main
from activesci.errors import ActivesciError, MissingCapabilityError, ValidationError
from activesci.simulators.eventfile import read_events
from activesci.workflow import containers
from activesci.workflow.containers import (
    RUNTIMES,
    container_argv,
    ensure_local_image,
    relative_workdir,
    runtime_available,
    validate_container_config,
)

SIMULATE = [
    "activesci",
    "simulate",
    "weinberg",
    "--theta",
    "sin2w=0.23",
    "--design",
    "sqrt_s=91.19",
    "--seed",
    "1",
]
needs_podman = pytest.mark.skipif(
    not runtime_available("podman") or os.geteuid() != 0,
    reason="needs root and podman (with runc): apt-get install -y podman runc debootstrap",
)


# -- command lines, no container needed --------------------------------------------------------


def test_podman_argv_isolates_the_step(tmp_path, monkeypatch):
    runc = tmp_path / "runc"
    runc.touch()
    monkeypatch.setattr(containers, "RUNC", runc)
    argv = container_argv("podman", "img:1", ["activesci", "simulate", "weinberg"], tmp_path)
    assert argv == [
        "podman",
        "--runtime",
        str(runc),
        "run",
        "--rm",
        "--network",
        "none",
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=1024:1024",
        "-v",
        f"{tmp_path}:/work:Z",
        "-w",
        "/work",
        "--entrypoint",
        "activesci",
        "img:1",
        "simulate",
        "weinberg",
    ]


def test_podman_without_runc_uses_its_default_runtime(tmp_path, monkeypatch):
    monkeypatch.setattr(containers, "RUNC", tmp_path / "no-runc")
    argv = container_argv("podman", "img", ["true"], tmp_path)
    assert argv[:3] == ["podman", "run", "--rm"]


def test_docker_argv_with_env_user_and_network(tmp_path):
    argv = container_argv(
        "docker",
        "img",
        ["python3", "-c", "print(1)"],
        tmp_path,
        network="bridge",
        env={"A": "1", "B": "x=y"},
        user="1000:1000",
    )
    assert argv[:4] == ["docker", "run", "--rm", "--network"]
    assert argv[4] == "bridge"
    assert "--runtime" not in argv
    assert argv[argv.index("-v") + 1] == f"{tmp_path}:/work:Z"
    assert argv[-11:-5] == ["-e", "A=1", "-e", "B=x=y", "--user", "1000:1000"]
    assert argv[-5:] == ["--entrypoint", "python3", "img", "-c", "print(1)"]
    named = container_argv("docker", "img", ["true"], tmp_path, name="activesci-1")
    assert named[-5:-3] == ["--name", "activesci-1"]


def test_local_argv_is_the_command(tmp_path):
    assert container_argv("local", "", ["echo", "hi"], tmp_path) == ["echo", "hi"]


def test_relative_workdir_becomes_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "step").mkdir()
    argv = container_argv("docker", "img", ["true"], "step")
    assert argv[argv.index("-v") + 1] == f"{tmp_path / 'step'}:/work:Z"


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("kubernetes", "img", ["true"]), r"'kubernetes'.*\('local', 'podman', 'docker'\)"),
        (("podman", "img", "activesci simulate"), "sequence of strings"),
        (("podman", "img", []), "sequence of strings"),
        (("podman", "", ["true"]), "image"),
    ],
)
def test_bad_arguments_name_the_value(tmp_path, args, match):
    with pytest.raises(ValidationError, match=match):
        container_argv(*args, tmp_path)


def test_missing_workdir_is_named(tmp_path):
    with pytest.raises(ValidationError, match=r"nowhere.*not an existing folder"):
        container_argv("podman", "img", ["true"], tmp_path / "nowhere")


def test_bad_env_name(tmp_path):
    with pytest.raises(ValidationError, match="'A=B'"):
        container_argv("docker", "img", ["true"], tmp_path, env={"A=B": "1"})


def test_a_container_config_from_data_runs_only_local_images_in_the_run_folder(tmp_path):
    run = tmp_path / "run"
    (run / "experiment").mkdir(parents=True)
    local = "localhost/activesci-sim:0123abcd"
    good = {"runtime": "podman", "image": local, "workdir": str(run / "experiment")}
    checked = validate_container_config(good, run)
    assert checked == good | {"workdir": (run / "experiment").resolve()}
    remote = "docker.io/evil/image:latest"
    crafted = {"runtime": "podman", "image": remote, "workdir": "/"}
    with pytest.raises(ValidationError, match=r"image 'docker.io/evil/image:latest' is not a loc"):
        validate_container_config(crafted, run)
    with pytest.raises(ValidationError, match=r"workdir '/' is not a folder inside the run folder"):
        validate_container_config(crafted, run, allow_images=[remote])  # image confirmed, not /
    assert validate_container_config(good | {"image": remote}, run, allow_images=[remote])
    (run / "escape").symlink_to(tmp_path)
    for workdir in (str(run), str(run / "escape"), str(run / ".." / "x"), "", None, 3):
        with pytest.raises(ValidationError, match="is not a folder inside the run folder"):
            validate_container_config(good | {"workdir": workdir}, run)
    for image in ("localhost/activesci-sim/../x", "localhost/activesci-", "localhost/other", None):
        with pytest.raises(ValidationError, match="is not a local activesci image"):
            validate_container_config(good | {"image": image}, run)
    with pytest.raises(ValidationError, match="unknown container runtime 'kubectl'"):
        validate_container_config(good | {"runtime": "kubectl"}, run)
    local_run = {"workdir": str(run / "experiment")}  # runtime local, no image
    assert validate_container_config(local_run, run)["runtime"] == "local"


def test_a_relative_workdir_is_relative_to_the_run_folder(tmp_path, monkeypatch):
    run, elsewhere = tmp_path / "run", tmp_path / "elsewhere"
    (run / "experiment").mkdir(parents=True)
    (elsewhere / "experiment").mkdir(parents=True)
    monkeypatch.chdir(elsewhere)  # once resolved here: the wrong folder, or a refusal
    checked = validate_container_config({"workdir": "experiment"}, run)
    assert checked["workdir"] == (run / "experiment").resolve()
    for workdir in ("../x", "/", ".", "experiment/../..", "a\0b"):
        with pytest.raises(ValidationError, match="is not a folder inside the run folder"):
            validate_container_config({"workdir": workdir}, run)
    config = {"kind": "workflow", "workdir": str(run / "experiment")}
    assert relative_workdir(config, run) == config | {"workdir": "experiment"}
    assert relative_workdir(config, elsewhere) == config  # outside: kept, refused on resume


def test_runtime_available():
    assert RUNTIMES == ("local", "podman", "docker")
    assert runtime_available("local")
    with pytest.raises(ValidationError, match=r"'lxc'.*'local', 'podman', 'docker'"):
        runtime_available("lxc")


def test_missing_podman_is_a_missing_capability(monkeypatch):
    monkeypatch.setattr(containers.shutil, "which", lambda name: None)
    with pytest.raises(MissingCapabilityError, match=r"podman is not installed.*apt-get"):
        ensure_local_image()


def test_missing_build_script(monkeypatch, tmp_path):
    monkeypatch.setattr(containers, "BUILD_SCRIPT", tmp_path / "build-local-image.sh")
    with pytest.raises(MissingCapabilityError, match="source checkout"):
        ensure_local_image()


@pytest.fixture
def fake_build(monkeypatch, tmp_path):
    """Point ensure_local_image at a stand-in build script; pretend podman, runc and root."""
    monkeypatch.setattr(containers.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(containers, "_available", lambda runtime: True)
    monkeypatch.setattr(containers.os, "geteuid", lambda: 0)
    script = tmp_path / "build.sh"
    monkeypatch.setattr(containers, "BUILD_SCRIPT", script)
    return script


@pytest.mark.parametrize(
    ("body", "error", "match"),
    [
        (
            "echo 'error: debootstrap is not installed' >&2; exit 3",
            MissingCapabilityError,
            "deboot",
        ),
        (
            "echo step 1 >&2; echo 'E: mirror unreachable' >&2; exit 1",
            ActivesciError,
            "(?s)1.*E: m",
        ),
    ],
)
def test_build_failures_are_reported(fake_build, body, error, match):
    fake_build.write_text(body)
    with pytest.raises(error, match=match):
        ensure_local_image()


def test_the_tag_is_the_last_line(fake_build):
    fake_build.write_text('echo "$@" >&2; echo log; echo localhost/activesci-sim:0123456789ab')
    assert ensure_local_image(force=True) == "localhost/activesci-sim:0123456789ab"


def test_build_script_prints_a_tag_of_the_sources():
    done = subprocess.run(
        ["bash", str(containers.BUILD_SCRIPT), "--print-tag"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip().startswith("localhost/activesci-sim:")
    assert len(done.stdout.strip().rsplit(":", 1)[1]) == 12


# -- a real container --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def image() -> str:
    return ensure_local_image()


def run_in_container(image: str, command: list[str], workdir: Path) -> subprocess.CompletedProcess:
    argv = container_argv("podman", image, command, workdir)
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)


@needs_podman
def test_simulate_in_a_container_matches_the_host(image, tmp_path, capsys):
    step = tmp_path / "step"
    step.mkdir()
    done = run_in_container(image, [*SIMULATE, "--out", "/work/events.npz"], step)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["out"] == "/work/events.npz"

    inside = read_events(step / "events.npz")
    assert len(inside.x) == summary["n"] > 0
    assert inside.task == "weinberg"
    assert inside.parameter_names == ("sin2w",)
    np.testing.assert_array_equal(inside.theta, [0.23])
    np.testing.assert_array_equal(inside.design, [91.19])
    assert inside.seed == 1
    assert inside.activesci_version not in ("", "0.0.0+unknown")

    # the same seeded command on the host (numpy 2) draws the same events as the image's
    # Debian numpy 1.24 and scipy 1.10: the Generator streams are identical, but
    # numpy 2's np.cbrt (in the inverse CDF) rounds differently from glibc's in about a third
    # of the values, so the angles agree to a few ulp, not bit for bit
    assert main([*SIMULATE[1:], "--out", str(tmp_path / "host.npz")]) == 0
    capsys.readouterr()
    host = read_events(tmp_path / "host.npz")
    assert len(host.x) == len(inside.x)
    np.testing.assert_allclose(inside.x, host.x, rtol=0, atol=1e-14)
    np.testing.assert_allclose(inside.z, host.z, rtol=0, atol=1e-14)
    np.testing.assert_allclose(inside.joint_log_prob, host.joint_log_prob, rtol=1e-12)
    np.testing.assert_allclose(inside.joint_score, host.joint_score, rtol=1e-11, atol=1e-14)
    assert inside.activesci_version == host.activesci_version


@needs_podman
def test_container_has_no_network_and_errors_come_back(image, tmp_path):
    done = run_in_container(
        image, ["python3", "-c", "import os; print(sorted(os.listdir('/sys/class/net')))"], tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['lo']"

    done = run_in_container(
        image, [*SIMULATE, "--design", "sqrt_s=5000", "--out", "x.npz"], tmp_path
    )
    assert done.returncode == 2
    assert "activesci: error:" in done.stderr
    assert not list(tmp_path.iterdir())


@needs_podman
def test_existing_image_is_reused(image):
    assert ensure_local_image() == image


@needs_podman
def test_a_learner_with_a_container_experiment_matches_the_in_process_run(tmp_path):
    import activesci as asci
    from activesci.workflow.experiment import WorkflowExperiment

    task = asci.tasks.weinberg(luminosity=0.2)
    options = {"estimator": "exact", "strategy": "scan", "seed": 4, "progress": False}
    boxed = WorkflowExperiment(
        task, seed=4, image=ensure_local_image(), runtime="podman", workdir=tmp_path
    )
    container = asci.ActiveLearner(task, experiment=boxed, **options)
    in_process = asci.ActiveLearner(task, experiment=task.experiment(seed=4), **options)
    for a, b in zip(container.iterate(3), in_process.iterate(3), strict=True):
        assert a.observation.n == b.observation.n > 0
        # same events up to Debian numpy's cbrt rounding (see above)
        assert np.allclose(a.observation.x, b.observation.x, rtol=0, atol=1e-14)
    assert container.posterior.mean() == pytest.approx(in_process.posterior.mean(), rel=1e-9)
    assert container.posterior.std() == pytest.approx(in_process.posterior.std(), rel=1e-9)
    assert sorted(p.name for p in tmp_path.glob("round-*.npz")) == [
        "round-0000.npz",
        "round-0001.npz",
        "round-0002.npz",
    ]


@needs_podman
def test_a_timeout_removes_the_container_too(image, tmp_path):
    from activesci.errors import StepError
    from activesci.workflow.steps import CommandStep

    seconds = f"47.{os.getpid()}"
    step = CommandStep("hang", ["sleep", seconds], image=image, runtime="podman", timeout=3)
    with pytest.raises(StepError, match="timed out after 3 s"):
        step.run(tmp_path)
    running = subprocess.run(
        ["podman", "ps", "--format", "{{.Command}}"], capture_output=True, text=True, check=True
    )
    assert seconds not in running.stdout
