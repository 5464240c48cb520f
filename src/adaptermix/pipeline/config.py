"""The study config behind ``adaptermix reproduce``: which domains, methods and stages to run.

What to compute (domains, methods, sweeps, attacks, pruning) is kept apart from how to run it (backend,
threads), as in mergekit. Per-domain training overrides express the paper's per-task epochs (Table 17).
"""

from __future__ import annotations

import hashlib
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

from adaptermix.config import StrictModel
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
from adaptermix.sweep.spec import check_name
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
    generator: Literal["all", "sample", "adaptive"] = "all"
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


def config_hash(cfg: StrictModel, ignore: tuple[str, ...] = ("output_dir",)) -> str:
    """A stable hash of what a config computes (``output_dir`` and progress flags excluded).

    Values equal to their defaults are left out, so adding a new option with a default that keeps the old
    behaviour does not invalidate artefacts trained before it existed.
    """
    data = cfg.model_dump(mode="json", exclude_defaults=True)
    for key in ignore:
        data.pop(key, None)
    if isinstance(data.get("train"), dict):
        data["train"].pop("progress", None)
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


class StudySuite(StrictModel):
    """Several studies run one after the other (e.g. the paper's BERT-base and RoBERTa-large settings)."""

    studies: list[StudyConfig] = Field(min_length=1)
