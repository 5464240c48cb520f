"""The lowest layer (docs/architecture.md, "Layers"): registry, one-line errors, atomic IO, config base
models and their hash, content hashing, time stamps. Nothing here imports a higher layer or torch
model code."""
