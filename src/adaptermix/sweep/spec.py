"""Sweep spec (YAML) -> frozen trials, each keyed by a hash of its canonical JSON.

Pattern from docs/architecture.md, "Sweeps: expand, then run": a :class:`SweepSpec` says *what* to
compute; :func:`expand` turns it into a flat list of immutable :class:`Trial` values before anything runs;
:func:`describe_expansion` reports the size from closed forms (no enumeration); the runner skips every
trial whose key the results store already holds, so a rerun or a resume does no work twice, and
``--shard i/n`` (:func:`shard`) splits the trials by key between processes or machines.

How the sweep runs (batch size, data directory, backend) is kept out of the trial key; everything that
can change a metric (subset, rule and params, split, evaluation and attack params, example cap, seed,
max length, generator tag, encoder precision) is in it.

Precision: the *resolved* precision of the encoder (``fp32`` / ``bf16``, never ``auto``) is part of every
trial. ``fp32`` is left out of the canonical JSON, so fp32 trials keep the keys they had before precision
existed (stores written then stay valid for fp32 runs), while a bf16 run computes trials of its own. A store
holds one precision only (:meth:`adaptermix.sweep.store.ResultsStore.begin_run` refuses a mix).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
from pydantic import (
    Field,
    PositiveInt,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from adaptermix.core.config import StrictModel, load_config
from adaptermix.core.errors import ConfigError
from adaptermix.core.hashing import short_hash
from adaptermix.evaluations.config import (
    EvaluationName,
    EvaluationsModel,
    eval_params_of,
    legacy_layout,
)
from adaptermix.sweep.subsets import (
    SUBSET_GENERATORS,
    SubsetRequest,
    check_fsd_matrix,
    count_subsets_by_k,
    generate_subsets,
)

#: Bumped whenever the canonical trial JSON changes meaning; part of every key.
TRIAL_FORMAT = 1
#: Length of a trial key in hex characters: the first 16 hex digits (64 bits) of the SHA-256. The chance
#: of any collision among a million trials is ~3e-8, and a collision with different metrics is caught
#: when shard stores are merged.
KEY_HEX_CHARS = 16
#: Expansions larger than this are refused (they would not fit in memory as a list); use ``sample``.
MAX_TRIALS = 2_000_000

Precision = Literal["auto", "fp32", "bf16"]
#: Precisions a trial can be computed in (``auto`` is resolved by the runner before trials are expanded).
RESOLVED_PRECISIONS = ("fp32", "bf16")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


def check_name(name: str, what: str) -> str:
    """A domain/adapter name usable as a label and a path part: no separators, no '..', not empty."""
    if not isinstance(name, str) or not _NAME_RE.match(name) or ".." in name:
        raise ConfigError(f"invalid {what} name {name!r}: use letters, digits, '_', '-', '.', '+'")
    return name


def canonical_json(obj: Any) -> str:
    """Compact, key-sorted, ASCII JSON; NaN/Inf are rejected so equal values always hash equally."""
    try:
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"value is not plain JSON data: {exc}") from None


def _frozen(params: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(json.loads(canonical_json(dict(params or {}))))


# --------------------------------------------------------------------------------------------- spec


class RuleSpec(StrictModel):
    """A mixing rule by registered name (checked by the runner against the merging registry)."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)


class AdapterSoupSpec(StrictModel):
    """The parameters of the ``adaptersoup_similarity`` / ``adaptersoup_cluster`` generators (the paper's
    thresholds by default; see docs/adaptersoup.md). Not part of any trial key: a trial's subset is."""

    max_adapters: PositiveInt = 5  # the target included
    threshold: float = Field(0.15, ge=-1.0, le=1.0)  # similarity: cosine > threshold
    min_share: float = Field(0.10, gt=0.0, le=1.0)  # clustering: share of the target's texts >= min_share
    n_docs: PositiveInt = 300  # texts sampled per domain (training texts) and for the target (validation)
    seed: int = 0  # the Gaussian mixture's random_state
    sample_seed: int = 13  # the seeded text sample (as the dataset analyses and pool_texts draw it)
    covariance_type: Literal["diag", "full", "tied", "spherical"] = "diag"


