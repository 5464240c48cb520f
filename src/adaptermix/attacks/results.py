"""Results of a word-level attack: one record per example, and the aggregate statistics.

Definitions follow TextAttack's attack summary:

- *skipped*: the victim already misclassifies the clean example; it is not attacked;
- *success* / *failed*: the attack did / did not change the prediction of a correctly classified example
  (running out of candidates or of query budget is a failure);
- accuracy under attack = failed / all examples; attack success rate = success / (success + failed);
- mean % perturbed words over successful attacks; mean queries over attacked (non-skipped) examples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Status = Literal["success", "failed", "skipped"]


@dataclass(frozen=True)
class Swap:
    """One accepted word replacement, in the order the search made it."""

    index: int  # word index in the attacked text (punctuation not counted)
    original: str
    new: str


@dataclass(frozen=True)
class AttackOutcome:
    """What happened to one example; ``adversarial`` is the perturbed attacked column."""

    index: int
    label: int
    text: str
    text_pair: str | None
    attacked_column: Literal["text", "text_pair"]
    adversarial: str
    original_pred: int
    adversarial_pred: int
    original_gold_prob: float
    adversarial_gold_prob: float
    n_words: int
    swaps: tuple[Swap, ...]
    queries: int
    model_calls: int
    status: Status
    budget_exhausted: bool = False

    @property
    def n_perturbed(self) -> int:
        return len(self.swaps)

    @property
    def pct_perturbed(self) -> float:
        return 100.0 * self.n_perturbed / self.n_words if self.n_words else 0.0

    @property
    def adversarial_text(self) -> str:
        return self.adversarial if self.attacked_column == "text" else self.text

    @property
    def adversarial_text_pair(self) -> str | None:
        return self.adversarial if self.attacked_column == "text_pair" else self.text_pair

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["swaps"] = [asdict(s) for s in self.swaps]
        out.update(n_perturbed=self.n_perturbed, pct_perturbed=self.pct_perturbed)
        return out


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


@dataclass(frozen=True)
class AttackSummary:
    """Aggregate statistics of an attack run (``None`` where there is nothing to average)."""

    n_examples: int
    n_success: int
    n_failed: int
    n_skipped: int
    clean_accuracy: float
    accuracy_under_attack: float
    attack_success_rate: float | None
    mean_pct_perturbed: float | None
    mean_queries: float | None
    mean_model_calls: float | None
    n_budget_exhausted: int
    caps: dict[str, int | None] = field(default_factory=dict)

    @classmethod
    def of(
        cls, outcomes: Sequence[AttackOutcome], caps: dict[str, int | None] | None = None
    ) -> AttackSummary:
        by = {s: [o for o in outcomes if o.status == s] for s in ("success", "failed", "skipped")}
        attacked = by["success"] + by["failed"]
        n = len(outcomes)
        return cls(
            n_examples=n,
            n_success=len(by["success"]),
            n_failed=len(by["failed"]),
            n_skipped=len(by["skipped"]),
            clean_accuracy=len(attacked) / n if n else 0.0,
            accuracy_under_attack=len(by["failed"]) / n if n else 0.0,
            attack_success_rate=len(by["success"]) / len(attacked) if attacked else None,
            mean_pct_perturbed=_mean([o.pct_perturbed for o in by["success"]]),
            mean_queries=_mean([o.queries for o in attacked]),
            mean_model_calls=_mean([o.model_calls for o in attacked]),
            n_budget_exhausted=sum(o.budget_exhausted for o in outcomes),
            caps=dict(caps or {}),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AttackReport:
    """A whole run: the resolved attack config, the summary and every example's outcome."""

    attack: str
    config: dict[str, Any]
    summary: AttackSummary
    outcomes: tuple[AttackOutcome, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "attack": self.attack,
            "config": self.config,
            "summary": self.summary.to_dict(),
            "outcomes": [o.to_dict() for o in self.outcomes],
        }

    def examples_table(self, limit: int | None = 20, statuses: Sequence[Status] = ("success",)) -> str:
        """A Markdown table of adversarial examples with their originals (swapped words in bold)."""
        rows = [
            "| # | label | pred -> adv | original | adversarial | perturbed | queries |",
            "|---|---|---|---|---|---|---|",
        ]
        shown = [o for o in self.outcomes if o.status in statuses][:limit]
        for o in shown:
            original = o.text_pair if o.attacked_column == "text_pair" else o.text
            adv = _bold_swaps(o)
            rows.append(
                f"| {o.index} | {o.label} | {o.original_pred} -> {o.adversarial_pred} | {_cell(original or '')} "
                f"| {adv} | {o.n_perturbed} ({o.pct_perturbed:.0f}%) | {o.queries} |"
            )
        return "\n".join(rows) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _bold_swaps(outcome: AttackOutcome) -> str:
    from adaptermix.attacks.words import TokenizedText

    tok = TokenizedText.from_text(outcome.adversarial)
    for s in outcome.swaps:
        tok = tok.replace(s.index, f"**{s.new}**")
    return _cell(tok.text)
