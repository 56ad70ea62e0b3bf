"""Trackers: memory, null, MLflow (a sqlite:/// database, and a real ``mlflow server``).

``make test`` installs the ``mlflow`` extra, so every test here runs there: the one without
MLflow hides it from the import system; the ones with it skip only where it is not installed.
"""

from __future__ import annotations

import importlib.util
import math
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import numpy as np
import pytest

from activesci.errors import MissingExtraError, ValidationError
from activesci.tracking import (
    MAX_PARAM_LENGTH,
    MemoryTracker,
    MLflowTracker,
    NullTracker,
    as_tracker,
    flatten_metrics,
    flatten_params,
    metrics_from_summary,
)
from activesci.typing import Tracker

HAS_MLFLOW = importlib.util.find_spec("mlflow") is not None
needs_mlflow = pytest.mark.skipif(not HAS_MLFLOW, reason="mlflow is not installed")

SUMMARY = {
    "design": [88.0],
    "n": 1621,
    "luminosity": 1.0,
    "mean": [0.2312],
    "std": [0.0041],
    "interval68": [[0.2271, 0.2353]],
    "hdr68": [[(0.2270, 0.2352)]],
    "entropy": -4.1,
    "n_events": 3240,
    "marginals": {"sin2w": {"x": [0.2, 0.3], "p": [1.0, 2.0]}},
    "strategy": {"evaluated": [[88.0], [91.0]], "eig": [0.3, 0.2], "chosen_eig": 0.31},
    "seconds": 1.25,
}

METADATA = {
    "task": "weinberg",
    "task_options": {"luminosity": 1.0, "efficiency": {"a": 0.9}},
    "seed": 1,
    "strategy": {"name": "eig", "n_samples": 64},
    "estimator": {"kind": "exact"},
    "resolution": 401,
    "refine_every": None,
    "experiment": {"kind": "simulated", "truth": {"sin2w": 0.2315}, "seed": 1},
    "activesci_version": "0.1.0",
}


# -- metrics_from_summary / flattening -------------------------------------------------------
def test_metrics_from_summary_one_parameter() -> None:
    m = metrics_from_summary(SUMMARY)
    assert m == {
        "design": 88.0,
        "n": 1621.0,
        "luminosity": 1.0,
        "mean": 0.2312,
        "std": 0.0041,
        "interval68.lo": 0.2271,
        "interval68.hi": 0.2353,
        "entropy": -4.1,
        "n_events": 3240.0,
        "seconds": 1.25,
        "chosen_eig": 0.31,
    }
    assert all(type(v) is float for v in m.values())


def test_metrics_from_summary_several_parameters_and_gaps() -> None:
    summary = {
        "design": [88.0, 0.5],
        "mean": np.array([0.23, 1.0]),
        "std": [0.004, float("nan")],
        "interval68": [[0.22, 0.24], [0.9, 1.1]],
        "luminosity": None,
        "entropy": float("inf"),
        "n": np.int64(12),
        "strategy": {"chosen_eig": None},
        "hdr68": [[(0.22, 0.24)], [(0.9, 1.1)]],
        "note": "text",
    }
    assert metrics_from_summary(summary) == {
        "design.0": 88.0,
        "design.1": 0.5,
        "mean.0": 0.23,
        "mean.1": 1.0,
        "std.0": 0.004,
        "interval68.0.lo": 0.22,
        "interval68.0.hi": 0.24,
        "interval68.1.lo": 0.9,
        "interval68.1.hi": 1.1,
        "n": 12.0,
    }


def test_metrics_from_summary_of_a_real_round() -> None:
    from activesci.learner import ActiveLearner

    learner = ActiveLearner(
        "gaussian", estimator="exact", strategy="random", seed=0, progress=False
    )
    state = next(iter(learner.iterate(1)))
    m = metrics_from_summary(state.summary())
    assert {"mean", "std", "entropy", "n", "n_events", "seconds", "design"} <= set(m)
    assert all(isinstance(v, float) and math.isfinite(v) for v in m.values())


