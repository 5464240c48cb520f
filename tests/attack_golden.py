"""Golden TextFooler runs on the fake victims of ``test_textfooler``: everything an attack run produces.

``python tests/attack_golden.py`` (with ``PYTHONPATH=src:tests``) wrote ``tests/fixtures/attack_golden.json``
ONCE, on the implementation before the generic :class:`~adaptermix.attacks.attack.Attack` (TextFooler's own
lock-step loop, commit 93c507f). ``test_attack.py`` checks that the recipe run through ``Attack.run`` gives
exactly these reports (all but the recorded config, checked apart: adversarial texts, statuses,
probabilities, query and model-call counts, summaries) and victim/encoder call counts. Do not regenerate it
to make a failing test pass.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from adaptermix.attacks.stopwords import STOPWORDS
from adaptermix.attacks.textfooler import TextFoolerConfig, TextFoolerResources
from adaptermix.attacks.transformations import StaticSynonyms
from adaptermix.attacks.victim import CachedVictim
from adaptermix.data.schema import Example
from test_textfooler import (
    LOCKSTEP_EXAMPLES,
    SYNONYMS,
    CountingEncode,
    FakePos,
    KeywordVictim,
    LexiconVictim,
)

GOLDEN = Path(__file__).parent / "fixtures" / "attack_golden.json"

# (name, config overrides): the settings whose code paths differ in the loop or the constraints.
SETTINGS: list[tuple[str, dict[str, Any]]] = [
    ("default", {}),
    ("one-in-flight", {"examples_in_flight": 1}),
    ("three-in-flight", {"examples_in_flight": 3}),
    ("budget-4", {"max_queries": 4, "examples_in_flight": 3}),
    ("budget-9", {"max_queries": 9}),
    ("no-cache", {"cache": False, "examples_in_flight": 4}),
    ("unbatched", {"batch": False, "cache": False}),
    ("previous-window", {"sim_compare_against": "previous", "sim_window": 3}),
    ("skip-short", {"skip_short_texts": True, "sim_threshold": 0.95}),
    ("cosine-loose", {"sim_metric": "cosine", "sim_threshold": 0.5, "allow_verb_noun_swap": False}),
    ("max-examples", {"max_examples": 5, "examples_in_flight": 2}),
]
VICTIMS: dict[str, Callable[[], Any]] = {
    "lexicon": LexiconVictim,
    "keyword": lambda: KeywordVictim(("good", "great", "fine")),
    "pair": lambda: KeywordVictim(("good", "great", "fine"), is_pair=True),
}


def examples_for(victim: str) -> list[Example]:
    if victim == "pair":
        return [Example("premise text", e.label, e.text) for e in LOCKSTEP_EXAMPLES]
    return list(LOCKSTEP_EXAMPLES)


def golden_runs(build: Callable[[TextFoolerConfig, TextFoolerResources], Any]) -> dict[str, Any]:
    """Every (setting, victim) run of the attack ``build(cfg, resources)``: report and call counts."""
    out: dict[str, Any] = {}
    for name, overrides in SETTINGS:
        for vname, make in VICTIMS.items():
            cfg = TextFoolerConfig(**overrides)
            encode = CountingEncode()
            res = TextFoolerResources(StaticSynonyms(SYNONYMS), FakePos(), encode, STOPWORDS)
            raw = make()
            victim = CachedVictim(raw, cache=cfg.cache)
            report = build(cfg, res).run(examples_for(vname), victim)
            assert report.config == cfg.model_dump(mode="json")  # the recorded config: the attack's own
            out[f"{name}/{vname}"] = {
                "report": {k: v for k, v in report.to_dict().items() if k != "config"},
                "victim": vars(victim.stats),
                "encoder": {"calls": encode.calls, "texts": encode.texts},
            }
    return json.loads(json.dumps(out))  # canonical: tuples as lists, floats as JSON reads them back


if __name__ == "__main__":
    from adaptermix.attacks.textfooler import TextFoolerJin2019

    GOLDEN.parent.mkdir(exist_ok=True)
    runs = golden_runs(TextFoolerJin2019)
    lines = [json.dumps({key: runs[key]}, sort_keys=True) for key in sorted(runs)]  # one run per line
    GOLDEN.write_text("{\n" + ",\n".join(line[1:-1] for line in lines) + "\n}\n")
    print(GOLDEN, GOLDEN.stat().st_size)
