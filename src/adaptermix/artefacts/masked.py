"""Masked merge artefacts: merge once, store a small per-domain part (EMR-Merging, TALL masks).

A masked merge of a pool keeps one *unified* vector for all domains and, per domain, a 1-bit mask and one
scalar (:mod:`adaptermix.merging.masked_rules`); with the domain's own head that rebuilds the domain's
adapter: ``weights = base + s_d * (m_d ⊙ unified)``. The artefact is one folder:

- ``adapter.safetensors``: ``unified.<tensor>`` (float32, the adapter layout), ``base.<tensor>`` (only in
  task-vector space: the shared initialisation), and per domain i (in the order of ``adapter.json``)
  ``domain.<i>.mask`` (uint8, the flat mask in layout order packed with ``np.packbits``, big-endian bit
  order, zero padding), ``domain.<i>.scale`` (float32 scalar) and ``domain.<i>.head.*`` (its head).
- ``adapter.json``: ``"artefact": "masked_merge"``, the rule (``kind``), space and parameters, the layout,
  each domain's name, scalar and full adapter metadata (task, head, method, training data), and the
  storage cost: shared bytes, bytes and bits per parameter per domain (mask + scalar), head bytes.

``for_domain`` turns it into an ordinary in-memory :class:`~adaptermix.artefacts.artefact.Adapter` for one domain;
``adaptermix eval DIR --domain D`` evaluates that view. ``load_adapter`` refuses the folder in one line
that points to ``--domain`` (it is not one adapter).
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file
from torch import Tensor

from adaptermix.artefacts.artefact import (
    META,
    WEIGHTS,
    Adapter,
    AdapterMeta,
    load_weights,
    meta_from_json,
    versions,
)
from adaptermix.artefacts.pool import AdapterPool
from adaptermix.core.errors import ArtefactError, ConfigError
from adaptermix.core.io import atomic_dir
from adaptermix.core.timestamps import utc_stamp
from adaptermix.deltas import AdapterDelta, ParamLayout
from adaptermix.merging import MERGE_RULES
from adaptermix.merging.masked_rules import masked_view, unify
from adaptermix.pruning.base import resolve_params

ARTEFACT = "masked_merge"
FORMAT_VERSION = 1
MASKED_RULES = ("emr", "tall_mask")
SPACES = ("raw", "tv")


@dataclass
class MaskedArtefact:
    """The unified vector, each domain's mask, scalar, head and metadata, and how they were made."""

    kind: str  # the rule: "emr" | "tall_mask"
    space: str  # "raw" (base 0) | "tv" (base = the shared init)
    params: dict[str, Any]
    layout: ParamLayout
    domains: tuple[str, ...]
    body: Tensor  # [P] float32, the unified vector
    base: Tensor | None  # [P] float32 in space "tv", else None
    masks: dict[str, Tensor]  # domain -> [P] bool
    scales: dict[str, Tensor]  # domain -> float32 scalar
    heads: dict[str, dict[str, Tensor]]  # domain -> its head tensors (``head.*``)
    metas: dict[str, AdapterMeta]  # domain -> its adapter's metadata
    provenance: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    def storage(self) -> dict[str, Any]:
        """What the artefact costs: the shared part once, and per domain a packed mask and one scalar."""
        p = self.layout.size
        mask_bytes, scalar_bytes = math.ceil(p / 8), 4
        per_domain = mask_bytes + scalar_bytes
        head_bytes = {d: sum(t.numel() * t.element_size() for t in self.heads[d].values()) for d in self.domains}
        shared = {"unified": 4 * p, "base": 4 * p if self.base is not None else 0}
        return {
            "n_params": p,
            "shared_bytes": sum(shared.values()),
            "shared": shared,
            "per_domain_bytes": per_domain,
            "per_domain_bits_per_param": per_domain * 8 / p,
            "mask_bytes": mask_bytes,
            "scalar_bytes": scalar_bytes,
            "head_bytes": head_bytes,
            "full_adapter_bytes": 4 * p,
            "total_bytes": sum(shared.values()) + len(self.domains) * per_domain + sum(head_bytes.values()),
            "note": "per domain: a 1-bit mask (packed, padded to whole bytes) and one float32 scalar, "
                    "besides the domain's head, which every in-domain mixture keeps anyway",
        }


def _check_space(space: str) -> str:
    if space not in SPACES:
        raise ConfigError(f"masked merges run in space 'raw' or 'tv', not {space!r}")
    return space


