"""Tests of the thread policy: cgroup quotas, affinity, the override and where it is applied."""

import os

import pytest
import torch
from threadpoolctl import threadpool_info, threadpool_limits

import activesci as asci
from activesci import threads
from activesci.cli import main
from activesci.errors import ValidationError


@pytest.fixture(autouse=True)
def clean_threads(monkeypatch):
    """No thread variables set; torch's and BLAS's threads and the policy's memory restored."""
    for name in (threads.ENV, *threads.USER_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setitem(threads._applied, "torch", None)
    before = torch.get_num_threads()
    with threadpool_limits(limits=None, user_api="blas"):  # restores BLAS threads on exit
        yield
    torch.set_num_threads(before)


def test_parse_cpu_max():
    assert threads.parse_cpu_max("max 100000\n") is None
    assert threads.parse_cpu_max("150000 100000\n") == 1.5
    assert threads.parse_cpu_max("50000 100000") == 0.5
    assert threads.parse_cpu_max("200000") == 2.0  # period left out: the default 100000


@pytest.mark.parametrize(
    "text", ["", "garbage", "max", "1 2 3", "-5 100000", "100000 0", "1.5 1", "max abc", "\0\0"]
)
def test_malformed_cpu_max_is_no_limit(text):
    assert threads.parse_cpu_max(text) is None


def test_parse_cfs():
    assert threads.parse_cfs("-1\n", "100000\n") is None
    assert threads.parse_cfs("300000\n", "100000\n") == 3.0
    assert threads.parse_cfs("lots", "100000") is None


def test_cpu_quota_from_fake_cgroup_v2(tmp_path):
    assert threads.cpu_quota(tmp_path, "/") is None  # no files: no limit
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert threads.cpu_quota(tmp_path, "/") is None
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert threads.cpu_quota(tmp_path, "/") == 1.5
    job = tmp_path / "user.slice" / "job"
    job.mkdir(parents=True)
    (job / "cpu.max").write_text("400000 100000\n")
    assert threads.cpu_quota(tmp_path, "/user.slice/job") == 1.5  # the parent's is smaller
    (job / "cpu.max").write_text("100000 100000\n")
    assert threads.cpu_quota(tmp_path, "/user.slice/job") == 1.0
    (job / "cpu.max").write_bytes(b"\xff\xfe not text")
    assert threads.cpu_quota(tmp_path, "/user.slice/job") == 1.5  # unreadable: ignored
    assert threads.cpu_quota(tmp_path, "/../../etc") == 1.5  # never leaves the root


def test_cpu_quota_from_fake_cgroup_v1(tmp_path):
    cpu = tmp_path / "cpu"
    cpu.mkdir()
    (cpu / "cpu.cfs_quota_us").write_text("-1\n")
    (cpu / "cpu.cfs_period_us").write_text("100000\n")
    assert threads.cpu_quota(tmp_path, "/") is None
    (cpu / "cpu.cfs_quota_us").write_text("250000\n")
    assert threads.cpu_quota(tmp_path, "/") == 2.5
    (cpu / "cpu.cfs_period_us").write_text("oops\n")
    assert threads.cpu_quota(tmp_path, "/") is None


def test_available_cpus_from_affinity_and_quota(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5}, raising=False)
    assert threads.available_cpus(tmp_path) == 6  # no quota: the affinity
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert threads.available_cpus(tmp_path) == 2  # 1.5 CPUs rounded up
    (tmp_path / "cpu.max").write_text("1000000 100000\n")
    assert threads.available_cpus(tmp_path) == 6  # a quota above the affinity
    (tmp_path / "cpu.max").write_text("1000 100000\n")
    assert threads.available_cpus(tmp_path) == 1  # a hundredth of a CPU is still one
    (tmp_path / "cpu.max").write_text("nonsense\n")
    assert threads.available_cpus(tmp_path) == 6
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 3)
    assert threads.available_cpus(tmp_path) == 3  # no affinity (macOS): the CPU count


def test_policy():
    assert [threads.policy_threads(n) for n in (1, 2, 3, 4, 8, 16)] == [1, 1, 1, 2, 4, 8]
    for bad in (0, -2, 1.5, "2", True):
        with pytest.raises(ValidationError, match="cpus must be a positive integer"):
            threads.policy_threads(bad)


