"""Reliability suite: kill -9 and resume, concurrent readers, full disks, bad inputs, no unpickling.

A package (not a bare folder) so that its ``conftest.py`` is imported as ``reliability.conftest`` and does
not replace ``tests/conftest.py`` in ``sys.modules`` (other test modules do ``from conftest import REPO``).
"""
