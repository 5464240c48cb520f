"""An independent check that adversarial examples satisfy TextFooler's constraints.

Written apart from the attack code on purpose (it imports none of the constraint or search modules):
given an :class:`AttackOutcome` and the same resources, it replays the recorded swaps and re-derives
every rule from the outcome's texts alone. Used by the tests on every example of a run, and available to
audit a real run (``verify_report``).

Checks: only the attacked column changed; the adversarial text differs from the original exactly at the
swapped words, each word at most once; no stop word replaced; each new word is a candidate of the old one;
the part of speech is kept; after each swap the similarity of the 15-word window around it (against the
original, or the previous text) reaches the threshold; statuses and counts agree with the texts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from adaptermix.attacks.results import AttackOutcome, AttackReport
from adaptermix.attacks.words import TOKEN_RE, TokenizedText, is_word


@dataclass
class ConstraintSpec:
    """The rules to check and the resources they need (mirrors a TextFooler config)."""

    stopwords: frozenset[str]
    candidates: Callable[[str], Sequence[str]]  # lower-case word -> allowed lower-case replacements
    word_pos: Callable[[Sequence[str], int], frozenset[str]] | None  # POS tags of words[i]; None: unchecked
    encode: Callable[[list[str]], np.ndarray] | None  # sentence encoder; None: similarity unchecked
    sim_threshold: float = 0.840845057
    sim_metric: str = "angular"
    window: int = 15
    compare_against: str = "original"
    skip_short_texts: bool = False
    allow_verb_noun_swap: bool = True
    tolerance: float = 1e-5


def _window(text: str, idx: int, size: int) -> str:
    """The substring of ``text`` spanning Jin et al.'s window of ``size`` words around word ``idx``.

    The cases are written out as in their ``attack_classification.py``; words are located by their
    character spans in ``text``, so punctuation between them is kept as the victim sees it.
    """
    spans = [m.span() for m in TOKEN_RE.finditer(text) if is_word(m.group())]
    n, half = len(spans), (size - 1) // 2
    if idx >= half and n - idx - 1 >= half:
        lo, hi = idx - half, idx + half + 1
    elif idx < half and n - idx - 1 >= half:
        lo, hi = 0, size
    elif idx >= half and n - idx - 1 < half:
        lo, hi = n - size, n
    else:
        lo, hi = 0, n
    return text[spans[max(lo, 0)][0] : spans[hi - 1][1]]


def _similar(spec: ConstraintSpec, a: str, b: str) -> float:
    assert spec.encode is not None
    e = np.asarray(spec.encode([a, b]), dtype=float)
    e = e / np.linalg.norm(e, axis=1, keepdims=True)
    cos = float(np.clip(e[0] @ e[1], -1.0, 1.0))
    return 1.0 - np.arccos(cos) / np.pi if spec.sim_metric == "angular" else cos


def _pos_ok(spec: ConstraintSpec, before: frozenset[str], after: frozenset[str]) -> bool:
    if not before and not after:
        return True
    nv = {"NOUN", "VERB"}
    if spec.allow_verb_noun_swap and before & nv and after & nv:
        return True
    return bool(before & after)


def verify_outcome(outcome: AttackOutcome, spec: ConstraintSpec) -> list[str]:
    """Every violated rule of one outcome, as readable messages (empty: all rules hold)."""
    errors: list[str] = []
    original_text = outcome.text_pair if outcome.attacked_column == "text_pair" else outcome.text
    if outcome.attacked_column == "text_pair" and outcome.adversarial_text != outcome.text:
        errors.append("premise (text) was modified in a pair task")
    orig = TokenizedText.from_text(original_text or "").words
    adv = TokenizedText.from_text(outcome.adversarial).words
    if len(orig) != len(adv):
        return errors + [f"word count changed: {len(orig)} -> {len(adv)}"]
    changed = {i for i, (a, b) in enumerate(zip(orig, adv, strict=True)) if a != b}
    indices = [s.index for s in outcome.swaps]
    if len(set(indices)) != len(indices):
        errors.append(f"a word was modified twice: {indices}")
    if changed != set(indices):
        errors.append(f"changed words {sorted(changed)} differ from recorded swaps {sorted(indices)}")
    if outcome.status == "skipped" and (outcome.swaps or outcome.original_pred == outcome.label):
        errors.append("skipped example was attacked or was classified correctly")
    if outcome.status == "success" and outcome.adversarial_pred == outcome.label:
        errors.append("success but the adversarial prediction is the gold label")
    if outcome.status == "failed" and outcome.adversarial_pred != outcome.label:
        errors.append("failed but the adversarial prediction is not the gold label")
    step = TokenizedText.from_text(original_text or "")
    for s in outcome.swaps:
        prev = step
        if not 0 <= s.index < len(orig) or orig[s.index] != s.original:
            errors.append(f"swap {s} does not match the original word")
            continue
        step = step.replace(s.index, s.new)
        if s.original.lower() in spec.stopwords:
            errors.append(f"stop word {s.original!r} was replaced")
        allowed = {c.lower() for c in spec.candidates(s.original.lower())}
        if s.new.lower() not in allowed:
            errors.append(f"{s.new!r} is not a candidate for {s.original!r}")
        if spec.word_pos is not None:
            before, after = spec.word_pos(prev.words, s.index), spec.word_pos(step.words, s.index)
            if not _pos_ok(spec, before, after):
                errors.append(f"part of speech changed: {s.original!r} -> {s.new!r}")
        if spec.encode is not None and not (spec.skip_short_texts and len(orig) < spec.window):
            ref = original_text or "" if spec.compare_against == "original" else prev.text
            sim = _similar(spec, _window(ref, s.index, spec.window), _window(step.text, s.index, spec.window))
            if sim < spec.sim_threshold - spec.tolerance:
                errors.append(
                    f"similarity {sim:.4f} < {spec.sim_threshold} after {s.original!r} -> {s.new!r}"
                )
    if step.text != outcome.adversarial:
        errors.append("replaying the swaps does not give the adversarial text")
    return errors


def verify_report(report: AttackReport, spec: ConstraintSpec) -> dict[int, list[str]]:
    """Violations per example index (only examples with at least one violation)."""
    found = {o.index: verify_outcome(o, spec) for o in report.outcomes}
    return {i: errs for i, errs in found.items() if errs}
