"""The package version, in a module of its own: artefacts and stores stamp it without importing the
package's ``__init__`` (which reaches every layer through its lazy public API)."""

__version__ = "0.1.0"