def test_env_override():
    assert threads.requested_threads({}) is None
    assert threads.requested_threads({threads.ENV: " "}) is None
    assert threads.requested_threads({threads.ENV: "3"}) == 3
    assert threads.configure_threads({threads.ENV: "3"}) == 3
    assert torch.get_num_threads() == 3
    assert {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"} <= {3}


@pytest.mark.parametrize("bad", ["0", "-1", "two", "1.5", "1e2", "²"])
def test_invalid_env_value_is_a_typed_error_naming_it(bad):
    with pytest.raises(ValidationError, match=rf"ACTIVESCI_THREADS .*positive integer.*{bad!r}"):
        threads.requested_threads({threads.ENV: bad})
    with pytest.raises(ValidationError, match=threads.ENV):
        threads.configure_threads({threads.ENV: bad})


def test_set_threads_rejects_bad_counts():
    for bad in (0, -1, 2.0, "2", None, True):
        with pytest.raises(ValidationError, match=r"threads must be a positive integer"):
            threads.set_threads(bad)


def test_policy_applies_by_default(tmp_path):
    torch.set_num_threads(os.cpu_count() or 1)  # what torch starts with here (or another default)
    (tmp_path / "cpu.max").write_text("max 100000\n")
    expected = threads.policy_threads(threads.available_cpus(tmp_path))
    assert threads.configure_threads({}, tmp_path) == expected
    assert torch.get_num_threads() == expected
    blas = {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}
    assert blas <= {expected}


@pytest.mark.parametrize("name", threads.USER_ENV)
def test_a_user_thread_variable_is_kept(name):
    torch.set_num_threads(2)
    assert threads.configure_threads({name: "2"}) is None
    assert torch.get_num_threads() == 2


def test_a_user_torch_choice_is_kept():
    mine = (os.cpu_count() or 1) + 1  # no default of torch's
    torch.set_num_threads(mine)
    assert threads.configure_threads({}) is None
    assert torch.get_num_threads() == mine
    # after the policy applied once, a later torch.set_num_threads is the user's too
    threads.set_threads(1)
    assert threads.configure_threads({}) == 1  # our own choice: applied again
    torch.set_num_threads(3)
    assert threads.configure_threads({}) is None
    assert torch.get_num_threads() == 3
    assert threads.configure_threads({threads.ENV: "2"}) == 2  # the override always wins


def test_cli_applies_the_policy(monkeypatch, capsys):
    seen = []

    def command(args):
        seen.append(torch.get_num_threads())
        return 0

    monkeypatch.setattr("activesci.cli._command", command)
    monkeypatch.setenv(threads.ENV, "3")
    assert main(["demo"]) == 0
    assert seen == [3]
    monkeypatch.setenv(threads.ENV, "many")
    seen.clear()
    assert main(["demo"]) == 2
    assert seen == []
    assert "ACTIVESCI_THREADS must be a positive integer (threads), got 'many'" in (
        capsys.readouterr().err
    )
    assert main(["tasks"]) == 0  # no torch command: the policy is not consulted


def test_learner_applies_the_policy(monkeypatch):
    monkeypatch.setenv(threads.ENV, "3")
    asci.ActiveLearner("gaussian", estimator="exact", strategy="random", seed=0, progress=False)
    assert torch.get_num_threads() == 3


def test_training_workers_are_the_cpus_per_torch_thread(tmp_path, monkeypatch):
    monkeypatch.delenv(threads.WORKERS_ENV, raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    torch.set_num_threads(1)
    assert threads.training_workers({}, tmp_path) == 4
    torch.set_num_threads(3)
    assert threads.training_workers({}, tmp_path) == 1  # 4 // 3
    (tmp_path / "cpu.max").write_text("100000 100000\n")
    torch.set_num_threads(1)
    assert threads.training_workers({}, tmp_path) == 1  # a quota of one CPU
    assert threads.training_workers({threads.WORKERS_ENV: "3"}, tmp_path) == 3
    with pytest.raises(ValidationError, match=rf"{threads.WORKERS_ENV} .*positive.*'0'"):
        threads.training_workers({threads.WORKERS_ENV: "0"}, tmp_path)
