"""The notebook dashboard: watch and steer an active-learning run (views only).

``Dashboard(learner)`` shows, live: (a) the posterior (the truth appears in teaching mode when
the experiment is simulated): for one parameter, each round's posterior overlaid; for two or
more, the corner plot of the current one (1-D marginals and pairwise contours, the prior before
the first round), (b) the EIG surrogate over a 1-D design space with the points the optimiser
evaluated (over a 2-D one, the evaluated designs coloured by their EIG), (c) the design
history, (d) for the Weinberg task, the measured A_FB against the posterior band of theory,
and (e) the states of workflow steps when the experiment is a
:class:`~activesci.workflow.experiment.WorkflowExperiment`. Buttons step, run N
rounds, stop between rounds and reset with the picked strategy, estimator and luminosity; a
form takes a result typed by a person for a :class:`~activesci.experiments.ManualExperiment`.

Rounds run in a background thread, so the notebook stays responsive: a round that trains (a
local estimator after a new design, or a retraining) shows the training's own progress bar,
and Step and Run are disabled until the round is over. The dashboard appears at once: it
draws the prior and trains nothing itself (the flagship's amortised estimator is shipped
trained, :mod:`activesci.inference.pretrained`).

The dashboard computes no science: every number comes from the learner, its store or
``activesci.plots``. Everything is plain ipywidgets and plotly ``FigureWidget``s, so it is tested
from Python without a browser (and with one in ``tests/test_browser.py``).
"""

from __future__ import annotations

import html
import threading
from typing import Any

import numpy as np
import plotly.graph_objects as go

from activesci import plots
from activesci.design.optimizer import STRATEGIES
from activesci.errors import ActivesciError
from activesci.experiments import ManualExperiment
from activesci.inference.methods import METHODS

__all__ = ["Dashboard"]


