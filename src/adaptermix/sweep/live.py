"""One live model for a whole sweep: the encoder loaded once, the adapter body as views of one buffer.

Every body parameter is a view into a single flat buffer laid out like the pool's stacked matrix, so
writing a mixture into the model is ONE ``copy_`` of a [P] vector (peft's ``hotswap_adapter_from_state_dict``
copies tensor by tensor; a single buffer makes the swap a memcpy). Heads are per target and swapped as
modules. Nothing here allocates per trial.

Precision: the buffer is stored in the encoder's format (bf16 over a bf16 encoder), so the adapter runs in
the encoder's format with no per-call casts; mixtures are computed in fp32/fp64 by the merging rules and
rounded once, when written (:meth:`LiveModel.write`). Heads stay fp32.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from adaptermix.artefact import Adapter, check_base, new_model
from adaptermix.backbone.loading import Encoder
from adaptermix.deltas import AdapterDelta, ParamLayout
from adaptermix.errors import ArtefactError
from adaptermix.model import AdapterModel, Head


@dataclass
class LiveModel:
    """An :class:`AdapterModel` whose body reads from :attr:`buffer` and whose head can be swapped."""

    model: AdapterModel
    buffer: torch.Tensor
    layout: ParamLayout
    heads: dict[str, Head] = field(default_factory=dict)

    @classmethod
    def build(
        cls, encoder: Encoder, template: Adapter, layout: ParamLayout, dtype: torch.dtype | None = None
    ) -> LiveModel:
        """The live model on ``encoder``; the body's buffer is in ``dtype`` (default: the encoder's)."""
        model = new_model(encoder, template.meta.method_config, template.meta.head_config, template.meta.task_info)
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

    def write(self, vector: torch.Tensor) -> None:
        """Put a mixture (a [P] vector in the pool's layout) into the model, in place (cast to the buffer's dtype)."""
        self.buffer.copy_(vector)

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
