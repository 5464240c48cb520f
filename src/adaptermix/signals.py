"""Old import path, kept for notebooks and scripts: moved to :mod:`adaptermix.core.signals`.

``adaptermix.signals`` *is* that module (same object: monkeypatching, ``isinstance`` and registries behave as
before). Nothing inside the package imports this path (tests/test_shims.py).
"""

import sys

from adaptermix.core import signals as _home
from adaptermix.core.signals import *  # noqa: F403  (the names, for static type checkers)

sys.modules[__name__] = _home
