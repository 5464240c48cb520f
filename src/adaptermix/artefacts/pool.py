"""A pool of adapter artefacts loaded together: checked for compatibility and stacked for fast maths.

Everything that works on several adapters at once (FSD, mixing, pruning, sweeps) starts here, so the
compatibility rules live in one place: same base model fingerprint, same method and method shape, same
tensor names and shapes; every adapter finite.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import torch

from adaptermix.artefacts.artefact import Adapter, AdapterMeta, load_adapter
from adaptermix.core.errors import ArtefactError, ConfigError, IncompatibleAdaptersError
from adaptermix.deltas import AdapterDelta, StackedDeltas, stack, to_dw
from adaptermix.diagnostics import FSDMatrix, fsd_kind_rows, fsd_matrix, noise_floor, top_fraction_fsd
from adaptermix.merging import check_mixable
from adaptermix.merging.compat import require_same
from adaptermix.methods import METHODS, MethodConfig


def method_signature(meta: AdapterMeta) -> dict[str, Any]:
    """The part of the method config that two adapters must share to be mixed: the method's name and the
    fields its config declares as shaping its tensors (:meth:`MethodConfig.shape_signature`)."""
    # Validated first, so that a field added later with a default (an artefact written before the field
    # existed) compares equal to that default rather than to None.
    return meta.method_config.shape_signature()


def require_same_method(names: Sequence[str], signatures: Sequence[dict[str, Any]]) -> None:
    """One line naming the first adapter whose method differs, and only the fields that differ."""
    first = signatures[0]
    for name, sig in zip(names[1:], signatures[1:], strict=True):
        if sig["name"] != first["name"]:
            raise IncompatibleAdaptersError(
                f"adapters {names[0]!r} and {name!r} have different methods: {first['name']!r} vs {sig['name']!r}"
            )
        diff = [f"{k} {first[k]!r} vs {sig[k]!r}" for k in first if k != "name" and first[k] != sig.get(k)]
        if diff:
            raise IncompatibleAdaptersError(
                f"adapters {names[0]!r} and {name!r} have different {first['name']} settings: {', '.join(diff)}"
            )


@dataclass
class AdapterPool:
    """N compatible adapters: their artefacts and their bodies stacked as one [N, P] matrix."""

    names: list[str]
    adapters: list[Adapter]
    stacked: StackedDeltas
    _fsd: dict[str, FSDMatrix] = field(default_factory=dict)
    _updates: dict[str, StackedDeltas] = field(default_factory=dict)

    @property
    def flat(self) -> torch.Tensor:
        return self.stacked.matrix

    @property
    def method(self) -> dict[str, Any]:
        return self.adapters[0].meta.method

    @property
    def method_config(self) -> MethodConfig:
        """The pool's (shared) method config, typed."""
        return self.adapters[0].meta.method_config

    @property
    def is_lora(self) -> bool:
        return self.method.get("name") == "lora"

    @property
    def scale(self) -> float:
        """The factor the method multiplies its update by (LoRA: alpha / r; 1.0 elsewhere)."""
        return self.method_config.scale

    @property
    def inits(self) -> dict[str, str]:
        """Adapter name -> the ``method.init`` it was trained from (``mam`` for artefacts older than the field)."""
        return {n: str(a.meta.method_config.init) for n, a in zip(self.names, self.adapters, strict=True)}

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise ConfigError(f"{name!r} is not in the adapter pool ({', '.join(self.names)})") from None

    def stacked_in(self, space: str) -> StackedDeltas:
        """The pool in ``space``: "raw" parameters, or "dw" effective updates (LoRA only)."""
        if space == "raw":
            return self.stacked
        if space != "dw":
            raise ConfigError(f"unknown space {space!r}; valid: raw, dw")
        if not self.is_lora:
            raise ConfigError("space 'dw' applies to LoRA adapters only")
        return self._dw

    @cached_property
    def _dw(self) -> StackedDeltas:
        return stack([to_dw(self.stacked.delta(i), self.scale) for i in range(len(self.names))], self.names)

    def updates(self, space: str = "raw") -> StackedDeltas:
        """What training changed: each adapter minus its initial body rebuilt from ``method.init`` and
        ``init_seed`` (the task vector of the adapter). Meaningful for adapters trained by adaptermix (and
        mixtures of adapters sharing one init), not for imported ones whose init seed is unknown."""
        key = f"updates:{space}"
        if key not in self._updates:
            inits = [initial_delta(a) for a in self.adapters]
            if space == "dw":
                inits = [to_dw(d, self.scale) for d in inits]
            start = stack(inits, self.names)
            if start.layout != self.stacked_in(space).layout:
                raise IncompatibleAdaptersError("the rebuilt initial adapters do not match the pool's tensors")
            cur = self.stacked_in(space)
            self._updates[key] = StackedDeltas(cur.matrix - start.matrix, cur.layout, cur.names, cur.space)
        return self._updates[key]

    def fsd(self, space: str = "raw") -> FSDMatrix:
        """The pool's FSD matrix (Alg. 3 for every pair), computed once per space."""
        if space not in self._fsd:
            self._fsd[space] = fsd_matrix(self.stacked_in(space))
        return self._fsd[space]