def test_metrics_from_summary_records_the_self_check() -> None:
    check = {
        "ok": False,
        "calibration_shift": [1.4, -0.2],
        "width_ratio": None,
        "edge_mass": 2e-4,
        "warnings": ["the learned estimator was biased by 1.4 posterior std"],
    }
    m = metrics_from_summary({"check": check, "trainings": [{"reason": "first data"}]})
    assert m == {
        "check.ok": 0.0,
        "check.calibration_shift.0": 1.4,
        "check.calibration_shift.1": -0.2,
        "check.edge_mass": 2e-4,
        "trainings": 1.0,
    }
    assert metrics_from_summary({"check": None, "regrids": []}) == {"regrids": 0.0}


def test_flatten_metrics_rules() -> None:
    got = flatten_metrics(
        {"a": [0.23], "b": [1, 2], "c": None, "d": [], "e": [[1.0, 2.0]], "f": True, "g": "x"}
    )
    assert got == {"a": 0.23, "b.0": 1.0, "b.1": 2.0, "f": 1.0}


def test_flatten_params_dotted_strings_truncated() -> None:
    flat = flatten_params({**METADATA, "long": "x" * 2000, "empty": {}, "arr": np.arange(3)})
    assert flat["task_options.efficiency.a"] == "0.9"
    assert flat["experiment.truth.sin2w"] == "0.2315"
    assert flat["refine_every"] == "None"
    assert flat["empty"] == "{}"
    assert flat["arr"] == "[0, 1, 2]"
    assert len(flat["long"]) == MAX_PARAM_LENGTH
    assert flat["long"].endswith("[truncated]")
    assert all(isinstance(v, str) for v in flat.values())


# -- trackers --------------------------------------------------------------------------------
def test_memory_tracker_records_in_order() -> None:
    with MemoryTracker() as t:
        t.log_params(METADATA)
        for step in range(3):
            t.log_metrics({"mean": 0.23 + step, "std": 1.0 / (step + 1)}, step=step)
    assert t.closed
    assert t.params == [METADATA]
    assert t.history("mean") == [(0, 0.23), (1, 1.23), (2, 2.23)]
    assert t.latest() == {"mean": 2.23, "std": pytest.approx(1 / 3)}
    assert [s for s, _ in t.metrics] == [0, 1, 2]


def test_memory_tracker_copies_its_input() -> None:
    t = MemoryTracker()
    metrics = {"mean": 1.0}
    t.log_metrics(metrics, step=0)
    metrics["mean"] = 2.0
    assert t.history("mean") == [(0, 1.0)]
    assert MemoryTracker().latest() == {}


def test_null_tracker_does_nothing() -> None:
    with NullTracker() as t:
        t.log_params(METADATA)
        t.log_metrics({"mean": 1.0}, step=0)
    t.close()


@pytest.mark.parametrize("make", [NullTracker, MemoryTracker])
def test_trackers_satisfy_the_protocol(make: type) -> None:
    assert isinstance(make(), Tracker)


def test_as_tracker() -> None:
    assert isinstance(as_tracker(None), NullTracker)
    assert isinstance(as_tracker("memory"), MemoryTracker)
    mine = MemoryTracker()
    assert as_tracker(mine) is mine
    with pytest.raises(ValidationError, match="unknown tracker"):
        as_tracker("wandb")
    with pytest.raises(ValidationError, match="log_params"):
        as_tracker(42)


@pytest.mark.parametrize("uri", ["runs/mlruns", "file:///tmp/mlruns", "postgresql://h/db"])
def test_mlflow_tracker_refuses_file_store(uri: str) -> None:
    # checked before mlflow is imported, so this holds in either environment
    with pytest.raises(ValidationError, match="file store"):
        MLflowTracker(tracking_uri=uri)


def test_mlflow_tracker_refuses_malformed_sqlite_uri() -> None:
    with pytest.raises(ValidationError, match="sqlite:///"):
        MLflowTracker(tracking_uri="sqlite://runs/mlflow.db")


