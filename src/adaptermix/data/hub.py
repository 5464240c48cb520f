"""Hugging Face ``datasets`` as a data source (needs internet and ``pip install adaptermix[hub]``).

:data:`HUB_DATASETS` maps the paper's 13 datasets (plus CoLA and STS-B, which the offline pack also
has) to Hub ids, configs, columns and label names. Any other Hub dataset can be named with
``data.hf_name`` plus ``data.columns`` / ``data.label_names`` / ``data.task`` / ``data.problem``.

Splits follow the paper (Sec. 4.1 and App. A.3): GLUE tasks keep their public train split and use the
public evaluation split as test (the GLUE test labels are hidden); Ag News, Authorship, Financial, IMDB,
Tweets and Wiki-Toxic are partitioned 8:1:1 into train/validation/test. Any split a dataset lacks is
carved out of its train split, 10% each (so 9:1 for GLUE's missing validation split), with the seeded
stratified procedure the offline data pack used (:func:`~adaptermix.data.sampling.stratified_split`).

``datasets`` is imported only when a Hub dataset is loaded; the loader takes the ``load_dataset``
function as a constructor argument, so tests inject a fake one and never touch the network.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from adaptermix.core.errors import DataError, ResourceError
from adaptermix.data.config import DataConfig, default_metric
from adaptermix.data.sampling import stratified_split
from adaptermix.data.schema import SPLITS, Example, Problem, TaskData, TaskInfo, TaskKind
from adaptermix.data.sources import DATA_SOURCES, LabelCodec, LabelMode, infer_label_names, make_example

SPLIT_SEED = 13  # the seed the offline data pack's splits were made with
HOLDOUT_FRACTION = 0.1  # each carved split is 10% of the source train rows (8:1:1 when two are carved)


@dataclass(frozen=True)
class HubSpec:
    """How to read one Hub dataset: id, config, columns, labels, and where each split comes from.

    ``splits`` maps our split name to the Hub splits concatenated to form it; a split not listed is
    carved out of ``train``.
    """

    hf_name: str
    hf_config: str | None
    text: str
    label: str
    label_names: tuple[str, ...] = ()
    text_pair: str | None = None
    problem: Problem = "classification"
    metric: str = "accuracy"
    secondary_metrics: tuple[str, ...] = ()
    splits: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: {"train": ("train",)})
    domain: str = ""
    fold_case: bool = False  # match string labels case-insensitively

    @property
    def task(self) -> TaskKind:
        return "pair" if self.text_pair is not None else "single"


def _glue(config: str, text: str, pair: str | None, labels: tuple[str, ...], **kw: Any) -> HubSpec:
    """A GLUE task: public train -> train, public dev -> test (paper Sec. 4.1); validation is carved."""
    test = kw.pop("test", "validation")
    splits = {"train": ("train",), "test": (test,)}
    return HubSpec("nyu-mll/glue", config, text, "label", labels, pair, splits=splits, **kw)


def _paper_811(
    hf_name: str, hf_config: str | None, text: str, label: str, labels: tuple[str, ...], **kw: Any
) -> HubSpec:
    """A non-GLUE task of the paper: its train split partitioned 8:1:1 (paper App. A.3)."""
    return HubSpec(hf_name, hf_config, text, label, labels, **kw)


_NLI = ("entailment", "not_entailment")
_GUARDIAN_AUTHORS = (
    "catherinebennett", "georgemonbiot", "hugoyoung", "jonathanfreedland", "martinkettle", "maryriddell",
    "nickcohen", "peterpreston", "pollytoynbee", "royhattersley", "simonhoggart", "willhutton", "zoewilliams",
)  # fmt: skip

HUB_DATASETS: dict[str, HubSpec] = {
    "mnli": _glue("mnli", "premise", "hypothesis", ("entailment", "neutral", "contradiction"),
                  test="validation_matched", domain="GLUE: multi-genre natural language inference"),
    "qnli": _glue("qnli", "question", "sentence", _NLI, domain="GLUE: Wikipedia question answering"),
    "rte": _glue("rte", "sentence1", "sentence2", _NLI, domain="GLUE: textual entailment"),
    "mrpc": _glue("mrpc", "sentence1", "sentence2", ("not_equivalent", "equivalent"),
                  secondary_metrics=("f1",), domain="GLUE: news paraphrase"),
    "qqp": _glue("qqp", "question1", "question2", ("not_duplicate", "duplicate"),
                 secondary_metrics=("f1",), domain="GLUE: Quora question pairs"),
    "sst2": _glue("sst2", "sentence", None, ("negative", "positive"), domain="GLUE: movie reviews"),
    # CoLA and STS-B are not among the paper's 13; they are here because the offline pack has them.
    "cola": _glue("cola", "sentence", None, ("unacceptable", "acceptable"), metric="matthews_correlation",
                  secondary_metrics=("accuracy",), domain="GLUE: grammatical acceptability"),
    "stsb": _glue("stsb", "sentence1", "sentence2", (), problem="regression", metric="pearson",
                  secondary_metrics=("spearman",), domain="GLUE: semantic textual similarity"),
    # PubMed 20k RCT ships its own train/validation/test; its labels are strings whose case varies
    # between mirrors, hence fold_case.
    "rct": HubSpec("armanc/pubmed-rct20k", None, "text", "label",
                   ("background", "objective", "methods", "results", "conclusions"),
                   splits={s: (s,) for s in SPLITS}, fold_case=True,
                   domain="biology: medical abstract sentences"),
    "ag_news": _paper_811("fancyzhx/ag_news", None, "text", "label",
                          ("World", "Sports", "Business", "Sci/Tech"), domain="news: topics"),
    # Deviation: the cross-topic config splits articles by topic and its train split has only 112
    # articles, so all three splits are pooled before the 8:1:1 split (an in-domain setting).
    "authorship": _paper_811("guardian_authorship", "cross_topic_1", "article", "author", _GUARDIAN_AUTHORS,
                             splits={"train": ("train", "validation", "test")},
                             domain="news: Guardian authorship attribution"),
    "financial": _paper_811("takala/financial_phrasebank", "sentences_50agree", "sentence", "label",
                            ("negative", "neutral", "positive"), domain="news: financial sentiment"),
    "imdb": _paper_811("stanfordnlp/imdb", None, "text", "label", ("neg", "pos"), domain="movie reviews"),
    "tweets": _paper_811("tweets-hate-speech-detection/tweets_hate_speech_detection", None, "tweet", "label",
                         ("no-hate", "hate"), domain="informal text: hate speech in tweets"),
    "wiki_toxic": _paper_811("OxAISH-AL-LLM/wiki_toxic", None, "comment_text", "label", ("non-toxic", "toxic"),
                             domain="informal text: toxic Wikipedia comments"),
}  # fmt: skip


def hub_spec(cfg: DataConfig) -> HubSpec:
    """The spec for ``cfg``: a built-in one (``hf_name``/``hf_config`` override its id), or one built
    from ``cfg`` for any other Hub dataset named by ``hf_name`` (its train/validation/test splits)."""
    spec = HUB_DATASETS.get(cfg.name)
    if spec is not None:
        return dataclasses.replace(spec, **_explicit_overrides(cfg))
    if cfg.hf_name is None:
        known = ", ".join(sorted(HUB_DATASETS))
        raise DataError(f"unknown Hugging Face dataset {cfg.name!r}; built-in: {known} (or set data.hf_name)")
    problem = cfg.resolved_problem
    text, pair, label = cfg.columns.keys()
    return HubSpec(
        cfg.hf_name,
        cfg.hf_config,
        text,
        label,
        tuple(cfg.label_names or ()),
        pair if cfg.resolved_task == "pair" else None,
        problem=problem,
        metric=cfg.metric or default_metric(problem),
        splits={s: (s,) for s in SPLITS},
    )


def _explicit_overrides(cfg: DataConfig) -> dict[str, Any]:
    """Fields the config sets (to a non-default value) override a built-in entry, e.g. a mirror with
    other columns; a column left at its default keeps the entry's column."""
    given = cfg.non_default_fields()
    out: dict[str, Any] = {
        k: getattr(cfg, k) for k in ("hf_name", "hf_config", "metric", "problem") if k in given
    }
    out.update({k: v for k, v in cfg.columns.model_dump().items() if v is not None})
    if "label_names" in given:
        out["label_names"] = tuple(cfg.label_names or ())
    return out


