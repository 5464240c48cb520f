"""Old import path, kept for notebooks and scripts: moved to :mod:`adaptermix.core.device`.

``adaptermix.device`` *is* that module (same object: monkeypatching, ``isinstance`` and registries behave as
before). Nothing inside the package imports this path (tests/test_shims.py).
"""

import sys

from adaptermix.core import device as _home
from adaptermix.core.device import *  # noqa: F403  (the names, for static type checkers)

sys.modules[__name__] = _home