def hide_module(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Make ``import name`` (and of its submodules) raise ImportError, installed or not."""
    for key in [k for k in sys.modules if k == name or k.startswith(name + ".")] + [name]:
        monkeypatch.setitem(sys.modules, key, None)


def test_mlflow_tracker_without_mlflow(tmp_path, monkeypatch) -> None:
    hide_module(monkeypatch, "mlflow")
    with pytest.raises(MissingExtraError, match=r"pip install activesci\[mlflow\]"):
        MLflowTracker(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    with pytest.raises(ImportError):  # MissingExtraError is an ImportError too
        as_tracker("mlflow")


# -- MLflow: a sqlite:/// database and a real tracking server --------------------------------
#: Seconds to wait for ``mlflow server`` to answer ``/health``: it imports a lot (35-55 s on a
#: busy 2-core machine at nice 19, its job runner off); past this its tests skip and say why.
SERVER_START_TIMEOUT = 150.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _healthy(url: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
    try:
        with opener.open(f"{url}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _stop(proc: subprocess.Popen) -> None:
    """End the server's process group: ``mlflow server`` runs uvicorn as a child."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass
    except ProcessLookupError:
        return
    try:  # whatever is left of the group, the leader included
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory) -> Iterator[dict[str, str]]:
    """``mlflow server`` on a free port of 127.0.0.1 with a SQLite backend, for this module.

    Yields ``{"url": "http://127.0.0.1:PORT", "backend": "sqlite:///.../server.db"}``.
    """
    if not HAS_MLFLOW:
        pytest.skip("mlflow is not installed")
    root = tmp_path_factory.mktemp("mlflow_server")
    backend = f"sqlite:///{root / 'server.db'}"
    url = f"http://127.0.0.1:{_free_port()}"
    command = [
        *(sys.executable, "-m", "mlflow", "server"),
        *("--backend-store-uri", backend),
        *("--artifacts-destination", str(root / "mlartifacts")),
        *("--host", "127.0.0.1", "--port", url.rsplit(":", 1)[1], "--workers", "1"),
    ]
    # no job runner: it starts a pool of worker processes the tracker never uses
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    log_path = root / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        start = time.monotonic()
        while not _healthy(url):
            waited = time.monotonic() - start
            if proc.poll() is not None or waited > SERVER_START_TIMEOUT:
                tail = log_path.read_text(errors="replace")[-1500:]
                why = (
                    f"exited with code {proc.returncode}"
                    if proc.poll() is not None
                    else f"did not answer {url}/health within {SERVER_START_TIMEOUT:.0f} s"
                )
                pytest.skip(f"mlflow server {why}; its log ends:\n{tail}")
            time.sleep(0.5)
        yield {"url": url, "backend": backend}
    finally:
        _stop(proc)


