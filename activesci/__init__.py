"""activesci: active sciencing in a notebook.

Design the next experiment, run it, infer what it tells you, repeat. See ``README.md``.

>>> import activesci as asci
>>> task = asci.tasks.weinberg()
>>> sorted(task.simulator.capabilities)
['expected_count', 'joint_log_prob', 'joint_score', 'log_likelihood']
"""

from importlib.metadata import PackageNotFoundError, version

from activesci import errors, experiments, simulators, spaces, tasks
from activesci._lazy import lazy_attributes
from activesci.errors import ActivesciError, ValidationError
from activesci.experiments import ManualExperiment, RecordedExperiment, SimulatedExperiment
from activesci.spaces import Categorical, Integer, Normal, Real, Space
from activesci.typing import Events, Observation

try:
    __version__ = version("activesci")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

#: Submodules imported on first use: they pull in heavy libraries (torch, plotly), and the
#: simulator alone (``activesci simulate``, the container entrypoint) needs only numpy + scipy.
_LAZY = (
    "demo", "plots", "report", "learner", "design", "inference", "tracking", "store", "widgets",
    "workflow", "bench", "excursion",
)  # fmt: skip
_LAZY_NAMES = {"ActiveLearner": "learner", "Dashboard": "widgets"}


__getattr__ = lazy_attributes(__name__, _LAZY_NAMES, _LAZY)


__all__ = [
    "ActiveLearner",
    "ActivesciError",
    "Categorical",
    "Dashboard",
    "Events",
    "Integer",
    "ManualExperiment",
    "Normal",
    "Observation",
    "Real",
    "RecordedExperiment",
    "SimulatedExperiment",
    "Space",
    "ValidationError",
    "__version__",
    "errors",
    "experiments",
    "simulators",
    "spaces",
    "tasks",
]