def masked_merge(pool: AdapterPool, rule: str = "emr", space: str = "raw", **params: Any) -> MaskedArtefact:
    """Merge every adapter of ``pool`` once with the masked rule ``rule`` (``emr`` or ``tall_mask``).

    ``space`` "raw" merges the parameters as stored (as sweeps do); "tv" merges task vectors (weights minus
    the pool's shared initialisation, :func:`adaptermix.artefacts.task_vectors.task_vectors`) and keeps that init as
    the base. Domains are taken in canonical (name) order, as ``merge_flat`` does, so each domain's view
    equals ``merge_flat(rule, ..., target=domain)`` over the whole pool exactly.
    """
    if rule not in MASKED_RULES:
        raise ConfigError(f"{rule!r} is not a masked merge rule; valid: {', '.join(MASKED_RULES)}")
    _check_space(space)
    params = resolve_params("merge rule", rule, MERGE_RULES.get(rule).params, params)
    base = None
    rows = pool.flat
    if space == "tv":
        from adaptermix.artefacts.task_vectors import task_vectors

        rows, base = task_vectors(pool)
    order = sorted(range(len(pool.names)), key=pool.names.__getitem__)
    domains = tuple(pool.names[i] for i in order)
    x = rows.index_select(0, torch.tensor(order, dtype=torch.long))
    u = unify(rule, x, domains, pool.stacked.layout, **params)
    provenance = {
        "kind": ARTEFACT,
        "rule": rule,
        "space": space,
        "params": params,
        "adapters": [{"name": n, "path": str(a.path) if a.path else None}
                     for n, a in zip(pool.names, pool.adapters, strict=True)],
    }
    return MaskedArtefact(
        kind=rule, space=space, params=params, layout=pool.stacked.layout, domains=domains, body=u.body,
        base=base, masks={d: u.masks[j] for j, d in enumerate(domains)},
        scales={d: u.scales[j] for j, d in enumerate(domains)},
        heads={d: pool.adapters[pool.index(d)].head for d in domains},
        metas={d: copy.deepcopy(pool.adapters[pool.index(d)].meta) for d in domains},
        provenance=provenance,
    )


def for_domain(artefact: MaskedArtefact, domain: str) -> Adapter:
    """Domain ``domain``'s adapter: ``base + s * (m ⊙ unified)`` with its own head, as an in-memory artefact."""
    if domain not in artefact.domains:
        where = f" {artefact.path}" if artefact.path else ""
        raise ConfigError(f"domain {domain!r} is not in the masked merge artefact{where} "
                          f"(domains: {', '.join(artefact.domains)})")
    vec = masked_view(artefact.body, artefact.masks[domain], artefact.scales[domain])
    if artefact.base is not None:
        vec = vec + artefact.base
    body = AdapterDelta.unflatten(vec, artefact.layout)
    provenance = {
        "kind": "masked_view",
        "rule": artefact.kind,
        "space": artefact.space,
        "params": artefact.params,
        "domain": domain,
        "source": str(artefact.path) if artefact.path else None,
    }
    meta = replace(copy.deepcopy(artefact.metas[domain]), metrics={}, provenance=provenance)
    return Adapter(meta, {**body.to_state_dict(), **artefact.heads[domain]})


# -- storage ----------------------------------------------------------------------------------------
def pack_mask(mask: Tensor) -> Tensor:
    """A bool [P] mask as uint8 [ceil(P / 8)] (``np.packbits``: big-endian bits, zero padding)."""
    return torch.from_numpy(np.packbits(mask.numpy().astype(np.uint8)))


def unpack_mask(packed: Tensor, size: int) -> Tensor:
    """The inverse of :func:`pack_mask` for a mask of ``size`` entries (exact, whatever size % 8)."""
    return torch.from_numpy(np.unpackbits(packed.numpy(), count=size).astype(bool))


def _tensors(artefact: MaskedArtefact) -> dict[str, Tensor]:
    out = {f"unified.{n}": t for n, t in AdapterDelta.unflatten(artefact.body, artefact.layout).tensors.items()}
    if artefact.base is not None:
        out.update({f"base.{n}": t for n, t in AdapterDelta.unflatten(artefact.base, artefact.layout).tensors.items()})
    for i, d in enumerate(artefact.domains):
        out[f"domain.{i}.mask"] = pack_mask(artefact.masks[d])
        out[f"domain.{i}.scale"] = artefact.scales[d].reshape(()).to(torch.float32)
        out.update({f"domain.{i}.{k}": t for k, t in artefact.heads[d].items()})
    return out


