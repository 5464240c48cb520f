"""A cached frozen prefix: the encoder's work before the first adapter site, done once per batch.

In a sweep every mixture of a target runs the same frozen encoder over the same token batches, and
whatever precedes the first module an adapter changes is the same for all of them. :class:`FrozenPrefix`
records, on a batch's first forward, the inputs of the *boundary* module and the arguments every later
block is called with; each later forward of that batch calls the boundary and the remaining blocks with
exactly those arguments. Same modules, same inputs, same dtype, same batch: the last hidden state is
bit-identical to a full forward's, and the adapters' hooks run as usual (they sit inside the suffix).

The boundary is the first adapted block (the embeddings are cached: every method), or, when that block's
only adapted site is its feed-forward output and the architecture names the feed-forward output sub-block
(``EncoderSpec.ffn_block``: Pfeiffer on BERT/RoBERTa/ELECTRA), that sub-block — so layer 1's attention and
intermediate projection (with its GELU) are cached as well, and the suffix starts at layer 1's ``W_out``.

No upstream ``forward`` is copied: the suffix calls the encoder's own modules. Three assumptions about how
the encoder calls its blocks are checked on every capture, and the cache switches itself off (full
forwards from then on, one log line) when one fails: the boundary sub-block's output is its block's output
(no chunking, nothing after it); every later block gets the same arguments besides the hidden state (the
attention mask, ...); the last block's output is the model's ``last_hidden_state`` (no final norm).

Evaluation only: with autograd on (training, FGSM's gradient through the embeddings) or a module in train
mode (dropout) every call is a full forward. Entries are keyed by the caller (a batch index) and checked
against the batch's token tensors, so a wrong key falls back to a full forward rather than a wrong answer.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from adaptermix.backbone.loading import Encoder

log = logging.getLogger(__name__)

BUDGET_ENV = "ADAPTERMIX_PREFIX_CACHE_MB"
DEFAULT_BUDGET_MB = 1024
"""Default memory cap of one prefix cache (one target's batches); ``$ADAPTERMIX_PREFIX_CACHE_MB`` sets
it, 0 turns caching off. Batches past the cap run full forwards (correct, just not cached)."""


def default_budget_bytes() -> int:
    """The cache's memory cap in bytes (``$ADAPTERMIX_PREFIX_CACHE_MB``, default 1024 MiB)."""
    return int(float(os.environ.get(BUDGET_ENV, DEFAULT_BUDGET_MB)) * 2**20)


@dataclass
class _State:
    """One batch's cached prefix: the boundary's inputs and the later blocks' shared arguments."""

    inputs: dict[str, torch.Tensor | None]  # the encoder kwargs the state was captured from (checked on reuse)
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    rest_args: tuple[Any, ...]
    rest_kwargs: dict[str, Any]
    nbytes: int

    def matches(self, inputs: Mapping[str, Any]) -> bool:
        if set(inputs) != set(self.inputs):
            return False
        return all(_same_tensor(v, self.inputs[k]) for k, v in inputs.items())


def _same_tensor(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape and torch.equal(a, b)


def _tensor_bytes(*trees: Any) -> int:
    """Bytes of the distinct tensors in (nested tuples / dicts of) ``trees``."""
    seen: dict[int, int] = {}

    def walk(x: Any) -> None:
        if isinstance(x, torch.Tensor):
            seen[id(x)] = x.numel() * x.element_size()
        elif isinstance(x, (tuple, list)):
            for y in x:
                walk(y)
        elif isinstance(x, dict):
            for y in x.values():
                walk(y)

    for t in trees:
        walk(t)
    return sum(seen.values())


def _same_call(a: tuple[tuple[Any, ...], dict[str, Any]], b: tuple[tuple[Any, ...], dict[str, Any]]) -> bool:
    """Whether two blocks were called with the very same objects (besides the hidden state)."""
    (args_a, kw_a), (args_b, kw_b) = a, b
    return (len(args_a) == len(args_b) and all(x is y for x, y in zip(args_a, args_b, strict=True))
            and kw_a.keys() == kw_b.keys() and all(kw_a[k] is kw_b[k] for k in kw_a))


class FrozenPrefix:
    """Per-batch cache of the frozen encoder's prefix; :meth:`encode` = ``model(**inputs).last_hidden_state``."""

    def __init__(self, encoder: Encoder, layer: int, within_block: str | None = None,
                 budget_bytes: int | None = None) -> None:
        self.encoder = encoder
        self.layer = layer
        self.within_block = within_block
        self.budget_bytes = default_budget_bytes() if budget_bytes is None else budget_bytes
        self.enabled = self.budget_bytes > 0
        self.reason = "" if self.enabled else "budget 0"
        self.nbytes = 0
        self.hits = 0
        self.misses = 0
        self._states: dict[Hashable, _State] = {}

    @classmethod
    def for_sites(cls, encoder: Encoder, sites: Sequence[tuple[int, str]],
                  budget_bytes: int | None = None) -> FrozenPrefix:
        """The prefix before the first of ``sites`` ((layer, site) pairs of an adapter body)."""
        if not sites:
            raise ValueError("an adapter body without sites has no frozen prefix to cache")
        first = min(layer for layer, _ in sites)
        in_first = {site for layer, site in sites if layer == first}
        within = encoder.spec.ffn_block if in_first == {"ffn"} else None
        return cls(encoder, first, within, budget_bytes)

    @property
    def boundary(self) -> str:
        """Where each cached forward starts, e.g. ``encoder.layer.0.output`` (for reports and logs)."""
        path = f"{self.encoder.spec.layers}.{self.layer}"
        return f"{path}.{self.within_block}" if self.within_block else path

    def clear(self) -> None:
        """Drop every cached batch (the cache stays usable)."""
        self._states.clear()
        self.nbytes = 0

    def _blocks(self) -> nn.ModuleList:
        return self.encoder.spec.blocks(self.encoder.model)

    def _boundary_module(self, blocks: nn.ModuleList) -> nn.Module:
        block = blocks[self.layer]
        return block.get_submodule(self.within_block) if self.within_block else block

    def encode(self, key: Hashable, inputs: Mapping[str, torch.Tensor | None]) -> torch.Tensor:
        """The encoder's last hidden state for ``inputs`` (its keyword arguments), from the cached prefix
        of batch ``key`` when there is one (captured on this call otherwise)."""
        model = self.encoder.model
        if not self.enabled or torch.is_grad_enabled() or model.training or "input_ids" not in inputs:
            out: torch.Tensor = model(**inputs).last_hidden_state
            return out
        state = self._states.get(key)
        if state is not None and state.matches(inputs):
            self.hits += 1
            return self._replay(state)
        self.misses += 1
        return self._capture(key, inputs)

    def _replay(self, state: _State) -> torch.Tensor:
        blocks = self._blocks()
        hidden: torch.Tensor = self._boundary_module(blocks)(*state.args, **state.kwargs)
        for block in blocks[self.layer + 1:]:
            hidden = block(hidden, *state.rest_args, **state.rest_kwargs)
        return hidden

    def _capture(self, key: Hashable, inputs: Mapping[str, torch.Tensor | None]) -> torch.Tensor:
        blocks = self._blocks()
        boundary, block = self._boundary_module(blocks), blocks[self.layer]
        seen: dict[str, Any] = {}
        rest: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

        def before_boundary(_m: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            seen["call"] = (args, dict(kwargs))

        def after(name: str) -> Any:
            def hook(_m: nn.Module, _args: tuple[Any, ...], out: Any) -> None:
                seen[name] = out
            return hook

        def before_block(_m: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            rest.append((args[1:], dict(kwargs)))

        handles = [boundary.register_forward_pre_hook(before_boundary, with_kwargs=True),
                   boundary.register_forward_hook(after("boundary")),
                   block.register_forward_hook(after("block")),
                   blocks[len(blocks) - 1].register_forward_hook(after("last"))]
        handles += [b.register_forward_pre_hook(before_block, with_kwargs=True) for b in blocks[self.layer + 1:]]
        try:
            hidden: torch.Tensor = self.encoder.model(**inputs).last_hidden_state
        finally:
            for h in handles:
                h.remove()
        problem = self._check(seen, rest, hidden)
        if problem:
            self.enabled, self.reason = False, problem
            self.clear()
            log.info("frozen-prefix cache off for this encoder: %s", problem)
            return hidden
        args, kwargs = seen["call"]
        rest_args, rest_kwargs = rest[0] if rest else ((), {})
        nbytes = _tensor_bytes(args, kwargs, rest_args, rest_kwargs)
        if self.nbytes + nbytes <= self.budget_bytes:
            self._states[key] = _State(dict(inputs), args, kwargs, rest_args, rest_kwargs, nbytes)
            self.nbytes += nbytes
        return hidden

    def _check(self, seen: dict[str, Any], rest: list[tuple[tuple[Any, ...], dict[str, Any]]],
               hidden: torch.Tensor) -> str:
        """Why the captured call cannot be replayed exactly ('' when it can)."""
        if "call" not in seen or "last" not in seen:
            return "the encoder did not call its blocks during the forward"
        if self.within_block and seen["boundary"] is not seen["block"]:
            return f"the output of {self.boundary} is not its block's output"
        if len(rest) != len(self._blocks()) - self.layer - 1:
            return "a block was called more or less than once"
        if any(not _same_call(rest[0], r) for r in rest[1:]):
            return "the blocks are not all called with the same arguments"
        last = seen["last"]
        if not isinstance(last, torch.Tensor) or not (last is hidden or torch.equal(last, hidden)):
            return "the last block's output is not the model's last hidden state"
        return ""
