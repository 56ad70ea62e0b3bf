"""Workflows: campaigns as adage DAGs, executors, containerised steps and REANA export.

* :class:`Campaign` (``dag.py``): plan -> simulate chunks -> merge -> train, grown by adage rules;
* executors (``executors.py``): ``inline``, ``processes`` and ``dask`` (local or a real cluster);
* :class:`CommandStep` and :class:`CommandSimulator` (``steps.py``): commands on the host or in
  podman/docker containers, with checked outputs, timeouts and retries;
* :class:`WorkflowExperiment` (``experiment.py``): each round's experiment as a workflow step;
* ``containers.py``: container command lines, the locally built simulator image, and the checks
  of a container configuration read from a run store;
* ``reana.py``: ``activesci export-reana``, a yadage workflow and ``reana.yaml``.

The names above are imported on first use, so importing the package costs no adage. Files
(atomic writes, checksums) are :mod:`activesci.io`'s.
"""

from activesci._lazy import lazy_attributes

_WHERE = {
    "Campaign": "dag",
    "CampaignResult": "dag",
    "CommandSimulator": "steps",
    "CommandStep": "steps",
    "DagTracker": "dag",
    "DaskExecutor": "executors",
    "InlineExecutor": "executors",
    "ProcessExecutor": "executors",
    "WorkflowExperiment": "experiment",
}


__getattr__ = lazy_attributes(__name__, _WHERE)

__all__ = sorted(_WHERE)