class Dashboard:
    """Live panels and controls for an :class:`~activesci.learner.ActiveLearner`.

    Parameters
    ----------
    learner : ActiveLearner
        The run to show and drive.
    teaching : bool
        Start in teaching mode (the hidden truth is drawn on the posterior).

    Examples
    --------
    >>> import activesci as asci
    >>> learner = asci.ActiveLearner("gaussian", estimator="exact", strategy="fixed", seed=1)
    >>> board = asci.Dashboard(learner)
    >>> _ = board.step()
    >>> board.round_label.value.startswith("<b>round 1</b>")
    True
    """

    def __init__(self, learner: Any, *, teaching: bool = False) -> None:
        import ipywidgets as w

        self.learner = learner
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._unsubscribe: Any = None
        names = learner.task.parameters.names

        self.step_button = w.Button(description="Step", icon="play", tooltip="run one round")
        self.run_button = w.Button(description="Run", icon="forward", tooltip="run N rounds")
        self.rounds_input = w.BoundedIntText(
            value=5, min=1, max=1000, description="N", layout={"width": "140px"}
        )
        self.stop_button = w.Button(
            description="Stop", icon="stop", tooltip="stop after this round"
        )
        self.reset_button = w.Button(description="Reset", icon="refresh", tooltip="start over")
        self.strategy_picker = w.Dropdown(
            options=sorted(STRATEGIES),
            value=getattr(learner.strategy, "name", "eig"),
            description="strategy",
        )
        method = learner.estimator_method
        methods = ["exact", *sorted(m for m in METHODS if m != "sally")]
        self.estimator_picker = w.Dropdown(
            options=methods if method in methods else [method, *methods],
            value=method,
            description="estimator",
        )
        luminosity = learner.task.options.get("luminosity")
        self.luminosity_slider = w.FloatLogSlider(
            value=luminosity or 1.0,
            base=10,
            min=-2,
            max=2,
            step=0.1,
            description="pb⁻¹/round",
            disabled=luminosity is None,
        )
        self.teaching = w.ToggleButton(value=teaching, description="teaching mode", icon="eye")
        self.parameter_picker = w.Dropdown(options=names, value=names[0], description="parameter")
        if len(names) > 1:  # the corner plot shows every parameter: nothing to pick
            self.parameter_picker.layout.display = "none"
        self.round_label = w.HTML()
        self.check_banner = w.HTML()
        self.message = w.HTML()
        self.progress = w.IntProgress(
            min=0, max=1, value=0, description="rounds", layout={"visibility": "hidden"}
        )
        self.training = w.IntProgress(
            min=0,
            max=1,
            value=0,
            description="training",
            bar_style="info",
            layout={"visibility": "hidden"},
        )
        self.training_label = w.HTML()
        self.manual_x = w.Textarea(
            placeholder="one event per line: its features, comma separated (e.g. cos θ)",
            description="events",
            layout={"width": "420px", "height": "80px"},
        )
        self.manual_luminosity = w.FloatText(value=luminosity or 0.0, description="pb⁻¹")
        self.manual_button = w.Button(description="Submit result", icon="check")
        # a panel is a placeholder until it has something to draw: each plotly FigureWidget
        # carries plotly.js (5 MB) to the browser: four at once made the first view take 11-14 s
        self.posterior_plot: Any = _placeholder(_PANELS["posterior_plot"])
        self.eig_plot: Any = _placeholder(_PANELS["eig_plot"])
        self.design_plot: Any = _placeholder(_PANELS["design_plot"])
        self.afb_plot: Any = _placeholder(_PANELS["afb_plot"])
        self.dag_view = w.HTML()

        self.step_button.on_click(lambda _: self.run_in_background(1))
        self.run_button.on_click(lambda _: self.run_in_background(self.rounds_input.value))
        self.stop_button.on_click(lambda _: self.stop())
        self.reset_button.on_click(lambda _: self._in_background(self.reset))
        self.manual_button.on_click(lambda _: self._in_background(self.submit_manual))
        self.teaching.observe(lambda _: self.refresh(), names="value")
        self.parameter_picker.observe(lambda _: self.refresh(), names="value")
        self._attach_workflow()

        controls = w.HBox(
            [
                self.step_button,
                self.rounds_input,
                self.run_button,
                self.stop_button,
                self.reset_button,
            ]
        )
        settings = w.HBox([self.strategy_picker, self.estimator_picker, self.luminosity_slider])
        self.manual_form = w.VBox(
            [
                w.HTML("<b>Enter the measured result</b>"),
                self.manual_x,
                w.HBox([self.manual_luminosity, self.manual_button]),
            ]
        )
        self.manual_form.layout.display = None if self._manual else "none"
        # one parameter: four panels in a 2 x 2 grid; more: the corner plot above, full width
        # (a P x P grid of panels), and the A_FB panel only for the Weinberg task
        self._corner = len(names) > 1
        grid = [self.eig_plot, self.design_plot]
        if not self._corner:
            grid.insert(0, self.posterior_plot)
        if not self._corner or self._task_panel:
            grid.append(self.afb_plot)
        self._top = w.GridBox(  # a grid cell, not a flex item: plotly takes its full width
            [self.posterior_plot] if self._corner else [],
            layout={"grid_template_columns": "minmax(0, 1fr)"},
        )
        self._panels = w.GridBox(
            grid, layout={"grid_template_columns": "repeat(2, minmax(0, 1fr))"}
        )
        self.widget = w.VBox(
            [
                controls,
                settings,
                w.HBox([self.teaching, self.parameter_picker]),
                self.round_label,
                self.check_banner,
                self.progress,
                w.HBox([self.training, self.training_label]),
                self.message,
                self.manual_form,
                self._top,
                self._panels,
                self.dag_view,
            ]
        )  # fmt: skip
        self.refresh()

    # -- display ------------------------------------------------------------------------------
    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    @property
    def _manual(self) -> bool:
        return isinstance(self.learner.experiment, ManualExperiment)

    @property
    def _task_panel(self) -> bool:
        """Whether the task draws a panel of its own (``Task.figures``; Weinberg: A_FB)."""
        return self.learner.task.figures is not None

    def _attach_workflow(self) -> None:
        """Show the learner's rounds, workflow step states and training progress.

        The panels redraw on the learner's ``told`` event: rounds run from the buttons or from
        code (``learner.run(5)`` in another cell) alike.
        """
        if hasattr(self.learner.experiment, "callback"):
            self.learner.experiment.callback = self._show_dag
        self.learner.progress = self._show_training
        if self._unsubscribe is not None:
            self._unsubscribe()  # the learner replaced by a reset
        self._unsubscribe = self.learner.events.told.subscribe(lambda *_: self.refresh())

    def _show_training(self, what: str, done: int, total: int) -> None:
        """The learner's training progress (:data:`activesci.typing.Progress`) as a bar."""
        busy = done < total
        self.training.max, self.training.value = max(int(total), 1), int(done)
        self.training.layout.visibility = "visible" if busy else "hidden"
        self.training_label.value = (
            f"<span style='color:#555'>{html.escape(what)}: epoch {done}/{total}</span>"
            if busy
            else ""
        )

    def _show_dag(self, states: dict[str, str]) -> None:
        colours = {"success": "#2a7", "failed": "#c33", "running": "#e90", "defined": "#999"}
        cells = " ".join(
            f"<span style='color:{colours.get(s, '#999')}'>● {html.escape(n)}: {s}</span>"
            for n, s in states.items()
        )
        self.dag_view.value = f"<b>workflow</b> {cells}"

    def _show(self, attr: str, figure: go.Figure) -> None:
        """Put ``figure`` in panel ``attr`` as a new FigureWidget.

        A new widget carries the traces in its state, which every frontend renders (Voila
        shows the state of widgets as of the page load); traces added to an existing
        FigureWidget travel as messages that a page opened later never sees.
        """
        self._replace(attr, go.FigureWidget(figure))

    def _replace(self, attr: str, new: Any) -> None:
        """Put widget ``new`` in panel ``attr`` in place of the old one, which is closed."""
        old = getattr(self, attr)
        setattr(self, attr, new)
        for box in (self._top, self._panels):
            box.children = tuple(new if c is old else c for c in box.children)
        old.close()

    def _say(self, text: str, error: bool = False) -> None:
        colour = "#c33" if error else "#555"
        self.message.value = (
            f"<span style='color:{colour}'>{html.escape(text)}</span>" if text else ""
        )

    def _guard(self, action: Any) -> Any:
        """Run a button's action; show an activesci error in the widget instead of raising."""
        try:
            return action()
        except ActivesciError as exc:
            self._say(str(exc), error=True)
            return None

    def refresh(self) -> None:
        """Redraw every panel from the learner's store."""
        learner = self.learner
        rounds = learner.store.rounds()
        names = learner.task.parameters.names
        name = self.parameter_picker.value
        truths = (getattr(learner.experiment, "truth", None) or {}) if self.teaching.value else {}
        truth = truths.get(name)
        if rounds:
            last = rounds[-1]
            cells = ", ".join(
                f"{n} = {m:.5g} ± {s:.2g}"
                for n, m, s in zip(names, last["mean"], last["std"], strict=True)
            )
            self.round_label.value = (
                f"<b>round {len(rounds)}</b> · {sum(r['n'] for r in rounds)} events · {cells}"
            )
            self.check_banner.value = _check_banner(last)
            designs = learner.task.designs.names
            if self._corner:
                title = f"Posterior after round {len(rounds)}: pairwise marginals"
                self._show_corner(last["marginals"], last["pairs"], truths, title)
            else:
                figure = plots.posterior_rounds_figure(rounds, name, truth=truth)
                self._show("posterior_plot", figure)
            self._show("design_plot", plots.design_history_figure(rounds, designs))
            record = last.get("strategy") or {}
            title = f"EIG before round {len(rounds)}"
            if record.get("evaluated") and len(designs) == 1:
                self._show("eig_plot", plots.eig_figure(record, designs[0], title=title))
            elif record.get("evaluated") and len(designs) == 2:
                figure = plots.eig_scatter_figure(record, designs, last["design"], title=title)
                self._show("eig_plot", figure)
            elif record.get("evaluated"):
                what = (
                    "the expected information gain is drawn over 1-D and 2-D design spaces; "
                    f"this one has {len(designs)} dimensions"
                )
                self._replace("eig_plot", _placeholder(what, after=""))
            if self._task_panel:
                task = learner.task
                figures = task.figures(task, learner.posterior.observations, last)
                if figures:
                    self._show("afb_plot", figures[0])
        else:
            self.round_label.value = "<b>round 0</b> · no data yet: press Step"
            self.check_banner.value = ""
            if self._corner:
                posterior = learner.posterior
                marginals = {}
                for n in names:
                    grid, density = posterior.marginal(n)
                    marginals[n] = {"grid": grid, "density": density}
                title = "Prior: press Step for the first round"
                self._show_corner(marginals, posterior.pair_marginals(), truths, title)
            else:
                grid, density = learner.posterior.marginal(name)
                title = f"Prior of {name}: press Step for the first round"
                prior = plots.posterior_figure(grid, density, name=name, truth=truth, title=title)
                self._show("posterior_plot", prior)
        if self._manual:
            wanted = learner.ask()
            shown = ", ".join(
                f"{n} = {v:.4g}" for n, v in zip(learner.task.designs.names, wanted, strict=True)
            )
            self.manual_form.children[0].value = f"<b>Enter the result measured at {shown}</b>"

    def _show_corner(self, marginals: Any, pairs: Any, truth: dict[str, float], title: str) -> None:
        """The corner plot of ``marginals`` and ``pairs`` in the posterior panel, full width."""
        space = self.learner.task.parameters
        figure = plots.corner_figure(
            marginals, pairs, space.names, truth=truth, labels=space, title=title
        )
        # no fixed width (corner_figure's 260 px a panel overflows a notebook from 4 parameters
        # on): the widget autosizes, though in JupyterLab a FigureWidget put into a shown box
        # is drawn at plotly's default 700 px until the window resizes; the height keeps the
        # panels about square at that width
        figure.update_layout(width=None, height=max(450, min(700, 190 * len(space) + 80)))
        self._show("posterior_plot", figure)

    # -- actions ------------------------------------------------------------------------------
    def step(self) -> Any:
        """Run one round (ask, run the experiment, tell) and redraw; return its state."""
        with self._lock:
            design = self.learner.ask()
            state = self.learner.tell(design, self.learner.experiment.run(design))
        self._say("")  # the panels redrew on the learner's told event
        return state

    def run(self, rounds: int) -> int:
        """Run up to ``rounds`` rounds, stopping early after :meth:`stop`; return rounds run."""
        self._stop.clear()
        self.progress.max, self.progress.value = max(int(rounds), 1), 0
        self.progress.layout.visibility = "visible"
        done = 0
        try:
            for _ in range(int(rounds)):
                if self._stop.is_set():
                    self._say(f"stopped after {done} round(s)")
                    break
                self.step()
                done += 1
                self.progress.value = done
        finally:
            self.progress.layout.visibility = "hidden"
        return done

    def run_in_background(self, rounds: int) -> threading.Thread:
        """:meth:`run` in a thread, so the notebook (and the Stop button) stay responsive."""
        return self._in_background(lambda: self.run(rounds))

    def _in_background(self, action: Any) -> threading.Thread:
        """Run ``action`` in a thread, one at a time, with the buttons that must wait disabled."""
        if self.running:
            self._say("already running: press Stop first", error=True)
            assert self._thread is not None
            return self._thread

        def work() -> None:
            try:
                self._guard(action)
            finally:
                self._busy(False)

        self._busy(True)
        self._thread = threading.Thread(target=work, name="activesci-dashboard", daemon=True)
        self._thread.start()
        return self._thread

    def _busy(self, busy: bool) -> None:
        """Disable what must wait for the running rounds (Stop stays enabled)."""
        for button in (self.step_button, self.run_button, self.reset_button, self.manual_button):
            button.disabled = busy

    @property
    def running(self) -> bool:
        """Whether rounds (or a reset) are running in the background."""
        return self._thread is not None and self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for what runs in the background (a button's work); True once it is done."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    def stop(self) -> None:
        """Stop a running :meth:`run` after the current round."""
        self._stop.set()

    def reset(self) -> Any:
        """Start over with the picked strategy, estimator and luminosity; return the new learner.

        The experiment starts again with the same truth and seed; an estimator of the same
        method as the current one is reused rather than trained again.
        """
        from activesci import tasks
        from activesci.experiments import SimulatedExperiment
        from activesci.learner import ActiveLearner

        old = self.learner
        options = dict(old.task.options)
        if "luminosity" in options:
            options["luminosity"] = float(self.luminosity_slider.value)
        task = old.task  # a task built by hand cannot be rebuilt: it is kept as it is
        if task.factory is not None and options != task.options:
            task = tasks.load(task.factory, options, allow_plugins=True)  # the user's own task
        experiment = old.experiment
        if isinstance(experiment, SimulatedExperiment):
            experiment = task.experiment(truth=experiment.truth, seed=experiment.seed)
        elif self._manual:
            experiment = ManualExperiment(task.designs, experiment.n_features)
        method = self.estimator_picker.value
        same = method in METHODS and method == old.estimator_method  # a trained one: reuse it
        learner = ActiveLearner(
            task,
            experiment=experiment,
            estimator=old.estimator if same else method,
            strategy=self.strategy_picker.value,
            seed=old.seed,
            refine_every=old.refine_every if method != "exact" else None,
            training_samples=old.training_samples,
            progress=self._show_training,
        )
        with self._lock:
            self.learner = learner
        self._attach_workflow()
        for attr, what in _PANELS.items():
            self._replace(attr, _placeholder(what))
        self._say(f"reset: {self.strategy_picker.value} strategy, {method} estimator")
        self.refresh()
        return learner

    def submit_manual(self) -> Any:
        """Read the form, submit the result at the asked design and run the round.

        A malformed entry shows a message in the widget and changes nothing.
        """
        if not self._manual:
            self._say("this run's experiment is not a ManualExperiment", error=True)
            return None
        rows = [
            line for line in self.manual_x.value.replace(";", "\n").splitlines() if line.strip()
        ]
        try:
            x = np.array([[float(v) for v in line.replace(",", " ").split()] for line in rows])
        except ValueError as exc:
            self._say(f"could not read the events: {exc}", error=True)
            return None
        if not rows:
            self._say("type at least one event", error=True)
            return None
        design = self.learner.ask()
        self.learner.experiment.submit(design, x, luminosity=self.manual_luminosity.value or None)
        self.manual_x.value = ""
        return self.step()


#: The panels and what each will show.
_PANELS = {
    "posterior_plot": "the posterior",
    "eig_plot": "the expected information gain",
    "design_plot": "the designs chosen",
    "afb_plot": "the data against theory",
}


def _placeholder(what: str, after: str = " appears here after the first round") -> Any:
    """A light stand-in for a panel with nothing (or nothing it can draw) to show."""
    import ipywidgets as w

    return w.HTML(
        f"<div style='color:#999;padding:2em;text-align:center'>{html.escape(what + after)}</div>",
        layout={"min_height": "120px"},
    )


def _check_banner(summary: dict[str, Any]) -> str:
    """The self-check's verdict on a round as HTML: a red banner when it warns, else a line."""
    check = summary.get("check")
    trainings = summary.get("trainings") or []
    retrained = "; ".join(
        str(t.get("reason", ""))
        + (
            ": the new networks checked worse, the earlier ones kept"
            if t.get("kept") is False
            else ""
        )
        for t in trainings
    )
    retrained = f" · retrained ({html.escape(retrained)})" if trainings else ""
    if not check:
        return ""
    if check.get("ok"):
        shift = max(abs(v) for v in check.get("calibration_shift") or [0.0])
        what = (
            "the learned score's bias would move"
            if check.get("kind") == "score"
            else ("calibration moved")
        )
        return (
            f"<span style='color:#2a7'>✔ self-check ok</span>"
            f"<span style='color:#555'> · {what} the posterior by {shift:.2f} σ"
            f"{retrained}</span>"
        )
    items = "".join(f"<li>{html.escape(text)}</li>" for text in check.get("warnings") or [])
    return (
        "<div style='background:#fde8e8;border-left:4px solid #c33;padding:4px 8px'>"
        "<b style='color:#c33'>⚠ The learned posterior of this round may be wrong.</b>"
        f"<ul style='margin:2px 0'>{items}</ul>"
        f"<span style='color:#555'>{retrained.removeprefix(' · ')}</span></div>"
    )
