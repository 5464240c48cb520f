"""Test fixtures shipped with the package: tiny random-init encoders, seeded toy adapters on the toy data
pack, and the fault-injection harness of the reliability tests and ``bench/soak.py``.

Nothing here downloads anything: the encoders are built in-process from a small word-level vocabulary
(:mod:`adaptermix.testing.tiny`), the adapters are random (seeded) artefacts
(:mod:`adaptermix.testing.toy`). ``tests/tiny.py``, ``tests/helpers.py`` and
``tests/reliability/harness.py`` re-export these names, so the tests read as before; scripts such as
``bench/soak.py`` import them from here instead of putting ``tests/`` on ``sys.path``.

This package sits in the top layer (docs/architecture.md): it may import anything, nothing in the
package imports it. Its submodules are imported explicitly (this ``__init__`` imports none of them, so
``import adaptermix.testing`` stays cheap).
"""
