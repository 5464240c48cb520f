"""The cached frozen prefix (adaptermix.backbone.prefix): bit-identical logits for every method and
architecture, where each method's prefix ends, fallbacks (autograd, train mode, AdaMix, budget, wrong
batch) and the sweep runner's results with and without the cache."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from adaptermix.artefact import new_model
from adaptermix.backbone.loading import Encoder, cast_encoder
from adaptermix.backbone.prefix import FrozenPrefix
from adaptermix.data import load_task
from adaptermix.data.config import DataConfig
from adaptermix.methods import MethodConfig
from adaptermix.model import HeadConfig
from adaptermix.sweep.runner import SweepContext, evaluate_group
from adaptermix.sweep.spec import SweepSpec
from adaptermix.training.batching import eval_batches, tokenize
from adaptermix.training.evaluate import predict
from helpers import TOY_SENTIMENT, make_adapter, toy_data
from tiny import ARCHS, tiny_encoder

METHODS = {
    "pfeiffer": {},
    "pfeiffer-block": {"original_ln_before": True},
    "houlsby": {},
    "lora": {},
}


def encoder_in(arch: str, dtype: torch.dtype) -> Encoder:
    enc = tiny_encoder(arch)
    if dtype == torch.float32:
        return enc
    return cast_encoder(Encoder(enc.name, copy.deepcopy(enc.model), enc.tokenizer, enc.spec, enc.fingerprint), dtype)


def random_model(enc: Encoder, method: str, seed: int = 0):
    name = method.split("-")[0]
    model = new_model(enc, MethodConfig(name=name, bottleneck_size=8, **METHODS[method]), HeadConfig(), TOY_SENTIMENT)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.body.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    model.body.to(enc.dtype)  # as a sweep's live model holds it: in the encoder's format
    return model.eval()


@pytest.fixture(scope="module")
def tset():
    task = load_task(DataConfig(**toy_data()), splits=("test",))
    return tokenize(tiny_encoder().tokenizer, task.split("test"), 32, False)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("method", sorted(METHODS))
def test_cached_prefix_gives_bit_identical_logits(arch, method, dtype, tset):
    if method == "pfeiffer-block" and arch == "distilbert":
        pytest.skip("DistilBERT has no output sub-block (original_ln_before is BERT/RoBERTa only)")
    enc = encoder_in(arch, dtype)
    model = random_model(enc, method)
    prefix = model.frozen_prefix()
    assert prefix is not None
    try:
        plain = predict(model, tset, 4)
        first = predict(model, tset, 4, prefix)  # captures
        assert prefix.misses > 0 and prefix.hits == 0 and prefix.enabled, prefix.reason
        np.testing.assert_array_equal(first, plain)
        # A different mixture in the same live body: the prefix is reused, the logits still identical.
        with torch.no_grad():
            for p in model.body.parameters():
                p.mul_(-0.5).add_(0.01)
        plain2 = predict(model, tset, 4)
        cached2 = predict(model, tset, 4, prefix)
        assert prefix.hits == prefix.misses and prefix.enabled, prefix.reason
        np.testing.assert_array_equal(cached2, plain2)
        assert not np.array_equal(plain2, plain)  # the mixture did change the model
    finally:
        model.detach_body()


@pytest.mark.parametrize("arch", ARCHS)
def test_where_each_method_prefix_ends(arch):
    enc = tiny_encoder(arch)
    layers = enc.spec.layers
    for method, boundary in (("houlsby", f"{layers}.0"), ("lora", f"{layers}.0"),
                             ("pfeiffer", f"{layers}.0.output" if arch != "distilbert" else f"{layers}.0")):
        model = random_model(enc, method)
        try:
            prefix = model.frozen_prefix()
            assert prefix is not None and prefix.boundary == boundary, (method, prefix and prefix.boundary)
        finally:
            model.detach_body()


def test_fallbacks_are_full_forwards(tset):
    enc = tiny_encoder()
    model = random_model(enc, "pfeiffer")
    try:
        batches = [b for _, b in eval_batches(tset, 4)]
        prefix = model.frozen_prefix()
        with torch.inference_mode():
            ref = model(**batches[0])
            assert torch.equal(model(**batches[0], prefix=prefix, prefix_key=0), ref)
            # The wrong batch under a cached key: checked against the tokens, recomputed, not replayed.
            assert torch.equal(model(**batches[1], prefix=prefix, prefix_key=0), model(**batches[1]))
            assert prefix.hits == 0
        # Autograd on (FGSM, training): nothing cached or replayed.
        before = (prefix.hits, prefix.misses)
        out = model(**batches[0], prefix=prefix, prefix_key=0)
        assert out.requires_grad and (prefix.hits, prefix.misses) == before
        # A zero budget caches nothing; the results stay the same.
        none = model.frozen_prefix(budget_bytes=0)
        assert none is not None and not none.enabled
        np.testing.assert_array_equal(predict(model, tset, 4, none), predict(model, tset, 4))
        small = model.frozen_prefix(budget_bytes=1)
        predict(model, tset, 4, small)
        assert small.enabled and small.nbytes == 0
    finally:
        model.detach_body()


def test_adamix_body_has_no_prefix_cache():
    enc = tiny_encoder()
    model = new_model(enc, MethodConfig(name="adamix", bottleneck_size=8), HeadConfig(), TOY_SENTIMENT)
    try:
        assert model.frozen_prefix() is None  # its router is a pre-hook on the encoder's forward
    finally:
        model.detach_body()


def test_a_failed_check_turns_the_cache_off(tset):
    enc = tiny_encoder()
    model = random_model(enc, "pfeiffer")
    try:
        prefix = model.frozen_prefix()
        assert prefix is not None
        prefix.within_block = "intermediate"  # whose output is not the block's: the capture must notice
        out = predict(model, tset, 4, prefix)
        assert not prefix.enabled and "not its block's output" in prefix.reason
        np.testing.assert_array_equal(out, predict(model, tset, 4))
    finally:
        model.detach_body()


def test_for_sites_needs_sites():
    with pytest.raises(ValueError, match="without sites"):
        FrozenPrefix.for_sites(tiny_encoder(), [])


@pytest.mark.parametrize("method", ["pfeiffer", "houlsby", "lora"])
def test_sweep_results_are_the_same_with_and_without_the_cache(tmp_path, method):
    enc = tiny_encoder()
    pool = {n: str(make_adapter(tmp_path / n, enc, method, seed=i, info=TOY_SENTIMENT, scale=0.5, data=toy_data()))
            for i, n in enumerate(("a", "b", "c"))}
    spec = SweepSpec(pool=pool, batch_size=4, precision="fp32")
    from adaptermix.sweep.spec import Trial

    subsets = [("a",), ("a", "b"), ("a", "c"), ("a", "b", "c"), ("b",), ("b", "c")]
    results = {}
    for cached in (True, False):
        ctx = SweepContext.prepare(spec, enc)
        ctx.prefix_cache = cached
        try:
            out = []
            for s in subsets:
                target = s[0]
                trial = Trial(target=target, subset=s, rule="average", split="test", evaluation="clean", seed=0)
                out.append(evaluate_group(ctx, [trial])[0].metrics)
            results[cached] = out
            if cached:
                es_a, es_b = ctx.eval_sets["a"], ctx.eval_sets["b"]
                assert es_a.prefix is not None and es_b.prefix is not None
                assert es_b.prefix.hits > 0 and es_a.prefix.hits > 0
                assert es_a.prefix.nbytes == 0  # cleared when the sweep moved on to target b
        finally:
            ctx.close()
    assert results[True] == results[False]
