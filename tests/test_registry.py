"""The one registry behind tasks, strategies and acquisitions (activesci.registry)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from importlib import metadata

import numpy as np
import pytest

from activesci.errors import ValidationError
from activesci.registry import Registry, qualified_name


def widget(colour: str = "blue") -> dict[str, str]:
    return {"colour": colour}


class _EntryPoint:
    """Stands in for an installed package's entry point (nothing is installed in tests)."""

    def __init__(self, name: str, value: str, target: object) -> None:
        self.name, self.value, self._target = name, value, target

    def load(self) -> object:
        return self._target


def test_a_registry_resolves_names_then_entry_points_then_allowed_imports(monkeypatch):
    reg = Registry("widget", {"plain": widget}, group="test.widgets")
    fancy = _EntryPoint("fancy", "somepkg.widgets:fancy", lambda: "fancy")
    monkeypatch.setattr(
        metadata, "entry_points", lambda group=None: [fancy] if group == "test.widgets" else []
    )
    assert list(reg) == ["plain", "fancy"]
    assert reg.make("plain", colour="red") == {"colour": "red"}
    assert reg.make("fancy") == "fancy"
    assert reg.resolve("somepkg.widgets:fancy")() == "fancy"  # an entry point by its target
    assert reg.resolve(qualified_name(widget)) is widget  # a built-in by its import path
    with pytest.raises(ValidationError, match="names a module to import"):
        reg.resolve("json:dumps")  # importing runs code: only when the caller allows it
    assert reg.resolve("json:dumps", allow_plugins=True)([1]) == "[1]"
    with pytest.raises(ValidationError, match="could not be imported"):
        reg.resolve("no_such_module_here:x", allow_plugins=True)
    with pytest.raises(ValidationError, match=r"unknown widget 'nope'; available: \['fancy'"):
        reg.resolve("nope")
    with pytest.raises(ValidationError, match="bad options"):
        reg.make("plain", size=3)


def test_registering_is_explicit_validated_and_undone_by_del():
    reg = Registry("widget", {"plain": widget})
    reg.register("mine", lambda: "mine")
    reg["other"] = widget  # the mapping form registers too
    assert "mine" in reg and len(reg) == 3
    assert reg.make("mine") == "mine"
    del reg["mine"]
    assert "mine" not in reg
    with pytest.raises(KeyError):
        del reg["plain"]  # a built-in stays
    with pytest.raises(ValidationError, match="must be an identifier"):
        reg.register("two words", widget)
    with pytest.raises(ValidationError, match="must be callable"):
        reg.register("bad", 3)  # type: ignore[arg-type]


