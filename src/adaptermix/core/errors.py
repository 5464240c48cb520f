"""User-facing errors.

Every problem a user can cause (bad config, missing file, incompatible adapters ...) is raised as an
:class:`AdapterMixError`. The CLI turns it into one line on stderr and exit status 2; library users
can catch it. Bugs stay ordinary exceptions with tracebacks.
"""

from __future__ import annotations


class AdapterMixError(Exception):
    """A problem with the user's input, reported as one line and exit status 2 by the CLI."""

    exit_code: int = 2


class ConfigError(AdapterMixError):
    """Invalid configuration (YAML, unknown keys, wrong types, bad overrides)."""


class DataError(AdapterMixError):
    """A dataset that cannot be used (missing split, empty split, bad rows, unknown labels)."""


class ArtefactError(AdapterMixError):
    """An adapter artefact that cannot be loaded (missing, corrupted, incompatible)."""


class IncompatibleAdaptersError(ArtefactError):
    """Adapters that cannot be mixed or loaded together (different base model, method or shapes)."""


class ResourceError(AdapterMixError):
    """A missing offline resource (model, word vectors, WordNet ...); the message says how to install it."""
