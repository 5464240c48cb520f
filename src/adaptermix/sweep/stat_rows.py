"""The typed rows of the sweep statistics (:mod:`adaptermix.sweep.stats`): the trial row the tables read
(:class:`TrialRow`, its setting as :data:`SETTING_FIELDS`), one dataclass per table (Fig. 3's per-k
statistics, Table 1's drops, the FSD correlations, Fig. 7's greedy/selection rows, "which rule?", the recorded
AdapterSoup choices) and :class:`SweepStats` holding them. Data only: the computations are in ``stats``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

SETTING_FIELDS = (
    "evaluation",
    "eval_params_json",
    "rule",
    "rule_params_json",
    "split",
    "max_eval_examples",
    "seed",
    "max_length",
)
FSD_STATS = ("mean_pairwise_fsd", "target_sign_change")
ALL = "*"

#: A setting's identity: the values of :data:`SETTING_FIELDS` of a trial, in that order.
SettingKey = tuple[Any, ...]


#: The setting fields that are not the rule: a rule's all-domain mixture is compared with the single
#: adapter measured under the same ones.
BASE_FIELDS = tuple(f for f in SETTING_FIELDS if f not in ("rule", "rule_params_json"))


def setting_key(row: Mapping[str, Any]) -> SettingKey:
    """The setting of a store row of the ``trials`` table (its :data:`SETTING_FIELDS` values, in order)."""
    return tuple(row[f] for f in SETTING_FIELDS)


@dataclass(frozen=True)
class TrialRow:
    """One stored trial with a metric, as the statistics read it: its setting and the setting's label as
    fields (store rows carry neither), the mixture, the metric and its FSD statistics.

    Values are the store's own (no conversion), so the tables and CSVs computed from them do not change.
    Rows built by hand (e.g. for :func:`rule_comparison`) may leave out ``metric_name`` and the FSD
    statistics.
    """

    setting: SettingKey
    label: str  # the setting's short label (:func:`setting_labels`), "" where none is needed
    target: str
    k: int
    tag: str
    subset_json: str
    metric: float
    metric_name: str = ""
    mean_pairwise_fsd: float | None = None
    target_sign_change: float | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any], label: str = "") -> TrialRow:
        """A store row of the ``trials`` table (with a metric) as a typed row."""
        return cls(setting_key(row), label, row["target"], row["k"], row["tag"], row["subset_json"],
                   row["metric"], row.get("metric_name", ""), row.get("mean_pairwise_fsd"),
                   row.get("target_sign_change"))

    @property
    def evaluation(self) -> str:
        return str(self.setting[0])

    @property
    def rule(self) -> str:
        return str(self.setting[2])

    @property
    def rule_params_json(self) -> str:
        return str(self.setting[3])

    @property
    def base(self) -> SettingKey:
        """The setting without the rule (:data:`BASE_FIELDS`)."""
        return tuple(v for f, v in zip(SETTING_FIELDS, self.setting, strict=True) if f in BASE_FIELDS)

    def fsd_stat(self, name: str) -> float | None:
        """One of :data:`FSD_STATS` by name."""
        if name not in FSD_STATS:
            raise KeyError(name)
        value: float | None = getattr(self, name)
        return value


def trial_rows(raw: Iterable[Mapping[str, Any]]) -> list[TrialRow]:
    """The store rows that have a metric, as :class:`TrialRow` labelled by :func:`setting_labels`."""
    kept = [r for r in raw if r["metric"] is not None]
    label = setting_labels(setting_key(r) for r in kept)
    return [TrialRow.from_row(r, label[setting_key(r)]) for r in kept]


@dataclass(frozen=True)
class KStats:
    setting: str
    evaluation: str
    target: str
    metric_name: str
    k: int
    count: int
    mean: float
    var: float
    std: float
    min: float
    max: float


@dataclass(frozen=True)
class DropRow:
    setting: str
    evaluation: str
    target: str
    k_max: int | None
    metric_k1: float
    metric_kmax: float
    drop: float
    abs_drop: float
    rel_drop_pct: float


@dataclass(frozen=True)
class CorrelationRow:
    setting: str
    evaluation: str
    target: str
    fsd_stat: str
    k_range: str
    n: int
    pearson_r: float
    pearson_p: float
    spearman_r: float
    spearman_p: float
    # Within-target correlation; only on pooled rows (for one target it would equal pearson_r).
    rm_r: float = math.nan
    rm_p: float = math.nan


@dataclass(frozen=True)
class GreedyRow:
    setting: str
    evaluation: str
    target: str
    l: int  # noqa: E741 - the paper's name for the mixture size in Fig. 7
    greedy_min: float
    greedy_max: float
    upper: float
    lower: float
    n: int
    soup_similarity: float = math.nan  # AdapterSoup, centroid similarity: the selection's first l adapters
    soup_cluster: float = math.nan  # AdapterSoup, clustering
    random: float = math.nan  # mean over the evaluated population mixtures of size l with the target
    random_n: int = 0  # how many (per target; on * rows: summed over targets)


#: Trial tag -> the GreedyRow field of its pick.
PICK_FIELDS = {
    "greedy_min": "greedy_min",
    "greedy_max": "greedy_max",
    "adaptersoup_similarity": "soup_similarity",
    "adaptersoup_cluster": "soup_cluster",
}
#: The selections compared at equal l (``selections`` table), with their display names.
CONTENDERS = {
    "greedy_min": "greedy min-FSD",
    "soup_similarity": "AdapterSoup similarity",
    "soup_cluster": "AdapterSoup cluster",
    "random": "random",
}


@dataclass(frozen=True)
class SelectionRow:
    setting: str
    evaluation: str
    target: str
    l: int  # noqa: E741
    greedy_min: float
    soup_similarity: float
    soup_cluster: float
    random: float
    best: str  # the winning selection ("tie: a, b" when several share the best metric)
    margin: float  # best - runner-up, in the metric's units (x 100 = points)
    soup_similarity_vs_greedy: float  # soup_similarity - greedy_min
    soup_similarity_vs_random: float  # soup_similarity - random


#: Extra storage per domain of a rule's all-domain mixture, beside the one shared adapter every rule keeps:
#: (bits per parameter, what). The masked rules of adaptermix.merging.masked_rules / adaptermix.artefacts.masked keep
#: per domain a packed 1-bit mask and one float32 scalar: 1 + 32/P bits per parameter plus < 8 bits of
#: padding (docs/masked-merging.md, "Storage"); every other rule keeps nothing per domain.
MASKED_STORAGE: dict[str, tuple[float, str]] = {
    "emr": (1.0, "1 bit/param + 1 scalar"),  # the mask and the rescaler s_d
    "tall_mask": (1.0, "1 bit/param + 1 scalar"),  # the mask, and a scalar 1.0 kept for one artefact format
}
STATIC_STORAGE = (0.0, "none (one shared adapter)")
#: Rules left out of the "which rule?" comparison: the paper's pruning (Fig. 8 reports it).
RULES_NOT_COMPARED = ("sparse_fsd",)


@dataclass(frozen=True)
class RuleRow:
    setting: str  # the rule's setting label (evaluation/rule/split ...)
    evaluation: str
    rule: str  # name, plus its parameters as JSON when it has any
    target: str
    k: int | None  # N: the all-domain mixture's size (None on * rows)
    metric_single: float  # the target's own adapter (k = 1)
    metric_all: float  # the all-domain mixture (k = N)
    drop_pts: float  # (single - all) x 100: percentage points, positive = the mixture is worse
    pct_of_single: float  # all / single x 100
    storage_bits_per_param: float  # extra per domain, beside the shared adapter
    storage: str
    n: int  # 1, or the targets averaged (* rows)


@dataclass(frozen=True)
class SoupChoiceRow:
    generator: str
    target: str
    rank: int  # 1 = the target itself, then the chosen others in order
    adapter: str
    score: float  # cosine (similarity) or share (cluster); NaN for the target
    score_kind: str
    target_texts: str  # "validation" | "train"
    n_target_texts: int


@dataclass(frozen=True)
class SweepStats:
    per_k: list[KStats]
    drops: list[DropRow]
    correlations: list[CorrelationRow]
    greedy: list[GreedyRow]
    selections: list[SelectionRow] = field(default_factory=list)
    rules: list[RuleRow] = field(default_factory=list)
    adaptersoup: list[SoupChoiceRow] = field(default_factory=list)

    def tables(self) -> dict[str, list[Any]]:
        """The four paper tables, then the optional ones that have rows (see the module)."""
        out: dict[str, list[Any]] = {
            "per_k": self.per_k,
            "drops": self.drops,
            "correlations": self.correlations,
            "greedy": self.greedy,
        }
        for name in OPTIONAL_TABLES:
            if getattr(self, name):
                out[name] = getattr(self, name)
        return out


OPTIONAL_TABLES = ("selections", "rules", "adaptersoup")


def setting_labels(keys: Iterable[SettingKey]) -> dict[SettingKey, str]:
    """Short labels of settings (:func:`setting_key`): ``evaluation/rule/split``, plus any other field that
    tells apart two settings which would otherwise get the same label (e.g. ``seed=1`` when a store holds
    two seeds)."""
    base = (0, 2, 4)
    groups: dict[tuple[Any, ...], list[SettingKey]] = defaultdict(list)
    for s in set(keys):
        groups[tuple(s[i] for i in base)].append(s)
    labels: dict[SettingKey, str] = {}
    for head, settings in groups.items():
        varying = [
            i for i in range(len(SETTING_FIELDS)) if i not in base and len({s[i] for s in settings}) > 1
        ]
        for s in settings:
            extra = "".join(f" {SETTING_FIELDS[i].removesuffix('_json')}={s[i]}" for i in varying)
            labels[s] = "/".join(map(str, head)) + extra
    return labels