def test_importing_any_activesci_module_changes_no_registry():
    """Every module imported in a fresh process: each registry holds its built-ins only."""
    script = textwrap.dedent(
        """
        import gc, importlib, pkgutil
        import activesci
        from activesci.registry import Registry

        skipped = []
        for info in pkgutil.walk_packages(activesci.__path__, "activesci."):
            if info.name.endswith(".__main__"):
                continue  # running it is what importing a __main__ is for
            try:
                importlib.import_module(info.name)
            except ImportError as exc:  # an optional dependency (madminer) is missing
                skipped.append(f"{info.name}: {exc}")
        registries = [o for o in gc.get_objects() if isinstance(o, Registry)]
        kinds = sorted(r.kind for r in registries)
        assert kinds == ["EIG estimator", "acquisition", "posterior", "strategy", "task"], kinds
        for reg in registries:
            assert not reg._added, (reg.kind, sorted(reg._added))
        from activesci.design import STRATEGIES
        assert "oracle" not in STRATEGIES, sorted(STRATEGIES)
        print("ok", len(skipped))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("ok")


def test_a_new_strategy_is_one_file_and_a_registration(tmp_path, monkeypatch):
    """A strategy of the user's own (a new file) registered by name runs the loop like the
    built-ins, and unregistering it leaves the registry as it was."""
    import activesci as asci
    from activesci.design import STRATEGIES, register_strategy

    (tmp_path / "edge_strategy.py").write_text(
        textwrap.dedent(
            """
            from dataclasses import dataclass, field

            @dataclass
            class UpperEdge:
                '''Always the upper end of every design dimension.'''

                name: str = "upper_edge"
                record: dict = field(default_factory=dict)

                def propose(self, context):
                    return context.space.bounds[:, 1].copy()
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    from edge_strategy import UpperEdge

    before = list(STRATEGIES)
    register_strategy("upper_edge", UpperEdge)
    try:
        learner = asci.ActiveLearner("gaussian", estimator="exact", strategy="upper_edge")
        states = list(learner.iterate(2))
        upper = learner.task.designs.bounds[:, 1]
        assert all(np.array_equal(s.design, upper) for s in states)
    finally:
        del STRATEGIES["upper_edge"]
    assert list(STRATEGIES) == before


def test_a_new_posterior_representation_is_one_file_and_a_registration(tmp_path, monkeypatch):
    """A representation of the user's own (here: a coarse grid, in a new file) registered by
    name holds the learner's posterior; unregistered, the name is refused."""
    import activesci as asci
    from activesci.inference.grid import GridPosterior
    from activesci.inference.representations import POSTERIORS, register_posterior

    (tmp_path / "coarse_posterior.py").write_text(
        textwrap.dedent(
            """
            from activesci.inference.grid import GridPosterior

            def coarse(space, *, simulator, seed, resolution=None, particles=None):
                # eleven cells per parameter, whatever the learner asks
                return GridPosterior(space, 11, simulator=simulator)
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    from coarse_posterior import coarse

    register_posterior("coarse", coarse)
    try:
        learner = asci.ActiveLearner(
            "gaussian", estimator="exact", strategy="fixed", posterior="coarse"
        )
        state = learner.run(2)
        assert isinstance(state.posterior, GridPosterior) and state.posterior.shape == (11,)
        assert learner.posterior_kind == "coarse"
    finally:
        del POSTERIORS["coarse"]
    with pytest.raises(ValidationError, match="posterior must be one of"):
        asci.ActiveLearner("gaussian", estimator="exact", posterior="coarse")


@pytest.mark.filterwarnings("ignore:Predicted variances smaller than 0")  # skopt's GP on a
# noiseless quadratic: round-off, harmless
def test_a_new_eig_estimator_is_one_file_and_a_registration(tmp_path, monkeypatch):
    """An EIG estimator of the user's own (a new file) registered by name answers
    ``expected_information_gain(method=name)`` and chooses the ``eig`` strategy's designs."""
    import activesci as asci
    from activesci.design import EIG_ESTIMATORS, expected_information_gain, register_eig_estimator
    from activesci.inference import GridPosterior

    (tmp_path / "peaked_eig.py").write_text(
        textwrap.dedent(
            """
            import numpy as np
            from activesci.typing import EIGEstimate

            SEEN = []

            def peaked(posterior, simulator, design, *, estimator, n_samples=32, rng=None,
                       peak=2.0):
                # worth most at `peak`, whatever the posterior: a stand-in for a real estimate
                d = float(simulator.designs.validate(design)[0, 0])
                SEEN.append(type(estimator).__name__)
                return EIGEstimate(value=-((d - peak) ** 2), stderr=0.0, n_samples=n_samples)
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import peaked_eig

    task = asci.tasks.gaussian()
    post = GridPosterior(task.parameters, simulator=task.simulator)
    before = list(EIG_ESTIMATORS)
    register_eig_estimator("peaked", peaked_eig.peaked)
    try:
        eig = expected_information_gain(
            post, task.simulator, [1.0], method="peaked", exact=True, peak=1.5
        )
        assert eig.value == pytest.approx(-0.25) and peaked_eig.SEEN == ["ExactLikelihood"]
        with pytest.raises(ValidationError, match="takes no option 'n_contrast'"):
            expected_information_gain(
                post, task.simulator, [1.0], method="peaked", exact=True, n_contrast=4
            )
        learner = asci.ActiveLearner(
            "gaussian", estimator="exact", strategy="eig", strategy_options={"method": "peaked"}
        )
        states = list(learner.iterate(2))
        assert all(abs(float(s.design[0]) - 2.0) < 0.2 for s in states), [s.design for s in states]
    finally:
        del EIG_ESTIMATORS["peaked"]
    assert list(EIG_ESTIMATORS) == before
    with pytest.raises(ValidationError, match="'peaked'"):
        asci.ActiveLearner(
            "gaussian", estimator="exact", strategy="eig", strategy_options={"method": "peaked"}
        )
