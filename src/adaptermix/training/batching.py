"""Tokenise once, then batch with length bucketing and dynamic padding.

Padding every batch to a fixed max length wastes most of the compute on short texts (SST-2 averages ~10
words). Evaluation sorts all examples by length so each batch pads only to its own longest member;
training shuffles, then sorts within windows of ``bucket_window`` batches so batches stay random but
nearly uniform in length.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from adaptermix.backbone.loading import Tokenizer
from adaptermix.data.schema import Example


@dataclass
class TokenizedSet:
    """Token ids of a set of examples (unpadded), their labels, and the pad id to batch them with."""

    input_ids: list[list[int]]
    token_type_ids: list[list[int]] | None
    labels: torch.Tensor
    pad_id: int

    def __len__(self) -> int:
        return len(self.input_ids)

    def lengths(self) -> list[int]:
        return [len(x) for x in self.input_ids]

    def subset(self, idx: Sequence[int]) -> TokenizedSet:
        tt = [self.token_type_ids[i] for i in idx] if self.token_type_ids is not None else None
        return TokenizedSet([self.input_ids[i] for i in idx], tt, self.labels[list(idx)], self.pad_id)


def tokenize(tokenizer: Tokenizer, examples: Sequence[Example], max_length: int, regression: bool) -> TokenizedSet:
    """Tokenise ``examples`` (single texts or pairs) once, truncated to ``max_length`` tokens."""
    texts = [e.text for e in examples]
    pairs = [e.text_pair for e in examples] if examples and examples[0].text_pair is not None else None
    enc = tokenizer(texts, pairs, truncation=True, max_length=max_length, padding=False)
    dtype = torch.float32 if regression else torch.long
    labels = torch.tensor([e.label for e in examples], dtype=dtype)
    tt = enc.get("token_type_ids")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    return TokenizedSet(list(enc["input_ids"]), list(tt) if tt is not None else None, labels, int(pad))


def collate(tset: TokenizedSet, idx: Sequence[int]) -> dict[str, torch.Tensor]:
    """Pad the examples ``idx`` to their own longest length."""
    width = max(len(tset.input_ids[i]) for i in idx)
    ids = torch.full((len(idx), width), tset.pad_id, dtype=torch.long)
    mask = torch.zeros((len(idx), width), dtype=torch.long)
    types = tset.token_type_ids
    tt = torch.zeros((len(idx), width), dtype=torch.long) if types is not None else None
    for row, i in enumerate(idx):
        seq = tset.input_ids[i]
        ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
        if tt is not None and types is not None:
            tt[row, : len(seq)] = torch.tensor(types[i], dtype=torch.long)
    batch = {"input_ids": ids, "attention_mask": mask}
    if tt is not None:
        batch["token_type_ids"] = tt
    return batch


def eval_batches(tset: TokenizedSet, batch_size: int) -> Iterator[tuple[list[int], dict[str, torch.Tensor]]]:
    """Batches over all examples sorted by length (longest first); yields original indices."""
    order = sorted(range(len(tset)), key=lambda i: -len(tset.input_ids[i]))
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        yield idx, collate(tset, idx)


def train_batches(
    tset: TokenizedSet, batch_size: int, generator: torch.Generator, bucket_window: int = 50
) -> Iterator[tuple[list[int], dict[str, torch.Tensor]]]:
    """One epoch of shuffled batches, length-bucketed within windows of ``bucket_window`` batches."""
    perm = torch.randperm(len(tset), generator=generator).tolist()
    window = batch_size * bucket_window
    batches: list[list[int]] = []
    for start in range(0, len(perm), window):
        chunk = sorted(perm[start : start + window], key=lambda i: len(tset.input_ids[i]))
        batches.extend(chunk[j : j + batch_size] for j in range(0, len(chunk), batch_size))
    for b in torch.randperm(len(batches), generator=generator).tolist():
        yield batches[b], collate(tset, batches[b])


def num_train_batches(n: int, batch_size: int, bucket_window: int = 50) -> int:
    window = batch_size * bucket_window
    full, rest = divmod(n, window)
    return full * bucket_window + -(-rest // batch_size)
