"""``python -m activesci.cli``: the ``activesci`` command."""

import sys

from activesci.cli import main

sys.exit(main())
