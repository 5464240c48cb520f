"""The adapter artefact: a directory with ``adapter.safetensors`` and ``adapter.json``.

``adapter.safetensors`` holds the adapter body (``layers.*``) and head (``head.*``) tensors;
``adapter.json`` holds the method config, the base model id and fingerprint, the task (label names,
metric), the training config and seed, metrics, package versions and provenance (trained, mixed, pruned,
imported ...). Directories are written atomically; loading uses safetensors only (never unpickles),
checks shapes against the method config, refuses NaN/Inf and refuses a different base model.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from adaptermix._version import __version__
from adaptermix.backbone.loading import Encoder
from adaptermix.core.errors import AdapterMixError, ArtefactError, IncompatibleAdaptersError
from adaptermix.core.hashing import sha256_hex
from adaptermix.core.io import atomic_dir
from adaptermix.core.timestamps import utc_stamp
from adaptermix.data.schema import TaskInfo
from adaptermix.methods import METHODS, MethodConfig
from adaptermix.model import AdapterModel, Head, HeadConfig

WEIGHTS = "adapter.safetensors"
META = "adapter.json"
FORMAT_VERSION = 1


def versions() -> dict[str, str]:
    """Versions of the packages that determine an artefact's numbers."""
    import transformers

    return {
        "adaptermix": __version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
    }


@dataclass
class AdapterMeta:
    """Contents of ``adapter.json``."""

    method: dict[str, Any]
    head: dict[str, Any]
    base_model: dict[str, Any]
    task: dict[str, Any]
    training: dict[str, Any] | None = None
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=lambda: {"kind": "trained"})
    versions: dict[str, str] = field(default_factory=versions)
    created_at: str = field(default_factory=utc_stamp)
    format_version: int = FORMAT_VERSION

    @property
    def method_config(self) -> MethodConfig:
        return MethodConfig.from_saved(self.method)

    @property
    def head_config(self) -> HeadConfig:
        return HeadConfig.model_validate(self.head)

    @property
    def task_info(self) -> TaskInfo:
        t = dict(self.task)
        t["label_names"] = tuple(t.get("label_names", ()))
        t["secondary_metrics"] = tuple(t.get("secondary_metrics", ()))
        return TaskInfo(**t)

    @staticmethod
    def describe_base(encoder: Encoder) -> dict[str, Any]:
        return {
            "name": encoder.name,
            "fingerprint": encoder.fingerprint,
            "model_type": encoder.spec.model_type,
            "hidden_size": encoder.hidden_size,
            "num_layers": encoder.num_layers,
            **({"intermediate_size": encoder.intermediate_size} if encoder.intermediate_size is not None else {}),
        }


@dataclass
class Adapter:
    """A loaded artefact: metadata plus body and head tensors (no model attached)."""

    meta: AdapterMeta
    tensors: dict[str, torch.Tensor]
    path: Path | None = None

    @property
    def body(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in self.tensors.items() if not k.startswith("head.")}

    @property
    def head(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in self.tensors.items() if k.startswith("head.")}

    @property
    def name(self) -> str:
        return str(self.meta.task.get("name") or (self.path.name if self.path else "adapter"))

    def weights_sha256(self) -> str:
        """SHA-256 of the tensors (names, dtypes, shapes and bytes, in name order): the identity of the
        weights, independent of ``adapter.json`` and of the file's layout."""
        def chunks() -> Iterator[str | bytes]:
            for name in sorted(self.tensors):
                t = self.tensors[name].detach().contiguous().cpu()
                yield f"{name}|{t.dtype}|{tuple(t.shape)}|"
                yield t.reshape(-1).view(torch.uint8).numpy().tobytes()

        return sha256_hex(chunks())


def task_to_dict(info: TaskInfo) -> dict[str, Any]:
    d = asdict(info)
    d["label_names"] = list(info.label_names)
    d["secondary_metrics"] = list(info.secondary_metrics)
    return d


