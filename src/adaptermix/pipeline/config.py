"""The study config behind ``adaptermix reproduce``: which domains, methods and stages to run.

What to compute (domains, methods, sweeps, attacks, pruning) is kept apart from how to run it (backend,
threads), as in mergekit. Per-domain training overrides express the paper's per-task epochs (Table 17).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import (
    Field,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from adaptermix.core.config import StrictModel
from adaptermix.core.config import config_hash as config_hash  # re-exported: its old home
from adaptermix.data.config import DataConfig
from adaptermix.evaluations.config import (
    LEGACY_KEYS,
    EvaluationName,
    EvaluationsModel,
    eval_params_of,
    legacy_layout,
)
from adaptermix.methods.config import MethodConfig
from adaptermix.model import HeadConfig
from adaptermix.sweep.spec import AdapterSoupSpec, RuleSpec, check_name
from adaptermix.sweep.subsets import SUBSET_GENERATORS
from adaptermix.training.config import ModelConfig, TrainConfig, TrainRunConfig


def _scopes(*scopes: Literal["adapter", "layer"]) -> list[Literal["adapter", "layer"]]:
    return list(scopes)

class DataDefaults(StrictModel):
    """Data settings applied to every domain (a domain entry may override any of them)."""

    source: Literal["datapack", "files", "hf"] = "datapack"
    data_dir: str | None = None
    max_train: int | None = Field(None, ge=1)
    max_validation: int | None = Field(None, ge=1)
    max_test: int | None = Field(None, ge=1)
    sample_seed: int = 13


class SweepStage(EvaluationsModel):
    """The combinatorial in-domain sweep (Sec. 3.4)."""

    enabled: bool = True
    generator: str = Field(
        "all", description="a population generator (untagged: all, sample, adaptive, ...; read from the registry)"
    )
    per_k: int | None = Field(None, ge=1, description="subsets per k for generator=sample")
    budget: int | None = Field(None, ge=1, description="generator=adaptive: evaluations per target")
    strategy: str = Field("model", description="generator=adaptive: the search strategy (see docs/recommend.md)")
    min_k: int = Field(1, ge=1, description="generator=adaptive: the smallest mixture the search may settle on")
    rules: list[dict[str, Any]] = [{"name": "average"}]
    max_eval_examples: int | None = Field(None, ge=1)
    # Registered evaluation kinds as names or {name, params} items (as in sweep specs); the old top-level
    # `fgsm:` / `textfooler:` keys are folded into evaluation_params (kind -> the parameters given), and a
    # dump writes them back in that layout, so a study's stamp and config.yaml are those of before.
    evaluations: list[EvaluationName] = ["clean"]
    evaluation_params: dict[str, dict[str, Any]] = {}
    textfooler_per_k: int | None = Field(
        None, ge=1, description="kinds that run in a sweep of their own (TextFooler) on a sample: this many "
        "subsets per k and target (default: same as clean)"
    )
    batch_size: int = 64
    seed: int = 0

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> dict[str, Any]:
        """The layout of before evaluation kinds (see adaptermix.evaluations.config.legacy_layout)."""
        legacy = {k: self.evaluation_params.get(k, {}) for k in LEGACY_KEYS}  # as given, as the old fields held
        return legacy_layout(handler(self), legacy, dict.fromkeys(LEGACY_KEYS, {}), info.exclude_defaults)

    @field_validator("generator")
    @classmethod
    def _population_generator(cls, v: str) -> str:
        """The sweep stage's population: a registered generator without a tag (greedy and AdapterSoup picks
        have their own stages/sections), so a plug-in population generator needs no edit here."""
        valid = [g for g in SUBSET_GENERATORS.names() if not SUBSET_GENERATORS.get(g).tag]
        if v not in valid:
            raise ValueError(f"sweep.generator: {v!r} is not a population generator; valid: {', '.join(valid)}")
        return v

    @model_validator(mode="after")
    def _budget(self) -> SweepStage:
        if self.generator == "adaptive" and self.budget is None:
            raise ValueError("sweep.generator adaptive needs sweep.budget (evaluations per target)")
        return self

    def eval_params(self, evaluation: str) -> dict[str, Any]:
        """The parameters the trials of one evaluation kind carry (its defaults if none are given)."""
        return eval_params_of(self.evaluation_params, evaluation)

    @property
    def fgsm(self) -> dict[str, Any]:
        """FGSM's parameters as given (the old ``sweep.fgsm`` field, kept for readers of it)."""
        return dict(self.evaluation_params.get("fgsm", {}))

    @property
    def textfooler(self) -> dict[str, Any]:
        """TextFooler's parameters as given (the old ``sweep.textfooler`` field, kept for readers of it)."""
        return dict(self.evaluation_params.get("textfooler", {}))


