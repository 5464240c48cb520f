"""LoRA adapters saved by Hugging Face ``peft``: import (``adapter_config.json`` + ``adapter_model.safetensors``)
and export (an adaptermix LoRA artefact -> a directory ``peft.PeftModel.from_pretrained`` loads).

peft and adaptermix compute the same thing, ``W x + (alpha / r) B A x`` on the attention query and value
projections, and even name the factors alike (``lora_A`` [r, in], ``lora_B`` [out, r]), so both directions
are a renaming of tensors plus a config translation. peft itself is not needed for either direction.

peft keys look like ``base_model.model.encoder.layer.0.attention.self.query.lora_A.weight``; the prefix
depends on the model class peft wrapped (``base_model.model.bert.`` for a ``BertForSequenceClassification``),
so the importer matches ``{layers}.{i}.{query|value}`` from the :class:`EncoderSpec` after any prefix.
rsLoRA (``use_rslora``, scale ``alpha / sqrt(r)``) is imported exactly by rescaling alpha:
``alpha' = alpha * sqrt(r)`` gives ``alpha' / r = alpha / sqrt(r)``.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors.torch import save_file

from adaptermix.artefacts.artefact import Adapter
from adaptermix.backbone.loading import Encoder, canonical_model_id
from adaptermix.backbone.specs import ENCODER_SPECS, EncoderSpec
from adaptermix.core.errors import ArtefactError, ConfigError
from adaptermix.core.io import atomic_dir
from adaptermix.interop.base import (
    EXPORTERS,
    IMPORTERS,
    SIDECAR_HEAD,
    SIDECAR_META,
    Exporter,
    ImportedBody,
    Importer,
    read_json,
    read_safetensors,
    sidecar_files,
)
from adaptermix.methods import METHODS, LoRAConfig
from adaptermix.methods.config import DEFAULT_LORA_MODULES, LORA_MODULES

log = logging.getLogger(__name__)

CONFIG = "adapter_config.json"
WEIGHTS = "adapter_model.safetensors"
PICKLED = ("adapter_model.bin",)
# The prefix PeftModel adds around a bare encoder (AutoModel); see export_peft's ``prefix``.
DEFAULT_PREFIX = "base_model.model."

# Config values that change the computation and that adaptermix's LoRA cannot represent: key -> allowed values.
_MUST_BE: dict[str, tuple[Any, ...]] = {
    "bias": ("none", None),
    "lora_bias": (False, None),
    "use_dora": (False, None),
    "fan_in_fan_out": (False, None),
    "rank_pattern": ({}, None),
    "alpha_pattern": ({}, None),
    "layers_to_transform": (None,),
    "layer_replication": (None,),
    "target_parameters": (None, []),
    "trainable_token_indices": (None,),
    "use_bdlora": (None, False),
    "use_qalora": (False, None),
    "alora_invocation_tokens": (None,),
    "arrow_config": (None,),
}


T = TypeVar("T")

def leaf(path: str) -> str:
    """Last component of a dotted module path (what peft's ``target_modules`` list names)."""
    return path.rsplit(".", 1)[-1]


SITE_WORDS: dict[str, str] = {
    "query": "attention query", "key": "attention key", "value": "attention value",
    "attn": "attention output", "ffn_in": "feed-forward input", "ffn": "feed-forward output",
}


def describe_sites(sites: Sequence[str]) -> str:
    """``("query", "value")`` -> "attention query and attention value projections"."""
    words = [SITE_WORDS.get(s, s) for s in sites]
    listed = words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"
    return f"{listed} projection{'s' if len(words) > 1 else ''}"


def spec_sites(spec: EncoderSpec) -> dict[str, str]:
    """LoRA site -> its module path in a block of ``spec`` (the sites this architecture has)."""
    out: dict[str, str] = {}
    for site in LORA_MODULES:
        try:
            out[site] = spec.site_path(site)
        except ConfigError:
            continue
    return out


def target_sites(targets: Sequence[str], spec: EncoderSpec, src: Path) -> tuple[str, ...]:
    """The sites a peft ``target_modules`` list selects, matched as peft does (a module path equal to an entry
    or ending in ``.entry``), in :data:`LORA_MODULES` order. An entry matching no encoder-layer module (other
    than the pooler, see :func:`peft_to_body`) is an error."""
    paths = spec_sites(spec)
    chosen: set[str] = set()
    for t in targets:
        hit = {s for s, p in paths.items() if p == t or p.endswith("." + t)}
        if not hit and t not in ("pooler", "pooler.dense"):
            raise ArtefactError(
                f"{src}: target_modules entry {t!r} names no linear module of a {spec.model_type} layer that "
                f"adaptermix LoRA adapts ({', '.join(sorted({leaf(p) for p in paths.values()}))})"
            )
        chosen |= hit
    return tuple(s for s in LORA_MODULES if s in chosen)


def _check_config(cfg: dict[str, Any], spec: EncoderSpec, src: Path) -> tuple[str, ...] | None:
    """Refuse what adaptermix LoRA cannot represent; the sites ``target_modules`` names (None: a regex)."""
    if cfg.get("peft_type") != "LORA":
        raise ArtefactError(
            f"{src}: peft_type is {cfg.get('peft_type')!r}; only LORA adapters can be imported"
        )
    for key, allowed in _MUST_BE.items():
        if cfg.get(key) not in allowed:
            raise ArtefactError(
                f"{src}: peft option {key}={cfg.get(key)!r} is not supported by adaptermix LoRA "
                f"(supported: {allowed[0]!r})"
            )
    targets = cfg.get("target_modules")
    if isinstance(targets, list):
        return target_sites([str(t) for t in targets], spec, src)
    return None  # a regex (or "all-linear"): the tensors saved say which modules it matched


def _key_pattern(spec: EncoderSpec) -> re.Pattern[str]:
    """``<any prefix>.{layers}.{i}.{site path}.lora_{A|B}[.adapter name].weight`` for every LoRA site."""
    sites = "|".join(f"(?P<{s}>{re.escape(p)})" for s, p in spec_sites(spec).items())
    return re.compile(
        rf"(?:^|\.){re.escape(spec.layers)}\.(?P<layer>\d+)\.(?:{sites})\.lora_(?P<ab>[AB])"
        rf"(?:\.[^.]+)?\.weight$"
    )


def peft_to_body(
    state: dict[str, torch.Tensor], spec: EncoderSpec, num_layers: int, src: Path,
    sites: Sequence[str] | None = DEFAULT_LORA_MODULES,
) -> tuple[dict[str, torch.Tensor], tuple[str, ...]]:
    """Rename peft LoRA tensors to ``layers.{i}.{site}.lora_{A|B}``; every layer of every site must be present.

    ``sites``: the sites the config's ``target_modules`` names (None = whatever the tensors adapt). A LoRA on
    a module outside them, or outside the encoder layers, is an error, except the pooler's ``dense`` (peft's
    ``dense`` matches it too): it changes only the pooler output, which adaptermix's head does not read, so
    it is skipped with a warning. Non-LoRA tensors (``modules_to_save``, e.g. a classifier that does not fit
    adaptermix's head) are skipped with a warning. Returns the body and the sites it adapts.
    """
    pattern = _key_pattern(spec)
    paths = spec_sites(spec)
    body: dict[str, torch.Tensor] = {}
    found: set[str] = set()
    for key, tensor in state.items():
        m = pattern.search(key)
        if m is None:
            if ".lora_" in key and ".pooler." in f".{key}":
                log.warning("%s: skipping LoRA tensor %s (the pooler; adaptermix's head does not use it)", src, key)
                continue
            if ".lora_" in key:
                raise ArtefactError(
                    f"{src}: LoRA on {key!r}; adaptermix LoRA adapts only the "
                    f"{describe_sites(tuple(paths))} of {spec.model_type}'s layers"
                )
            log.warning("%s: skipping non-LoRA tensor %s (not part of an adaptermix LoRA body)", src, key)
            continue
        site = next(s for s in paths if m.group(s) is not None)
        if sites is not None and site not in sites:
            raise ArtefactError(
                f"{src}: LoRA on {key!r}, a module its target_modules does not name: it adapts only the "
                f"{describe_sites(sites)}"
            )
        found.add(site)
        body[f"layers.{m.group('layer')}.{site}.lora_{m.group('ab')}"] = tensor.float()
    adapted = tuple(s for s in LORA_MODULES if s in found) if sites is None else tuple(sites)
    if not adapted:
        raise ArtefactError(f"{src}: no LoRA tensor on a module of the encoder layers")
    expected = {f"layers.{i}.{s}.lora_{ab}" for i in range(num_layers) for s in adapted for ab in "AB"}
    missing = sorted(expected - set(body), key=lambda k: (len(k), k))
    if missing:
        if sites is not None and missing[0].split(".")[2] not in found:
            raise ArtefactError(
                f"{src}: target_modules names the {describe_sites((missing[0].split('.')[2],))} but the adapter "
                "has no LoRA tensor on it"
            )
        raise ArtefactError(
            f"{src}: no peft tensor for {missing[0]} (the encoder has {num_layers} layers; "
            f"the adapter must adapt the {describe_sites(adapted)} in every layer)"
        )
    extra = sorted(set(body) - expected)
    if extra:
        raise ArtefactError(f"{src}: {extra[0]} is beyond the encoder's {num_layers} layers")
    return body, adapted


def read_peft(src: Path, encoder: Encoder) -> ImportedBody:
    """Read a peft LoRA directory into an adaptermix LoRA body for ``encoder``."""
    cfg = read_json(src / CONFIG)
    sites = _check_config(cfg, encoder.spec, src)
    state = read_safetensors(src, WEIGHTS, PICKLED)
    body, sites = peft_to_body(state, encoder.spec, encoder.num_layers, src, sites)
    rank = int(cfg["r"])
    ranks = {t.shape[0] for k, t in body.items() if k.endswith("lora_A")}
    if ranks != {rank}:
        raise ArtefactError(f"{src}: lora_A ranks {sorted(ranks)} do not match r={rank} in {CONFIG}")
    alpha = float(cfg.get("lora_alpha", 8))
    rslora = bool(cfg.get("use_rslora", False))
    method = LoRAConfig(
        rank=rank,
        alpha=alpha * math.sqrt(rank) if rslora else alpha,
        dropout=float(cfg.get("lora_dropout") or 0.0),
        target_modules=sites,
    )
    provenance = {
        "peft_version": cfg.get("peft_version"),
        "base_model_name_or_path": _model_id(cfg.get("base_model_name_or_path")),
        "lora_alpha": alpha,
        "use_rslora": rslora,
    }
    return ImportedBody(method=method, tensors=body, provenance=provenance)


def _model_id(name: T) -> T | str:
    """A peft config's base model as a model id: a packaged copy's folder becomes the id it stands for."""
    return canonical_model_id(name) if isinstance(name, str) and name else name


def peft_base_model(src: Path) -> str | None:
    """The base model id recorded in a peft ``adapter_config.json`` (the default ``--model`` on import)."""
    name = read_json(src / CONFIG).get("base_model_name_or_path") or None
    return _model_id(name)


def _number(x: float) -> int | float:
    return int(x) if float(x).is_integer() else float(x)


def peft_config(adapter: Adapter, spec: EncoderSpec) -> dict[str, Any]:
    """The ``adapter_config.json`` peft needs to rebuild ``adapter``'s LoRA (other fields take peft defaults)."""
    m = adapter.meta.method_config
    if not isinstance(m, LoRAConfig):
        raise ArtefactError(f"adapter {adapter.path or adapter.name} is not a LoRA adapter")
    return {
        "peft_type": "LORA",
        "task_type": None,
        "base_model_name_or_path": adapter.meta.base_model.get("name"),
        "r": m.rank,
        "lora_alpha": _number(m.alpha),
        "lora_dropout": m.dropout,
        "target_modules": peft_target_modules(m.sites, spec),
        "bias": "none",
        "use_rslora": False,
        "use_dora": False,
        "fan_in_fan_out": False,
        "modules_to_save": None,
        "layers_to_transform": None,
        "layers_pattern": None,
        "rank_pattern": {},
        "alpha_pattern": {},
        "init_lora_weights": True,
        "inference_mode": True,
        "revision": None,
    }


def peft_target_modules(sites: Sequence[str], spec: EncoderSpec) -> list[str] | str:
    """peft's ``target_modules`` selecting exactly ``sites``: their leaf names where those are unambiguous
    (query/key/value: ``["query", "value"]`` as before), else a regex peft full-matches against module paths
    (BERT's attention output, feed-forward input and output projections are all called ``dense``)."""
    paths = spec_sites(spec)
    leaves = [leaf(paths[s]) for s in sites]
    if all(sum(leaf(p) == lf for p in paths.values()) == 1 for lf in leaves):
        return sorted(leaves)
    alternatives = "|".join(re.escape(paths[s]) for s in sites)
    return rf"(?:.*\.)?{re.escape(spec.layers)}\.\d+\.(?:{alternatives})"


def body_to_peft(
    body: dict[str, torch.Tensor], spec: EncoderSpec, prefix: str = DEFAULT_PREFIX
) -> dict[str, torch.Tensor]:
    """Rename ``layers.{i}.{site}.lora_{A|B}`` to peft's saved key names under ``prefix``."""
    pattern = re.compile(rf"layers\.(\d+)\.({'|'.join(LORA_MODULES)})\.(lora_[AB])")
    out: dict[str, torch.Tensor] = {}
    for key, tensor in body.items():
        m = pattern.fullmatch(key)
        if m is None:
            raise ArtefactError(
                f"tensor {key!r} is not a LoRA factor; only plain LoRA adapters can be exported"
            )
        layer, site, factor = m.groups()
        out[f"{prefix}{spec.layers}.{layer}.{spec.site_path(site)}.{factor}.weight"] = (
            tensor.detach().contiguous()
        )
    return out


def export_peft(adapter: Adapter, out: Path, prefix: str = DEFAULT_PREFIX) -> Path:
    """Write ``adapter`` (an adaptermix LoRA artefact) as a peft LoRA directory at ``out``.

    ``prefix`` is where the encoder sits in the model peft wraps: the default fits a bare encoder
    (``AutoModel``); use ``base_model.model.bert.`` for a ``BertForSequenceClassification``. The head is not
    part of peft's LoRA; it is written beside it (``adaptermix_head.safetensors`` + ``adaptermix_task.json``,
    which peft ignores) so that importing the directory back restores it.
    """
    method = METHODS.get(adapter.meta.method.get("name", ""))
    if method.family != "lora" or method.name != "lora":
        raise ArtefactError(
            f"adapter {adapter.path or adapter.name} uses method {method.name!r}; "
            "only LoRA adapters can be exported to peft"
        )
    spec = ENCODER_SPECS.get(str(adapter.meta.base_model.get("model_type")))
    tensors = body_to_peft(adapter.body, spec, prefix)
    head, side = sidecar_files(adapter)
    with atomic_dir(out) as tmp:
        save_file(tensors, str(tmp / WEIGHTS), metadata={"format": "pt"})
        (tmp / CONFIG).write_text(
            json.dumps(peft_config(adapter, spec), indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
        save_file({k: v.contiguous() for k, v in head.items()}, str(tmp / SIDECAR_HEAD))
        (tmp / SIDECAR_META).write_text(side, encoding="utf-8")
    return out


IMPORTERS.register(
    "peft",
    Importer(
        "peft", "LoRA adapters saved by Hugging Face peft (save_pretrained)", read_peft, peft_base_model
    ),
)
EXPORTERS.register(
    "peft", Exporter("peft", "a LoRA adapter directory for peft.PeftModel.from_pretrained", export_peft)
)
