"""Hypothesis profiles of the property tests; ``HYPOTHESIS_PROFILE`` picks one.

* ``ci`` (the default, what ``make test`` runs): 200 examples per property, no deadline;
* ``long``: 5000 examples per property, for a benchmark run
  (``HYPOTHESIS_PROFILE=long pytest tests``).
"""

import os

from hypothesis import HealthCheck, settings

_SLOW_OK = [HealthCheck.too_slow, HealthCheck.data_too_large]
settings.register_profile("ci", max_examples=200, deadline=None, suppress_health_check=_SLOW_OK)
settings.register_profile("long", max_examples=5000, deadline=None, suppress_health_check=_SLOW_OK)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