class SubsetSpec(StrictModel):
    """Which subsets to evaluate: one generator name or a list of them (e.g. ``[all, greedy, greedy_max]``)."""

    generator: tuple[str, ...] = ("all",)
    per_k: PositiveInt | None = None
    seed: int = 0
    # Only these mixture sizes (e.g. [1] for single adapters, Fig. 8a); None keeps every k = 1..N.
    ks: tuple[PositiveInt, ...] | None = None
    # Generator "adaptive": evaluations per target (the single adapter's included), the search strategy
    # (adaptermix.recommend.search.STRATEGIES) and the smallest mixture it may settle on.
    budget: PositiveInt | None = None
    strategy: str = "model"
    min_k: PositiveInt = 1
    # Generators adaptersoup_similarity / adaptersoup_cluster: their parameters.
    adaptersoup: AdapterSoupSpec = AdapterSoupSpec()
    # A tag for every trial of the population generators (all / sample), e.g. "all_domain" for a study's rule
    # comparison: trials evaluated for another purpose, which statistics keep apart from the population (None:
    # the generators' own tags, "" for the population). Part of every trial key, as any tag.
    tag: str | None = None

    @field_validator("generator", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check(self) -> SubsetSpec:
        if not self.generator:
            raise ValueError("at least one generator is needed")
        if len(set(self.generator)) != len(self.generator):
            raise ValueError("a generator is listed twice")
        unknown = [g for g in self.generator if g not in SUBSET_GENERATORS]
        if unknown:
            raise ValueError(
                f"unknown generator {unknown[0]!r}; valid: {', '.join(SUBSET_GENERATORS.names())}"
            )
        gens = [SUBSET_GENERATORS.get(g) for g in self.generator]
        if sum(1 for g in gens if not g.tag and not g.dynamic) > 1:
            raise ValueError("'all' already contains every 'sample' subset; list only one of them")
        if any(g.needs_per_k for g in gens) and self.per_k is None:
            raise ValueError("per_k is required by generator 'sample'")
        if "adaptive" in self.generator and self.budget is None:
            raise ValueError("generator 'adaptive' needs subsets.budget (evaluations per target)")
        if "adaptive" in self.generator and self.ks is not None:
            raise ValueError("subsets.ks does not apply to generator 'adaptive' (use subsets.min_k)")
        if self.tag is not None:
            if not _NAME_RE.match(self.tag):
                raise ValueError(f"subsets.tag {self.tag!r}: use letters, digits, '_', '-', '.', '+'")
            tagged = [g.name for g in gens if g.tag or g.dynamic]
            if tagged:
                raise ValueError(f"subsets.tag applies to the population generators (all, sample), not {tagged[0]!r}")
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """No ``tag`` key when unset: a spec's dump (a run's provenance) is that of before the field."""
        data: dict[str, Any] = handler(self)
        if data.get("tag", "") is None:
            data.pop("tag")
        return data

    @property
    def selection_generators(self) -> tuple[str, ...]:
        """The generators whose subsets follow a selection the runner computes first (AdapterSoup's)."""
        return tuple(g for g in self.generator if SUBSET_GENERATORS.get(g).needs_selection)

    @property
    def adaptive(self) -> bool:
        """Whether the runner searches subsets as results come in (generator ``adaptive``)."""
        return "adaptive" in self.generator


class SweepSpec(EvaluationsModel):
    """A combinatorial in-domain sweep (Section 3.4), loaded from YAML; see docs/results-store.md."""

    pool: tuple[str, ...] | dict[str, str]
    targets: tuple[str, ...] | None = None
    rules: tuple[RuleSpec, ...] = (RuleSpec(name="average"),)
    subsets: SubsetSpec = SubsetSpec()
    split: str = "test"
    # Capped with adaptermix.data.sampling.stratified_sample(examples, cap, seed): it depends only on the
    # split, the cap and the seed, so every mixture of a target sees the same examples.
    max_eval_examples: PositiveInt | None = None
    # Registered evaluation kinds (adaptermix.evaluations.registry), in order; given as names or
    # {name, params} items, folded by _fold_evaluations into the names and evaluation_params (kind -> the
    # parameters given; eval_params() resolves what trials carry). The old top-level `fgsm:` /
    # `textfooler:` keys are folded in too, and a dump writes them back in that layout (_dump).
    evaluations: tuple[EvaluationName, ...] = ("clean",)
    evaluation_params: dict[str, dict[str, Any]] = Field(default_factory=dict)
    seed: int = 0
    data: str | None = None
    batch_size: PositiveInt = 32
    max_length: PositiveInt | None = None
    # One of adaptermix.deltas.SPACES ("raw" | "dw"); checked by the runner so specs load without torch.
    fsd_space: str = "raw"
    # What the rules merge: "raw" adapter parameters (the paper's Eq. 1), or "tv" task vectors (weights minus
    # the pool's shared, rebuilt init; adaptermix.artefacts.task_vectors), the init added back after the merge.
    merge_space: Literal["raw", "tv"] = "raw"
    # The encoder's format; None = $ADAPTERMIX_PRECISION or auto (see adaptermix.core.device.resolve_precision).
    # The runner replaces it with the resolved fp32/bf16, which goes into every trial key.
    precision: Precision | None = None

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> dict[str, Any]:
        """The layout of before evaluation kinds (see adaptermix.evaluations.config.legacy_layout)."""
        old_defaults = {"fgsm": eval_params_of({}, "fgsm"), "textfooler": {}}  # the old fields' defaults
        legacy = {"fgsm": self.fgsm, "textfooler": self.textfooler}
        return legacy_layout(handler(self), legacy, old_defaults, info.exclude_defaults)

    @model_validator(mode="after")
    def _check(self) -> SweepSpec:
        names = list(self.pool) if isinstance(self.pool, dict) else [Path(p).name for p in self.pool]
        if not names:
            raise ValueError("the adapter pool is empty")
        for name in names:
            if not _NAME_RE.match(name) or ".." in name:
                raise ValueError(f"invalid pool name {name!r}")
        if len(set(names)) != len(names):
            raise ValueError("two pool adapters have the same name; use a mapping name -> directory")
        if self.targets is not None and (not self.targets or len(set(self.targets)) != len(self.targets)):
            raise ValueError("targets must be a non-empty list without repeats")
        if not self.rules or len({canonical_json(r.model_dump()) for r in self.rules}) != len(self.rules):
            raise ValueError("rules must be a non-empty list without repeats")
        if not self.evaluations or len(set(self.evaluations)) != len(self.evaluations):
            raise ValueError("evaluations must be a non-empty list without repeats")
        return self

    def pool_dirs(self) -> dict[str, Path]:
        """Pool name -> adapter directory; a plain list is named by each directory's basename."""
        if isinstance(self.pool, dict):
            return {name: Path(path) for name, path in self.pool.items()}
        return {Path(path).name: Path(path) for path in self.pool}

    def eval_params(self, evaluation: str) -> dict[str, Any]:
        """The parameters the trials of one evaluation kind carry (``clean``: none; a kind the spec gives no
        parameters: its defaults where they are keyed, e.g. FGSM ``{"epsilon": 0.01}``)."""
        return eval_params_of(self.evaluation_params, evaluation)

    @property
    def evaluation_names(self) -> tuple[str, ...]:
        """The evaluation kinds of the spec, in order (the same as :attr:`evaluations`)."""
        return tuple(self.evaluations)

    def trial(self, target: str, subset: Sequence[str], rule: RuleSpec, evaluation: str, tag: str = "") -> Trial:
        """The trial of one mixture under this spec: its split, caps, seed, tokens, merge space and precision
        (``fp32`` while the spec's precision is unresolved). The one place a spec's fields become a trial, so
        a sweep and a search (adaptermix.recommend) give the same mixture the same key."""
        precision = self.precision if self.precision in RESOLVED_PRECISIONS else "fp32"
        return Trial(target=target, subset=tuple(subset), rule=rule.name, rule_params=rule.params,
                     split=self.split, evaluation=evaluation, eval_params=self.eval_params(evaluation),
                     max_eval_examples=self.max_eval_examples, seed=self.seed, max_length=self.max_length,
                     tag=tag, precision=str(precision), merge_space=self.merge_space)

    @property
    def fgsm(self) -> dict[str, Any]:
        """FGSM's parameters (the old ``fgsm:`` field, kept for readers of it)."""
        return self.eval_params("fgsm")

    @property
    def textfooler(self) -> dict[str, Any]:
        """TextFooler's parameters (the old ``textfooler:`` field, kept for readers of it)."""
        return self.eval_params("textfooler")


def load_spec(path: str | Path, overrides: Sequence[str] = ()) -> SweepSpec:
    """Load a sweep spec; relative pool and data paths are resolved against the spec file's folder."""
    spec = load_config(SweepSpec, path, tuple(overrides))
    base = Path(path).resolve().parent
    pool = {name: str(base / d) for name, d in spec.pool_dirs().items()}
    data = str(base / spec.data) if spec.data is not None else None
    return spec.model_copy(update={"pool": pool, "data": data})


# -------------------------------------------------------------------------------------------- trial


@dataclass(frozen=True, eq=False)
class Trial:
    """One mixture evaluation. Identity (``==``, ``hash``) is the content :attr:`key`."""

    target: str
    subset: tuple[str, ...]
    rule: str
    split: str
    evaluation: str
    seed: int
    rule_params: Mapping[str, Any] = field(default_factory=dict)
    eval_params: Mapping[str, Any] = field(default_factory=dict)
    max_eval_examples: int | None = None
    max_length: int | None = None
    tag: str = ""
    precision: str = "fp32"
    merge_space: str = "raw"

    def __post_init__(self) -> None:
        subset = tuple(sorted(self.subset))
        if len(set(subset)) != len(subset) or self.target not in subset:
            raise ConfigError(f"trial subset {subset} must hold distinct names including {self.target!r}")
        object.__setattr__(self, "subset", subset)
        if self.precision not in RESOLVED_PRECISIONS:
            raise ConfigError(f"trial precision {self.precision!r} must be one of {', '.join(RESOLVED_PRECISIONS)}")
        object.__setattr__(self, "rule_params", _frozen(self.rule_params))
        object.__setattr__(self, "eval_params", _frozen(self.eval_params))
        _ = self.canonical  # fail now, not later, on parameters that are not JSON

    @property
    def k(self) -> int:
        return len(self.subset)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form of the trial (the hashed content, plus k for readers).

        ``precision`` appears only when it is not fp32, so fp32 keys are those of trials written before
        precision was part of a trial.
        """
        out = {
            "v": TRIAL_FORMAT,
            "target": self.target,
            "subset": list(self.subset),
            "k": self.k,
            "rule": self.rule,
            "rule_params": dict(self.rule_params),
            "split": self.split,
            "evaluation": self.evaluation,
            "eval_params": dict(self.eval_params),
            "max_eval_examples": self.max_eval_examples,
            "seed": self.seed,
            "max_length": self.max_length,
            "tag": self.tag,
        }
        if self.precision != "fp32":
            out["precision"] = self.precision
        if self.merge_space != "raw":  # raw keys are those of trials written before the space existed
            out["merge_space"] = self.merge_space
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Trial:
        """Inverse of :meth:`to_dict` (the ``trial_json`` column of the store)."""
        fields = {k: v for k, v in data.items() if k not in ("v", "k")}
        fields["subset"] = tuple(fields["subset"])
        return cls(**fields)

    @cached_property
    def canonical(self) -> str:
        return canonical_json(self.to_dict())

    @cached_property
    def key(self) -> str:
        """First 16 hex digits of SHA-256(canonical JSON): sort_keys, separators (',', ':'), ASCII."""
        return short_hash(self.canonical, KEY_HEX_CHARS)  # ASCII: its UTF-8 bytes are the same

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Trial) and other.key == self.key

    def __hash__(self) -> int:
        return hash(self.key)


# ---------------------------------------------------------------------------------------- expansion


def _pool_order(pool_names: Sequence[str]) -> list[int]:
    names = [check_name(n, "pool") for n in pool_names]
    if not names:
        raise ConfigError("the adapter pool is empty")
    if len(set(names)) != len(names):
        raise ConfigError("two pool adapters have the same name")
    return sorted(range(len(names)), key=lambda i: names[i])


def _targets(spec: SweepSpec, names: Sequence[str]) -> list[str]:
    if spec.targets is None:
        return sorted(names)
    unknown = [t for t in spec.targets if t not in names]
    if unknown:
        raise ConfigError(f"unknown target {unknown[0]!r}; pool: {', '.join(sorted(names))}")
    return list(spec.targets)


@dataclass(frozen=True)
class ExpansionSummary:
    """How many trials a spec expands to, from closed forms (nothing is enumerated or run)."""

    total: int
    per_target: dict[str, int]
    subsets_per_k: dict[int, int]
    rules: int
    evaluations: int
    generators: tuple[str, ...]

    adaptive_budget: int | None = None  # generator "adaptive": up to this many mixtures per target on top
    #: AdapterSoup's generators: their counts are upper bounds (a selection may hold fewer adapters).
    at_most: tuple[str, ...] = ()

    def __str__(self) -> str:
        per_k = ", ".join(f"k={k}: {n}" for k, n in self.subsets_per_k.items())
        text = (
            f"{self.total} trials = {len(self.per_target)} targets x {sum(self.subsets_per_k.values())} "
            f"subsets ({'+'.join(self.generators)}) x {self.rules} rules x {self.evaluations} evaluations; "
            f"subsets per target by k: {per_k}"
        )
        if self.at_most:
            text += (f"; at most: {', '.join(self.at_most)} yield one subset per adapter of a selection, "
                     "fewer when fewer adapters pass the threshold")
        if self.adaptive_budget is not None:
            text += (f"; plus an adaptive search of up to {self.adaptive_budget} mixtures per target "
                     f"(x {self.evaluations} evaluations), some possibly among the planned ones")
        return text


def describe_expansion(spec: SweepSpec, pool_names: Sequence[str]) -> ExpansionSummary:
    """The size of :func:`expand` (per target and per k) before anything runs."""
    _pool_order(pool_names)
    targets = _targets(spec, pool_names)
    ks = spec.subsets.ks
    too_big = [k for k in ks or () if k > len(pool_names)]
    if too_big:
        raise ConfigError(f"k={too_big[0]} is larger than the pool ({len(pool_names)} adapters)")
    per_k: dict[int, int] = {}
    cap = spec.subsets.adaptersoup.max_adapters
    for gen in spec.subsets.generator:
        selection = SUBSET_GENERATORS.get(gen).needs_selection
        for k, n in count_subsets_by_k(gen, len(pool_names), spec.subsets.per_k).items():
            if (ks is None or k in ks) and not (selection and k > cap):
                per_k[k] = per_k.get(k, 0) + n
    per_target = sum(per_k.values()) * len(spec.rules) * len(spec.evaluations)
    return ExpansionSummary(
        total=per_target * len(targets),
        per_target={t: per_target for t in targets},
        subsets_per_k=per_k,
        rules=len(spec.rules),
        evaluations=len(spec.evaluations),
        generators=spec.subsets.generator,
        adaptive_budget=spec.subsets.budget if spec.subsets.adaptive else None,
        at_most=spec.subsets.selection_generators,
    )


def expand(spec: SweepSpec, pool_names: Sequence[str], fsd_matrix: np.ndarray | None = None,
           selections: Mapping[str, Mapping[str, Sequence[str]]] | None = None) -> list[Trial]:
    """Every trial of the spec, ordered target -> evaluation -> rule -> generator -> k.

    ``pool_names`` is the pool in the order of ``fsd_matrix``'s rows (needed only by the greedy
    generators). ``selections`` (generator -> target -> the chosen adapters in order, target first) is
    what AdapterSoup's generators follow (:mod:`adaptermix.sweep.soup` computes it). Trials carry ``spec.precision`` when it is resolved (fp32/bf16); an unresolved spec
    (None/auto) expands to fp32 trials — the runner resolves it first. Subsets are generated over the pool sorted by name, so the trials (and ``sample``'s
    draws) do not depend on the order the pool was listed in.
    """
    summary = describe_expansion(spec, pool_names)
    if summary.total > MAX_TRIALS:
        raise ConfigError(
            f"the spec expands to {summary.total} trials (limit {MAX_TRIALS}); use generator 'sample'"
        )
    order = _pool_order(pool_names)
    names = [pool_names[i] for i in order]
    fsd = None
    if fsd_matrix is not None:
        fsd = check_fsd_matrix(fsd_matrix, len(names), "greedy")[np.ix_(order, order)]
    trials: dict[str, Trial] = {}
    for target in _targets(spec, names):
        chosen = {
            gen: _selection_indices(gen, target, names, selections)
            for gen in spec.subsets.selection_generators
        }
        request = SubsetRequest(len(names), names.index(target), spec.subsets.per_k, spec.subsets.seed, fsd,
                                chosen)
        tagged = [
            (SUBSET_GENERATORS.get(gen).tag if spec.subsets.tag is None else spec.subsets.tag, subset)
            for gen in spec.subsets.generator
            for subset in generate_subsets(gen, request)
            if spec.subsets.ks is None or len(subset) in spec.subsets.ks
        ]
        for evaluation in spec.evaluations:
            for rule in spec.rules:
                for tag, subset in tagged:
                    trial = spec.trial(target, tuple(names[i] for i in subset), rule, evaluation, tag)
                    trials.setdefault(trial.key, trial)
    return list(trials.values())


def _selection_indices(gen: str, target: str, names: Sequence[str],
                       selections: Mapping[str, Mapping[str, Sequence[str]]] | None) -> tuple[int, ...]:
    """A recorded selection (names, in order) as indices into the sorted pool ``names``."""
    chosen = (selections or {}).get(gen, {}).get(target)
    if chosen is None:
        raise ConfigError(f"subset generator {gen!r} needs AdapterSoup's selection for {target!r} "
                          "(computed by the sweep runner from the pool's texts)")
    unknown = [n for n in chosen if n not in names]
    if unknown:
        raise ConfigError(f"selection of {gen!r} for {target!r} names {unknown[0]!r}, not in the pool")
    return tuple(names.index(n) for n in chosen)


# ------------------------------------------------------------------------------------------ sharding


def parse_shard(text: str) -> tuple[int, int]:
    """Parse ``--shard i/n`` (1-based: shards 1/3, 2/3, 3/3)."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise ConfigError(f"--shard {text!r} must look like i/n with 1 <= i <= n")
    return int(match.group(1)), int(match.group(2))


def shard_of(key: str, n: int) -> int:
    """The 1-based shard of a trial key: ``int(key, 16) % n + 1``."""
    return int(key, 16) % n + 1


def shard(trials: Sequence[Trial], i: int, n: int) -> list[Trial]:
    """The trials of shard ``i`` of ``n`` (1-based). Shards partition the trials, by key, for any n."""
    if not 1 <= i <= n:
        raise ConfigError(f"shard {i}/{n} must satisfy 1 <= i <= n")
    return [t for t in trials if shard_of(t.key, n) == i]
