"""One live model for a whole sweep: the encoder loaded once, the adapter body as views of one buffer.

Every body parameter is a view into a single flat buffer laid out like the pool's stacked matrix, so
writing a mixture into the model is ONE ``copy_`` of a [P] vector (peft's ``hotswap_adapter_from_state_dict``
copies tensor by tensor; a single buffer makes the swap a memcpy). Heads are per target and swapped as
modules. Nothing here allocates per trial.

Precision: the buffer is stored in the encoder's format (bf16 over a bf16 encoder), so the adapter runs in
the encoder's format with no per-call casts; mixtures are computed in fp32/fp64 by the merging rules and
rounded once, when written (:meth:`LiveModel.write`). Heads stay fp32.

Rank-growing mixtures (LoRA rules ``cat`` and ``knots``: rank k r for k adapters) fit a live model built
with ``rank_slots`` = N (the pool size): its LoRA has rank N r and alpha (alpha / r) N r, so the scale
alpha / r is the pool's, and every vector written in a smaller-rank layout is zero-padded (the first k r
rows of A / columns of B, zeros after; zero rows and columns add nothing to B A, so the update is exact).
Without ``rank_slots`` nothing changes: one ``copy_`` per mixture.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from adaptermix.artefacts.artefact import Adapter, check_base, new_model
from adaptermix.backbone.loading import Encoder
from adaptermix.core.errors import ArtefactError, ConfigError
from adaptermix.deltas import AdapterDelta, ParamLayout
from adaptermix.merging.lora import rank_padding_index, summed_rank_layout
from adaptermix.methods.config import LoRAConfig
from adaptermix.model import AdapterModel, Head


@dataclass
class LiveModel:
    """An :class:`AdapterModel` whose body reads from :attr:`buffer` and whose head can be swapped."""

    model: AdapterModel
    buffer: torch.Tensor
    layout: ParamLayout
    heads: dict[str, Head] = field(default_factory=dict)
    #: source layout -> where its entries go in :attr:`buffer` (a smaller-rank LoRA written zero-padded)
    _padding: dict[ParamLayout, torch.Tensor] = field(default_factory=dict, repr=False)

    @classmethod
    def build(
        cls, encoder: Encoder, template: Adapter, layout: ParamLayout, dtype: torch.dtype | None = None,
        rank_slots: int = 1,
    ) -> LiveModel:
        """The live model on ``encoder``; the body's buffer is in ``dtype`` (default: the encoder's).

        ``rank_slots`` > 1 (LoRA only): room for rank ``rank_slots`` * r, at the template's alpha / r; the
        buffer then has the layout ``summed_rank_layout(layout, rank_slots)`` and vectors of ``layout``
        (or any rank up to that) are written zero-padded (:meth:`write` with their layout)."""
        method = template.meta.method_config
        if rank_slots > 1:
            if not isinstance(method, LoRAConfig):
                raise ConfigError(f"only a LoRA live model can hold a larger rank (the pool's method is "
                                  f"{method.name!r})")
            rank = method.rank * rank_slots
            method = method.model_copy(update={"rank": rank, "alpha": method.alpha / method.rank * rank})
            layout = summed_rank_layout(layout, rank_slots)
        model = new_model(encoder, method, template.meta.head_config, template.meta.task_info)
        params = dict(model.body.named_parameters())
        if set(params) != set(layout.names):
            model.detach_body()
            raise ArtefactError("the pool's tensors do not match the adapter method's parameters")
        buffer = torch.zeros(layout.size, dtype=dtype or encoder.dtype, device=model.device)
        for name, start, shape in zip(layout.names, layout.offsets, layout.shapes, strict=False):
            p = params[name]
            if tuple(p.shape) != tuple(shape):
                model.detach_body()
                raise ArtefactError(f"pool tensor {name} has shape {shape}, the method expects {tuple(p.shape)}")
            p.data = buffer[start : start + p.numel()].view(p.shape)
            p.requires_grad_(False)
        model.eval()
        return cls(model, buffer, layout)

    @classmethod
    def of_adapter(cls, encoder: Encoder, adapter: Adapter) -> LiveModel:
        """The live model holding one adapter (body and head), as a sweep holds it as a k = 1 mixture:
        the body written from its flat vector (the pool's layout), in the encoder's format."""
        check_base(adapter, encoder)
        body = AdapterDelta.from_state_dict(adapter.body)
        live = cls.build(encoder, adapter, body.layout)
        live.write(body.flatten())
        live.use_head(adapter.name, adapter)
        return live

    def write(self, vector: torch.Tensor, layout: ParamLayout | None = None) -> None:
        """Put a mixture into the model, in place (cast to the buffer's dtype). ``vector`` is in ``layout``
        (default: the live model's own): a LoRA of smaller rank than the live one is zero-padded to it."""
        if layout is None or layout == self.layout:
            if vector.numel() != self.buffer.numel():
                raise ArtefactError(f"a mixture of {vector.numel()} parameters does not fit the live model's "
                                    f"{self.buffer.numel()}: pass its layout")
            self.buffer.copy_(vector)
            return
        if vector.numel() != layout.size:
            raise ArtefactError(f"a mixture of {vector.numel()} parameters does not match its layout's {layout.size}")
        index = self._padding.get(layout)
        if index is None:
            index = rank_padding_index(layout, self.layout).to(self.buffer.device)
            self._padding[layout] = index
        self.buffer.zero_()
        self.buffer.index_copy_(0, index, vector.to(device=self.buffer.device, dtype=self.buffer.dtype))

    def use_head(self, target: str, adapter: Adapter) -> None:
        """Switch to ``target``'s own head (built once per target)."""
        head = self.heads.get(target)
        if head is None:
            meta = adapter.meta
            head = Head(self.model.encoder.hidden_size, meta.task_info.num_labels, meta.head_config)
            head.load_state_dict({k[len("head."):]: v for k, v in adapter.head.items()}, strict=True)
            head.to(self.model.device).eval()
            for p in head.parameters():
                p.requires_grad_(False)
            self.heads[target] = head
        self.model.head = head

    def close(self) -> None:
        self.model.detach_body()