def initial_delta(adapter: Adapter) -> AdapterDelta:
    """The body ``adapter`` started from: rebuilt from its method config (init scheme and seed)."""
    cfg, base = adapter.meta.method_config, adapter.meta.base_model
    if "hidden_size" not in base or "num_layers" not in base:
        raise ArtefactError(f"adapter {adapter.path or adapter.name}: adapter.json lacks the base model's shape")
    ffn = base.get("intermediate_size")
    body = METHODS.get(cfg.name).build_body(cfg, int(base["hidden_size"]), int(base["num_layers"]),
                                            int(ffn) if ffn is not None else None)
    return AdapterDelta({k: v.detach() for k, v in body.state_dict().items()})


def load_pool(dirs: Sequence[str | Path] | Mapping[str, str | Path]) -> AdapterPool:
    """Load adapters (a list named by directory, or a name -> directory mapping) and check they mix."""
    items = list(dirs.items()) if isinstance(dirs, Mapping) else [(Path(d).name, d) for d in dirs]
    if not items:
        raise ConfigError("no adapters given")
    names = [n for n, _ in items]
    if len(set(names)) != len(names):
        raise ConfigError("two adapters have the same name; give them distinct directory names")
    adapters = [load_adapter(p) for _, p in items]
    signatures = [method_signature(a.meta) for a in adapters]
    metas = [
        {"base_fingerprint": a.meta.base_model.get("fingerprint"), "method": sig}
        for a, sig in zip(adapters, signatures, strict=True)
    ]
    fingerprints = [m["base_fingerprint"] for m in metas]
    if any(f is not None for f in fingerprints):
        require_same("base_fingerprint", fingerprints, names)
    require_same_method(names, signatures)
    bodies = [AdapterDelta.from_state_dict(a.body) for a in adapters]
    try:
        check_mixable(names, bodies, metas)
    except IncompatibleAdaptersError:
        raise
    pool = AdapterPool(names, adapters, stack(bodies, names))
    warn_mixed_inits(pool.inits)
    return pool


def warn_mixed_inits(inits: Mapping[str, str]) -> None:
    """Warn when adapters start from different init schemes: they still mix (same shapes), but their sign
    statistics (FSD, sign changes) then compare different starting points, not what training changed."""
    kinds = sorted(set(inits.values()))
    if len(kinds) > 1:
        which = ", ".join(f"{n}={i}" for n, i in inits.items())
        warnings.warn(
            f"adapters were initialised differently ({which}): they can be mixed, but FSD between them "
            "mostly measures the different inits", stacklevel=3,
        )


def fsd_summary(
    pool: AdapterPool, space: str = "raw", replicate_of: Mapping[str, str] | None = None,
    top_fraction: float | None = None, from_init: bool = False,
) -> dict[str, Any]:
    """Fig. 4 data you can read (JSON-ready): the FSD matrix of the pool's domain adapters, every pair's FSD
    by tensor kind, and, when the pool holds replicates (``replicate_of``: replicate -> domain adapter), each
    domain's noise floor and the cross-domain excess over it; optionally the FSD of the top-magnitude weights.

    ``fsd``/``names`` cover the domain adapters only; ``by_kind`` rows cover every pair, replicates included.
    ``from_init`` compares what training changed (:meth:`AdapterPool.updates`) instead of the weights.
    """
    replicate_of = dict(replicate_of or {})
    stacked = pool.updates(space) if from_init else pool.stacked_in(space)
    mat = pool.fsd(space) if not from_init else fsd_matrix(stacked)
    floor = noise_floor(mat.values, pool.names, replicate_of)
    lora_scale = pool.scale if pool.is_lora and space == "raw" else None
    rows = fsd_kind_rows(stacked, None if from_init else lora_scale)
    out: dict[str, Any] = {
        "space": space,
        "of": "update from init" if from_init else "weights",
        "n_params": mat.n_params,
        "names": list(floor.domains),
        "fsd": floor.fsd.tolist(),
        "row_means": floor.fsd.mean(dim=1).tolist(),
        "inits": pool.inits,
        "by_kind": rows,
        "noise_floor": {**floor.as_dict(), "replicate_of": replicate_of, "pairs": floor.rows()}
        if replicate_of else None,
    }
    if top_fraction is not None:
        top = top_fraction_fsd(stacked.matrix, top_fraction)
        top_floor = noise_floor(top, pool.names, replicate_of)
        out["top_fraction"] = {"fraction": top_fraction, "fsd": top_floor.fsd.tolist(),
                               "noise_floor": top_floor.as_dict() if replicate_of else None}
    return out