def selection_generators() -> list[str]:
    """The registered generators that follow a selection computed from the pool's texts (AdapterSoup's
    ``adaptersoup_similarity`` / ``adaptersoup_cluster``): the default of ``selection.generators``."""
    return [g for g in SUBSET_GENERATORS.names() if SUBSET_GENERATORS.get(g).needs_selection]


class SelectionStage(StrictModel):
    """Adapter selections run beside greedy mixing in the greedy stage (Fig. 7): AdapterSoup's by default.

    Like Alg. 1's picks, each selection's prefixes of size l = 1..L are evaluated (rule ``average``,
    ``clean``), tagged by generator, so Fig. 7 compares them with greedy min/max FSD, random selection and
    the empirical bounds. Off unless the study has a ``selection:`` section (``selection: {}`` runs both of
    AdapterSoup's generators with the paper's thresholds).
    """

    generators: list[str] = Field(
        default_factory=selection_generators, min_length=1,
        description="tagged subset generators (adaptermix.sweep.subsets); default: AdapterSoup's two",
    )
    adaptersoup: AdapterSoupSpec = Field(
        default_factory=AdapterSoupSpec, description="the AdapterSoup generators' parameters (docs/adaptersoup.md)"
    )

    @field_validator("generators")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        valid = [g for g in SUBSET_GENERATORS.names()
                 if SUBSET_GENERATORS.get(g).tag and not SUBSET_GENERATORS.get(g).dynamic]
        for g in v:
            if g not in valid:
                raise ValueError(f"selection.generators: {g!r} is not a selection generator; valid: {', '.join(valid)}")
        if len(set(v)) != len(v):
            raise ValueError("selection.generators: a generator is listed twice")
        return v


class RuleComparisonStage(StrictModel):
    """"Which rule?": every rule's all-domain mixture (k = N, each target's head) per target, in the sweep stage.

    Its trials are tagged ``all_domain`` (kept apart from the sweep's population) and compared with the
    sweep's single adapters (k = 1, rule ``average``) of the same evaluation, split, caps and seed. Rules
    defined on task vectors (``needs_base``) need ``merge_space: tv``; rules that merge LoRA updates B A
    (``needs_lora``) run for LoRA methods only, on the raw factors (LoRA's B starts at zero, so B A is the
    update already), and are skipped, with a note, for the others. Off unless the study has the section.
    """

    rules: list[RuleSpec] = Field(min_length=1, description="merge rules (with parameters) to compare")
    merge_space: Literal["raw", "tv"] = Field(
        "tv", description="what the rules merge: task vectors (weights minus the shared init) or raw weights"
    )
    evaluations: list[str] = Field(
        default_factory=lambda: ["clean"], min_length=1,
        description="evaluation kinds, among sweep.evaluations (their parameters are the sweep's)",
    )

    @model_validator(mode="after")
    def _unique(self) -> RuleComparisonStage:
        if len({json.dumps(r.model_dump(), sort_keys=True) for r in self.rules}) != len(self.rules):
            raise ValueError("rule_comparison.rules: a rule is listed twice")
        if len(set(self.evaluations)) != len(self.evaluations):
            raise ValueError("rule_comparison.evaluations: an evaluation is listed twice")
        return self