def hf_load_dataset(path: str, name: str | None = None) -> Mapping[str, Any]:
    """``datasets.load_dataset(path, name)``, imported on first use; failures become one line."""
    try:
        import datasets
    except ImportError:
        raise ResourceError(
            "the 'hf' data source needs the Hugging Face datasets library: pip install adaptermix[hub]"
        ) from None
    try:
        return datasets.load_dataset(path, name)
    except Exception as exc:  # network, unknown id, script datasets, ...: all the user's to fix
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"could not load Hugging Face dataset {path!r} ({name}): {first}") from None


class HubLoader:
    """The ``hf`` data source. ``load_dataset(path, name)`` returns split name -> dataset, where a
    dataset has ``column_names``, column access ``ds[column] -> list`` and optionally ``features``."""

    def __init__(self, load_dataset: Callable[[str, str | None], Mapping[str, Any]] = hf_load_dataset):
        self.load_dataset = load_dataset

    def __call__(self, cfg: DataConfig, splits: tuple[str, ...]) -> TaskData:
        spec = hub_spec(cfg)
        source = f"{spec.hf_name}" + (f"/{spec.hf_config}" if spec.hf_config else "")
        hub = self.load_dataset(spec.hf_name, spec.hf_config)
        mapping = {s: hf for s, hf in spec.splits.items() if all(h in hub for h in hf)}
        if "train" not in mapping:
            raise DataError(
                f"{source}: no {'+'.join(spec.splits.get('train', ('train',)))} split (has: {', '.join(hub)})"
            )
        carved = [s for s in ("test", "validation") if s not in mapping]  # data-pack order: test first
        needed = {s for s in splits if s in mapping} | ({"train"} if set(splits) & set(carved) else set())
        names, mode = _label_names(spec, hub, mapping["train"])
        codec = LabelCodec(problem=spec.problem, names=names, mode=mode, fold_case=spec.fold_case)
        rows = {s: _examples(hub, mapping[s], spec, codec, source) for s in sorted(needed)}
        if carved and "train" in rows:
            parts = stratified_split(
                rows["train"],
                {s: HOLDOUT_FRACTION for s in carved},
                SPLIT_SEED,
                stratify=spec.problem == "classification",
            )
            rows.update(parts)
        info = TaskInfo(
            name=cfg.name,
            task=spec.task,
            problem=spec.problem,
            label_names=names,
            metric=cfg.metric or spec.metric,
            secondary_metrics=spec.secondary_metrics,
            domain=spec.domain,
        )
        data = TaskData(info=info)
        for split in splits:
            if not rows.get(split):
                raise DataError(f"{source}: {split!r} split is empty")
            data.splits[split] = rows[split]
        return data