def save_adapter(
    path: str | Path, tensors: dict[str, torch.Tensor], meta: AdapterMeta, extra_files: dict[str, str] | None = None
) -> Path:
    """Write an artefact directory atomically (weights, metadata and any extra text files)."""
    out = Path(path)
    with atomic_dir(out) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp / WEIGHTS))
        (tmp / META).write_text(json.dumps(asdict(meta), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        for name, text in (extra_files or {}).items():
            (tmp / name).write_text(text, encoding="utf-8")
    return out


# Upgrades of an older ``adapter.json``: format version -> function that turns it into the next version.
# Format 1 is the current one; a change to the format bumps FORMAT_VERSION and adds its upgrade here, so
# that every older artefact keeps loading.
_UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}

# Nested objects checked field by field, so that a field a newer version added inside them is named too.
_NESTED: dict[str, type] = {"method": MethodConfig, "head": HeadConfig, "task": TaskInfo}
# A method config may hold any registered method's fields (and those of the one-config layout of before).


def _newer(p: Path, raw: dict[str, Any], version: int, added: list[str]) -> ArtefactError:
    """The one line for an artefact written by a newer adaptermix: what it added, who wrote it."""
    written = raw.get("versions", {}).get("adaptermix") if isinstance(raw.get("versions"), dict) else None
    what = (f"which added field{'s' if len(added) > 1 else ''} {', '.join(repr(a) for a in added)}" if added
            else f"newer than format {FORMAT_VERSION}")
    return ArtefactError(
        f"adapter {p} was written by adaptermix {written or '(unknown version)'} (format {version}), {what}; "
        f"upgrade adaptermix (this is {__version__}, format {FORMAT_VERSION}) to read it"
    )


def _known_fields(kind: type) -> set[str]:
    if kind is MethodConfig:
        return MethodConfig.known_fields()
    if hasattr(kind, "model_fields"):
        return set(kind.model_fields)
    return {f.name for f in fields(kind)}


def meta_from_json(raw: Any, p: Path) -> AdapterMeta:
    """The :class:`AdapterMeta` of a parsed ``adapter.json``: older formats upgraded, newer ones refused in
    one line that names the fields this version does not know, damaged ones called corrupted."""
    if not isinstance(raw, dict):
        raise ArtefactError(f"adapter {p}: {META} is corrupted (not a JSON object)")
    version = raw.get("format_version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ArtefactError(f"adapter {p}: {META} is corrupted (format_version {version!r})")
    added = sorted(set(raw) - _known_fields(AdapterMeta))
    for key, kind in _NESTED.items():
        if isinstance(raw.get(key), dict):
            added += [f"{key}.{k}" for k in sorted(set(raw[key]) - _known_fields(kind))]
    if version > FORMAT_VERSION or added:
        raise _newer(p, raw, version, added)
    while version < FORMAT_VERSION:
        raw = _UPGRADES[version](raw)
        version += 1
    raw = {**raw, "format_version": FORMAT_VERSION}
    try:
        meta = AdapterMeta(**raw)
        meta.method_config, meta.head_config, meta.task_info  # noqa: B018  (checked now, not when first used)
    except (TypeError, ValueError, AdapterMixError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        detail = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
        raise ArtefactError(f"adapter {p}: {META} is corrupted ({detail})") from None
    return meta


def load_adapter(path: str | Path) -> Adapter:
    """Read an artefact directory. Missing, corrupted, truncated or non-finite files are one-line errors."""
    p = Path(path)
    if not p.is_dir():
        raise ArtefactError(f"adapter not found: {p} (expected a directory with {WEIGHTS} and {META})")
    for name in (WEIGHTS, META):
        if not (p / name).is_file():
            raise ArtefactError(f"adapter {p}: missing {name}")
    try:
        raw = json.loads((p / META).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtefactError(f"adapter {p}: {META} is corrupted ({type(exc).__name__})") from None
    if isinstance(raw, dict) and raw.get("artefact") == "masked_merge":  # adaptermix.artefacts.masked: not one adapter
        domains = [str(d.get("name")) for d in raw.get("domains") or [] if isinstance(d, dict)]
        raise ArtefactError(
            f"{p} is a masked merge artefact ({raw.get('kind')} over {', '.join(domains)}), not one adapter: "
            f"pick a domain (adaptermix eval {p} --domain D; Python: adaptermix.artefacts.masked.load_masked, for_domain)"
        )
    meta = meta_from_json(raw, p)
    return Adapter(meta, load_weights(p), p)


def load_weights(p: Path, what: str = "adapter") -> dict[str, torch.Tensor]:
    """The tensors of ``p / adapter.safetensors`` (safetensors only, never pickle), every floating one
    finite; one-line :class:`ArtefactError` naming ``what`` otherwise (shared with masked artefacts)."""
    try:
        tensors = load_file(str(p / WEIGHTS))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ArtefactError(f"{what} {p}: {WEIGHTS} is corrupted or truncated ({exc})") from None
    for name, t in tensors.items():
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise ArtefactError(f"{what} {p}: tensor {name!r} contains NaN or Inf")
    return tensors


def check_base(adapter: Adapter, encoder: Encoder) -> None:
    """Refuse an adapter trained on another base model (by weight fingerprint)."""
    want = adapter.meta.base_model.get("fingerprint")
    if want != encoder.fingerprint:
        raise IncompatibleAdaptersError(
            f"adapter {adapter.path or adapter.name} was trained on base model "
            f"{adapter.meta.base_model.get('name')!r} (fingerprint {want}), not on {encoder.name!r} "
            f"(fingerprint {encoder.fingerprint})"
        )


def new_model(encoder: Encoder, method: MethodConfig, head: HeadConfig, info: TaskInfo, head_seed: int = 0) -> AdapterModel:
    """A fresh model: ``encoder`` + a newly initialised body of ``method`` + a head for ``info``."""
    body = METHODS.get(method.name).build_body(method, encoder.hidden_size, encoder.num_layers,
                                               encoder.intermediate_size)
    return AdapterModel(encoder, body, Head(encoder.hidden_size, info.num_labels, head, seed=head_seed))


def model_from_adapter(adapter: Adapter, encoder: Encoder) -> AdapterModel:
    """Build a model for ``adapter`` on ``encoder`` and load its tensors (checks base and shapes)."""
    check_base(adapter, encoder)
    model = new_model(encoder, adapter.meta.method_config, adapter.meta.head_config, adapter.meta.task_info)
    expected = {k: tuple(v.shape) for k, v in model.trainable_state().items()}
    got = {k: tuple(v.shape) for k, v in adapter.tensors.items()}
    if expected != got:
        missing = sorted(set(expected) - set(got))
        extra = sorted(set(got) - set(expected))
        wrong = sorted(k for k in set(expected) & set(got) if expected[k] != got[k])
        what = (f"missing {missing[0]}" if missing else f"unexpected {extra[0]}" if extra
                else f"{wrong[0]} has shape {got[wrong[0]]}, expected {expected[wrong[0]]}")
        model.detach_body()
        raise ArtefactError(f"adapter {adapter.path or adapter.name} does not match its method config: {what}")
    model.load_trainable_state(adapter.tensors)
    model.eval()
    return model
