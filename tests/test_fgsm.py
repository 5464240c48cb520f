"""FGSM on word embeddings: epsilon 0 is clean evaluation; the perturbation has max-norm epsilon on real tokens."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from adaptermix.artefact import load_adapter, model_from_adapter
from adaptermix.attacks.fgsm import fgsm_evaluate, fgsm_perturb
from adaptermix.attacks.model_victim import ModelVictim
from adaptermix.data.schema import Example, TaskInfo
from adaptermix.training.batching import collate, tokenize
from adaptermix.training.evaluate import evaluate, predict
from helpers import make_adapter
from tiny import ARCHS, tiny_encoder

INFO = TaskInfo("toy", "single", "classification", ("neg", "pos"))
ROWS = [Example("the movie was good", 1), Example("bad plot", 0), Example("great fun film with nice music", 1),
        Example("awful", 0), Example("not very good at all", 0)]


@pytest.fixture(params=ARCHS)
def setup(request, tmp_path):
    enc = tiny_encoder(request.param)
    model = model_from_adapter(load_adapter(make_adapter(tmp_path / "a", enc, scale=0.3)), enc)
    tset = tokenize(enc.tokenizer, ROWS, 32, False)
    yield model, tset
    model.detach_body()


def test_epsilon_zero_equals_clean(setup):
    model, tset = setup
    victim = ModelVictim(model)
    clean = evaluate(model, tset, INFO)
    attacked = fgsm_evaluate(victim, tset, INFO, epsilon=0.0)
    assert attacked["accuracy"] == clean["accuracy"]
    from adaptermix.attacks.fgsm import fgsm_outputs

    np.testing.assert_allclose(fgsm_outputs(victim, tset, 0.0), predict(model, tset), atol=1e-5)


def test_perturbation_max_norm_is_epsilon_on_real_tokens_only(setup):
    model, tset = setup
    victim = ModelVictim(model)
    batch = collate(tset, list(range(len(tset))))
    eps = 0.01
    emb = model.word_embeddings()(batch["input_ids"]).detach()
    adv = fgsm_perturb(victim, batch, tset.labels, eps)
    delta = (adv - emb).abs().amax(-1)  # per-token max-norm
    mask = victim.perturbable_mask(batch).bool()
    assert torch.allclose(delta[mask], torch.full_like(delta[mask], eps), atol=1e-7)
    assert torch.all(delta[~mask] == 0), "special tokens and padding must stay unperturbed"
    assert (~mask & batch["attention_mask"].bool()).any(), "the batch has special tokens"


def test_fgsm_increases_loss_on_average(setup):
    model, tset = setup
    victim = ModelVictim(model)
    batch = collate(tset, list(range(len(tset))))
    clean = victim.logits_from_embeddings(batch, model.word_embeddings()(batch["input_ids"]).detach())
    adv = victim.logits_from_embeddings(batch, fgsm_perturb(victim, batch, tset.labels, 0.5))
    ce = torch.nn.functional.cross_entropy
    assert ce(adv, tset.labels) > ce(clean, tset.labels)