def _label_names(
    spec: HubSpec, hub: Mapping[str, Any], train: Sequence[str]
) -> tuple[tuple[str, ...], LabelMode]:
    """Label names: the dataset's own ClassLabel names when it has them (the integers in the data index
    those), else the spec's, else inferred from the train labels."""
    if spec.problem == "regression":
        return (), "name_or_index"
    features = getattr(hub[train[0]], "features", None) or {}
    own = getattr(features.get(spec.label), "names", None)
    if own:
        return tuple(own), "name_or_index"
    if spec.label_names:
        return spec.label_names, "name_or_index"
    raw = [x for hf in train if spec.label in hub[hf].column_names for x in hub[hf][spec.label]]
    return infer_label_names(raw), "name"


def _examples(
    hub: Mapping[str, Any], hf_splits: Sequence[str], spec: HubSpec, codec: LabelCodec, source: str
) -> list[Example]:
    """Checked examples of the concatenated Hub splits, read column-wise (fast on Arrow datasets)."""
    out: list[Example] = []
    keys = ("text", "text_pair" if spec.text_pair else None, "label")
    for hf in hf_splits:
        ds = hub[hf]
        cols = [c for c in (spec.text, spec.text_pair, spec.label) if c is not None]
        for col in cols:
            if col not in ds.column_names:
                raise DataError(
                    f"{source}[{hf}]: missing column {col!r} (columns: {', '.join(ds.column_names)})"
                )
        values = [ds[c] for c in cols]
        for i, vals in enumerate(zip(*values, strict=True)):
            row = dict(zip([k for k in keys if k is not None], vals, strict=True))
            out.append(make_example(row, keys, codec, f"{source}[{hf}] row {i}"))
    return out


DATA_SOURCES.register("hf", HubLoader())
