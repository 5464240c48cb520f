"""A study's sweep stage takes any registered population generator (read from the registry, no Literal)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from adaptermix.pipeline.config import SweepStage
from adaptermix.sweep.subsets import SUBSET_GENERATORS, SubsetGenerator


def test_a_population_generator_registered_later_is_a_valid_study_generator() -> None:
    with pytest.raises(ValidationError, match="not a population generator"):
        SweepStage(generator="every_other")
    toy = SubsetGenerator("every_other", "", False, False, lambda req: [], lambda n, per_k: {}, "a toy")
    with SUBSET_GENERATORS.registered("every_other", toy):
        assert SweepStage(generator="every_other").generator == "every_other"
    with pytest.raises(ValidationError, match="not a population generator"):
        SweepStage(generator="greedy")  # tagged: Alg. 1's picks have their own stage