#: Study sections that only add trials to the method stores (nothing already computed depends on them): left
#: out of a dump while unset, so a config without them dumps (config.yaml, the output stamp) as before they
#: existed, and left out of the output stamp always, so turning one on resumes a study that already ran.
ADDITIVE_SECTIONS = ("selection", "rule_comparison")


class PruningStage(StrictModel):
    """Sec. 7: single sparse adapters vs sparsity (Fig. 8a) and mixtures of sparse adapters (Fig. 8b)."""

    enabled: bool = True
    sparsities: list[float] = [0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    mix_sparsities: list[float] = [0.8, 0.9]
    fsd_layers: int | None = Field(
        None,
        ge=0,
        description="Alg. 4's m: also mix sparse adapters whose m most conflicting layers (FSD-guided) alone "
        "are pruned, beside the prune-every-layer variant (m unset); the layers chosen are stored per trial",
    )
    scopes: list[Literal["adapter", "layer"]] = Field(
        default_factory=lambda: _scopes("adapter"),
        min_length=1,
        description="Fig. 8a (single sparse adapters): 'adapter' keeps the top (1 - s) of all the adapter's "
        "parameters (the paper); 'layer' prunes every layer to s on its own (a labelled variant)",
    )


class NoiseFloorStage(StrictModel):
    """Replicate adapters that give each domain's FSD noise floor (same domain, method and init).

    Replicate r of a domain trains with ``train.seed + r * seed_offset`` and draws its training sample with
    ``data.train_sample_seed = data.sample_seed + r * seed_offset`` (validation and test rows unchanged).
    Its FSD to the domain adapter is that domain's floor; a cross-domain FSD means something only above it.
    """

    replicates: int = Field(1, ge=1, description="replicate adapters per domain and method")
    seed_offset: int = Field(1000, ge=1, description="added (times r) to the training and sample seeds")
    methods: list[str] | None = Field(
        None, description="method labels (or names) that get replicates; default: every method of the study"
    )

    def covers(self, method_label: str, method_name: str) -> bool:
        """Whether the method (by its directory label or its name) gets noise-floor replicates."""
        return self.methods is None or method_label in self.methods or method_name in self.methods


class AnalysisStage(StrictModel):
    """Dataset similarity (Fig. 2a) and LDA topics (Fig. 2b / Tables 4–16)."""

    enabled: bool = True
    docs_per_dataset: int = 1000
    n_topics: int = 10
    top_words: int = 15


class StudyConfig(StrictModel):
    """One study: train every (method, domain) adapter, then FSD, sweeps, greedy mixing, pruning, report."""

    name: str = "study"
    output_dir: str = "runs/study"
    model: ModelConfig = ModelConfig()
    data: DataDefaults = DataDefaults()
    domains: list[str | dict[str, Any]]
    methods: list[MethodConfig] = [MethodConfig()]
    head: HeadConfig = HeadConfig()
    train: TrainConfig = TrainConfig()
    train_overrides: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="per-domain TrainConfig fields, e.g. {mnli: {epochs: 20}}"
    )
    method_train_overrides: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="per-method TrainConfig fields, e.g. {lora: {learning_rate: 3.0e-3}}"
    )
    sweep: SweepStage = SweepStage()
    greedy: bool = True
    pruning: PruningStage = PruningStage()
    analysis: AnalysisStage = AnalysisStage()
    noise_floor: NoiseFloorStage | None = Field(
        None, description="train replicate adapters per domain for the FSD noise floor (Fig. 4); off by default"
    )
    selection: SelectionStage | None = Field(
        None, description="AdapterSoup's selections beside greedy mixing (Fig. 7); off by default"
    )
    rule_comparison: RuleComparisonStage | None = Field(
        None, description="every rule's all-domain mixture vs the single adapters ('Which rule?'); off by default"
    )

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """The additive sections (:data:`ADDITIVE_SECTIONS`) only when set: the dump of a study without them
        is that of before they existed (its config.yaml and output stamp unchanged)."""
        data: dict[str, Any] = handler(self)
        for key in ADDITIVE_SECTIONS:
            if key in data and data[key] is None:
                del data[key]
        return data

    @field_validator("domains")
    @classmethod
    def _unique_domains(cls, v: list[str | dict[str, Any]]) -> list[str | dict[str, Any]]:
        names = [d if isinstance(d, str) else str(d.get("name")) for d in v]
        if not v:
            raise ValueError("at least one domain is required")
        if len(set(names)) != len(names):
            raise ValueError("domain names must be unique")
        for name in names:  # a path part (adapters/<method>/<domain>): no separator, no '..'
            check_name(name, "domain")
        return v

    @model_validator(mode="after")
    def _known_floor_methods(self) -> StudyConfig:
        if self.noise_floor is not None and self.noise_floor.methods is not None:
            known = {self.method_label(m) for m in self.methods} | {m.name for m in self.methods}
            unknown = [m for m in self.noise_floor.methods if m not in known]
            if unknown:
                raise ValueError(f"noise_floor.methods: {unknown[0]!r} is not a method of the study "
                                 f"(known: {', '.join(sorted(known))})")
        return self

    @model_validator(mode="after")
    def _comparable(self) -> StudyConfig:
        rc = self.rule_comparison
        if rc is not None:
            if not self.sweep.enabled:
                raise ValueError("rule_comparison compares with the sweep's single adapters: it needs sweep.enabled")
            missing = [e for e in rc.evaluations if e not in self.sweep.evaluations]
            if missing:
                raise ValueError(f"rule_comparison.evaluations: {missing[0]!r} is not among sweep.evaluations "
                                 "(the single adapters it is compared with)")
        return self

    def stamp_inputs(self) -> dict[str, Any]:
        """What ``adaptermix reproduce``'s output stamp hashes: the dump without ``output_dir`` and without the
        additive sections (:data:`ADDITIVE_SECTIONS`), which add trials but change none already written."""
        return self.model_dump(mode="json", exclude={"output_dir", *ADDITIVE_SECTIONS})

    def domain_names(self) -> list[str]:
        return [d if isinstance(d, str) else str(d["name"]) for d in self.domains]

    def method_label(self, method: MethodConfig) -> str:
        """Directory name of a method: its name, plus the bottleneck/rank if several share a name."""
        same = [m for m in self.methods if m.name == method.name]
        if len(same) == 1:
            return method.name
        dumped = method.model_dump()  # the one-config layout: bottleneck_size None on LoRA, rank 4 elsewhere
        return f"{method.name}-{dumped['bottleneck_size'] or dumped['rank']}"

    def data_config(self, domain: str | dict[str, Any]) -> DataConfig:
        base = {k: v for k, v in self.data.model_dump().items() if v is not None}
        entry = {"name": domain} if isinstance(domain, str) else dict(domain)
        return DataConfig.model_validate({**base, **entry})

    def train_run(self, method: MethodConfig, domain: str | dict[str, Any], output_dir: str) -> TrainRunConfig:
        data = self.data_config(domain)
        update = {**self.method_train_overrides.get(method.name, {}), **self.train_overrides.get(data.name, {})}
        train = TrainConfig.model_validate({**self.train.model_dump(), **update})
        return TrainRunConfig(model=self.model, data=data, method=method, head=self.head, train=train,
                              output_dir=output_dir)

    def replicate_run(
        self, method: MethodConfig, domain: str | dict[str, Any], replicate: int, output_dir: str
    ) -> TrainRunConfig:
        """Replicate ``replicate`` (>= 1) of a domain's run: same everything, other training seed and sample."""
        if self.noise_floor is None:
            raise ValueError("the study has no noise_floor section")
        run = self.train_run(method, domain, output_dir)
        shift = replicate * self.noise_floor.seed_offset
        data = run.data.model_copy(update={"train_sample_seed": (run.data.train_sample_seed
                                                                 or run.data.sample_seed) + shift})
        train = run.train.model_copy(update={"seed": run.train.seed + shift})
        return run.model_copy(update={"data": data, "train": train})


class StudySuite(StrictModel):
    """Several studies run one after the other (e.g. the paper's BERT-base and RoBERTa-large settings)."""

    studies: list[StudyConfig] = Field(min_length=1)