def save_masked(artefact: MaskedArtefact, path: str | Path) -> Path:
    """Write the artefact folder atomically (see the module docstring for its contents)."""
    out = Path(path)
    meta = {
        "artefact": ARTEFACT,
        "format_version": FORMAT_VERSION,
        "kind": artefact.kind,
        "space": artefact.space,
        "params": artefact.params,
        "layout": {"names": list(artefact.layout.names), "shapes": [list(s) for s in artefact.layout.shapes]},
        "domains": [
            {"name": d, "scale": float(artefact.scales[d]), "mask_ones": int(artefact.masks[d].sum()),
             "meta": asdict(artefact.metas[d])}
            for d in artefact.domains
        ],
        "storage": artefact.storage(),
        "provenance": artefact.provenance,
        "versions": versions(),
        "created_at": utc_stamp(),
    }
    with atomic_dir(out) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in _tensors(artefact).items()}, str(tmp / WEIGHTS))
        (tmp / META).write_text(json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    return out


def read_masked_json(path: str | Path) -> dict[str, Any] | None:
    """The parsed ``adapter.json`` of ``path`` when it is a masked merge artefact, else None."""
    f = Path(path) / META
    if not f.is_file():
        return None
    try:
        raw = json.loads(f.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return raw if isinstance(raw, dict) and raw.get("artefact") == ARTEFACT else None


def is_masked(path: str | Path) -> bool:
    """Whether ``path`` is a masked merge artefact folder (rather than an ordinary adapter)."""
    return read_masked_json(path) is not None


def _flat(tensors: dict[str, Tensor], prefix: str, layout: ParamLayout, p: Path) -> Tensor:
    try:
        parts = {n: tensors[f"{prefix}.{n}"] for n in layout.names}
    except KeyError as exc:
        raise ArtefactError(f"masked artefact {p}: {WEIGHTS} lacks tensor {exc.args[0]!r}") from None
    delta = AdapterDelta(parts)
    if delta.layout != layout:
        raise ArtefactError(f"masked artefact {p}: the {prefix} tensors do not match the recorded layout")
    return delta.flatten()


def load_masked(path: str | Path) -> MaskedArtefact:
    """Read a masked merge artefact folder; anything missing, corrupted or inconsistent is one line."""
    p = Path(path)
    raw = read_masked_json(p)
    if raw is None:
        raise ArtefactError(f"{p} is not a masked merge artefact (no {META} with \"artefact\": \"{ARTEFACT}\")")
    version = raw.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
        raise ArtefactError(f"masked artefact {p}: format_version {version!r}; this adaptermix reads "
                            f"format {FORMAT_VERSION}")
    try:
        layout = ParamLayout(tuple(raw["layout"]["names"]), tuple(tuple(s) for s in raw["layout"]["shapes"]))
        domains = tuple(str(d["name"]) for d in raw["domains"])
        kind, space, params = str(raw["kind"]), _check_space(str(raw["space"])), dict(raw["params"])
        metas = {str(d["name"]): meta_from_json(d["meta"], p) for d in raw["domains"]}
    except (KeyError, TypeError, ValueError, ConfigError) as exc:
        raise ArtefactError(f"masked artefact {p}: {META} is corrupted ({type(exc).__name__}: {exc})") from None
    if kind not in MASKED_RULES:
        raise ArtefactError(f"masked artefact {p}: unknown kind {kind!r}")
    tensors = load_weights(p, "masked artefact")
    body = _flat(tensors, "unified", layout, p)
    base = _flat(tensors, "base", layout, p) if space == "tv" else None
    size, masks, scales, heads = layout.size, {}, {}, {}
    for i, d in enumerate(domains):
        packed, scale = tensors.get(f"domain.{i}.mask"), tensors.get(f"domain.{i}.scale")
        if packed is None or scale is None:
            raise ArtefactError(f"masked artefact {p}: no mask or scale for domain {d!r}")
        if packed.dtype != torch.uint8 or packed.shape != (math.ceil(size / 8),):
            raise ArtefactError(f"masked artefact {p}: the mask of domain {d!r} is not {math.ceil(size / 8)} "
                                "packed bytes")
        masks[d] = unpack_mask(packed, size)
        scales[d] = scale.reshape(()).to(torch.float32)
        prefix = f"domain.{i}."
        heads[d] = {k[len(prefix):]: t for k, t in tensors.items() if k.startswith(prefix + "head.")}
    return MaskedArtefact(kind=kind, space=space, params=params, layout=layout, domains=domains, body=body,
                          base=base, masks=masks, scales=scales, heads=heads, metas=metas,
                          provenance=dict(raw.get("provenance") or {}), path=p)
