"""The model users train and evaluate: a frozen encoder + one adapter body + a task head.

Only the adapter body and the head hold trainable parameters; :meth:`AdapterModel.assert_frozen`
checks that the encoder stayed frozen. The body can be swapped or overwritten in place (a sweep writes
each mixture into one live body), and the head is per domain.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING, Literal, cast

import torch
from torch import nn

from adaptermix.backbone.loading import TRAIN_ATTENTION, Encoder, set_attention
from adaptermix.backbone.prefix import FrozenPrefix
from adaptermix.core.config import StrictModel
from adaptermix.methods.base import AdapterBody

if TYPE_CHECKING:
    from transformers import PreTrainedModel


class HeadConfig(StrictModel):
    """Classification / regression head on a pooled sentence representation."""

    pooling: Literal["mean", "cls"] = "mean"
    dropout: float = 0.1


class Head(nn.Module):
    """Pooling + dropout + linear layer; ``num_labels`` = 1 for regression."""

    def __init__(self, hidden: int, num_labels: int, cfg: HeadConfig, seed: int = 0) -> None:
        super().__init__()
        self.pooling = cfg.pooling
        self.dropout = nn.Dropout(cfg.dropout)
        self.out = nn.Linear(hidden, num_labels)
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            self.out.weight.copy_(torch.randn(self.out.weight.shape, generator=gen) * 0.02)
            self.out.bias.zero_()

    def pool(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.pooling == "cls":
            return hidden[:, 0]
        m = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * m).sum(1) / m.sum(1).clamp_min(1.0)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.out(self.dropout(self.pool(hidden, mask)))


class AdapterModel(nn.Module):
    """Frozen encoder with an attached adapter body and a head."""

    def __init__(self, encoder: Encoder, body: AdapterBody, head: Head) -> None:
        super().__init__()
        # The encoder module is registered so .train()/.eval() reach its dropout; its parameters are frozen.
        self.encoder_model = encoder.model
        self.encoder = encoder
        self.body = body
        self.head = head
        #: The encoder's attention kernel in evaluation (as loaded); training switches to TRAIN_ATTENTION.
        self.eval_attention = str(getattr(getattr(encoder.model, "config", None), "_attn_implementation", "") or "")
        body.attach(encoder)
        self.body.to(encoder.device)
        self.head.to(encoder.device)

    @property
    def device(self) -> torch.device:
        return self.encoder.device

    def train(self, mode: bool = True) -> AdapterModel:
        """Train / eval mode; also picks the encoder's attention kernel: eager while training (faster with
        attention dropout on CPU, see ``backbone.loading.TRAIN_ATTENTION``), the loaded one in evaluation."""
        super().train(mode)
        if self.eval_attention:
            set_attention(self.encoder, TRAIN_ATTENTION if mode else self.eval_attention)
        return self

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        prefix: FrozenPrefix | None = None,
        prefix_key: Hashable = None,
    ) -> torch.Tensor:
        """Logits [batch, num_labels]. Pass ``inputs_embeds`` (word embeddings) instead of ids for FGSM.

        ``prefix`` (from :meth:`frozen_prefix`) with ``prefix_key`` (which batch this is): the frozen
        encoder's work before the first adapter site comes from the cache (bit-identical logits; full
        forwards under autograd or in train mode). A sweep's clean evaluation passes it."""
        # Batches are built on the CPU; they move to the model's device here, once (no-op on the CPU).
        dev = self.device

        def on_device(t: torch.Tensor | None) -> torch.Tensor | None:
            return t.to(dev, non_blocking=True) if t is not None else None

        attention_mask = on_device(attention_mask)
        kwargs = {"attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = on_device(token_type_ids)
        if inputs_embeds is not None:
            # FGSM perturbs fp32 embeddings; the encoder computes in its own format (the cast is differentiable).
            kwargs["inputs_embeds"] = inputs_embeds.to(dev, non_blocking=True).to(self.encoder.dtype)
        else:
            kwargs["input_ids"] = on_device(input_ids)
        # Pooling, head and loss in fp32 whatever the encoder's precision (a no-op for an fp32 encoder).
        if prefix is not None:
            hidden = prefix.encode(prefix_key, kwargs).float()
        else:
            hidden = self.encoder_model(**kwargs).last_hidden_state.float()
        mask = attention_mask if attention_mask is not None else torch.ones(hidden.shape[:2], device=hidden.device)
        return self.head(hidden, mask)

    def frozen_prefix(self, budget_bytes: int | None = None) -> FrozenPrefix | None:
        """A cache of the encoder's work before this body's first site (None when the body acts on the
        encoder's forward itself, as AdaMix's router does); see :mod:`adaptermix.backbone.prefix`."""
        if not self.body.caches_prefix:
            return None
        sites = [(i, s) for i, s, _ in self.body.site_modules()]
        return FrozenPrefix.for_sites(self.encoder, sites, budget_bytes)

    def word_embeddings(self) -> nn.Module:
        """The encoder's input embedding (ids -> vectors), e.g. ``nn.Embedding`` for BERT-like encoders."""
        model = cast("PreTrainedModel", self.encoder.model)  # what every Encoder wraps
        return model.get_input_embeddings()

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """Adapter body (``layers.*``) and head (``head.*``) tensors, on the CPU: what an artefact stores."""
        state = {k: v.to("cpu") for k, v in self.body.state_dict().items()}  # no copy when already on the CPU
        state.update({f"head.{k}": v.to("cpu") for k, v in self.head.state_dict().items()})
        return state

    def load_trainable_state(self, state: dict[str, torch.Tensor]) -> None:
        """Load body and head tensors (strict: names and shapes must match exactly)."""
        body = {k: v for k, v in state.items() if not k.startswith("head.")}
        head = {k[len("head."):]: v for k, v in state.items() if k.startswith("head.")}
        self.body.load_state_dict(body, strict=True)
        self.head.load_state_dict(head, strict=True)

    def assert_frozen(self) -> None:
        """Raise if any encoder parameter requires grad (only adapter and head may train)."""
        bad = [n for n, p in self.encoder_model.named_parameters() if p.requires_grad]
        if bad:
            raise AssertionError(f"encoder parameters require grad: {bad[:3]}")

    def detach_body(self) -> None:
        self.body.detach()
