"""Old import path, kept for notebooks and scripts: moved to :mod:`adaptermix.artefacts.task_vectors`.

``adaptermix.task_vectors`` *is* that module (same object: monkeypatching, ``isinstance`` and registries behave as
before). Nothing inside the package imports this path (tests/test_shims.py).
"""

import sys

from adaptermix.artefacts import task_vectors as _home
from adaptermix.artefacts.task_vectors import *  # noqa: F403  (the names, for static type checkers)

sys.modules[__name__] = _home