@pytest.fixture(params=["sqlite", "server"])
def tracking_uri(request, tmp_path) -> str:
    """A ``sqlite:///`` database in a folder still to be made, or the module's server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/sub/mlflow.db"
    return request.getfixturevalue("mlflow_server")["url"]


@needs_mlflow
def test_mlflow_tracker_logs_a_run(tracking_uri, tmp_path, request) -> None:
    from mlflow.tracking import MlflowClient

    experiment = f"test-exp-{tmp_path.name}"  # unique: the server's database is shared
    summaries = [
        {**SUMMARY, "mean": [0.2312 + 0.001 * k], "std": [0.004 / (k + 1)], "n": 100 + k}
        for k in range(3)
    ]
    with MLflowTracker(tracking_uri=tracking_uri, experiment=experiment, run_name="r1") as t:
        assert isinstance(t, Tracker)
        t.log_params({**METADATA, "long": "y" * 1000})
        t.log_params({"seed": 1})  # same value again: fine
        for k, s in enumerate(summaries):
            t.log_metrics(metrics_from_summary(s), step=k)
        t.log_metrics({"raw": [0.5], "pair": [1.0, 2.0], "skip": None, "bad": float("nan")}, 3)
    if tracking_uri.startswith("sqlite:///"):
        assert (tmp_path / "sub" / "mlflow.db").is_file()  # the folder was created
    else:  # the run went through the server into its backend
        server = request.getfixturevalue("mlflow_server")
        stored = MlflowClient(tracking_uri=server["backend"]).get_run(t.run_id)
        assert stored.data.params["task"] == "weinberg"
        assert stored.data.metrics["mean"] == pytest.approx(0.2332)

    client = MlflowClient(tracking_uri=tracking_uri)
    run = client.get_run(t.run_id)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "r1"
    assert client.get_experiment(run.info.experiment_id).name == experiment
    params = run.data.params
    assert params["task"] == "weinberg"
    assert params["strategy.name"] == "eig"
    assert params["experiment.truth.sin2w"] == "0.2315"
    assert params["refine_every"] == "None"
    assert len(params["long"]) == MAX_PARAM_LENGTH
    assert params["long"].endswith("[truncated]")

    history = client.get_metric_history(t.run_id, "mean")
    assert [(h.step, h.value) for h in sorted(history, key=lambda h: h.step)] == [
        (k, pytest.approx(0.2312 + 0.001 * k)) for k in range(3)
    ]
    n = sorted(client.get_metric_history(t.run_id, "n"), key=lambda h: h.step)
    assert [h.value for h in n] == [100.0, 101.0, 102.0]
    latest = run.data.metrics
    assert latest["interval68.lo"] == pytest.approx(0.2271)
    assert latest["chosen_eig"] == pytest.approx(0.31)
    assert latest["raw"] == 0.5
    assert latest["pair.0"] == 1.0
    assert latest["pair.1"] == 2.0
    assert "skip" not in latest
    assert "bad" not in latest
    assert not any(k.startswith(("marginals", "hdr68", "strategy")) for k in latest)

    # a second run in the same experiment reuses it
    with MLflowTracker(tracking_uri=tracking_uri, experiment=experiment) as t2:
        t2.log_metrics({"mean": 1.0}, step=0)
    assert t2.experiment_id == t.experiment_id
    assert t2.run_id != t.run_id


@needs_mlflow
def test_mlflow_tracker_param_conflict_and_failed_status(tracking_uri, tmp_path) -> None:
    from mlflow.tracking import MlflowClient

    with pytest.raises(ValidationError, match="cannot change"):
        with MLflowTracker(tracking_uri=tracking_uri, experiment=f"conflict-{tmp_path.name}") as t:
            t.log_params({"seed": 1})
            t.log_params({"seed": 2})
    assert MlflowClient(tracking_uri=tracking_uri).get_run(t.run_id).info.status == "FAILED"
    t.close()  # idempotent


@needs_mlflow
def test_learner_rounds_reach_mlflow(tracking_uri) -> None:
    from mlflow.tracking import MlflowClient

    from activesci.learner import ActiveLearner

    learner = ActiveLearner(
        "gaussian", estimator="exact", strategy="fixed", tracker=tracking_uri, progress=False
    )
    learner.run(3)
    learner.close()
    assert isinstance(learner.tracker, MLflowTracker)
    client = MlflowClient(tracking_uri=tracking_uri)
    run = client.get_run(learner.tracker.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["task"] == "gaussian"
    std = sorted(client.get_metric_history(run.info.run_id, "std"), key=lambda h: h.step)
    assert [h.step for h in std] == [0, 1, 2]
    assert std[-1].value == pytest.approx(learner.posterior.std()[0])
    assert std[0].value > std[-1].value  # three rounds of data narrow the posterior


@needs_mlflow
def test_mlflow_tracker_bad_uri_with_mlflow_installed(tmp_path) -> None:
    with pytest.raises(ValidationError, match="refuses the plain file store"):
        MLflowTracker(tracking_uri=str(tmp_path / "mlruns"))
    with pytest.raises(ValidationError, match="sqlite:///"):
        MLflowTracker(tracking_uri=tmp_path / "mlflow.db")
