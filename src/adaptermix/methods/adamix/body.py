"""The AdaMix body (Wang et al. 2022): a mixture of M bottleneck adapters per site, trained by stochastic routing.

Each site (after the attention and feed-forward output projections for the Houlsby placement, after the
feed-forward one only for Pfeiffer) holds M copies of the down-projection and M of the up-projection,
stacked on a leading expert axis. State-dict names follow the project convention with that extra axis:
``layers.{i}.{site}.down.weight`` is ``[Md, bottleneck, hidden]``, ``up.weight`` ``[Mu, hidden, bottleneck]``
(``Md`` / ``Mu`` = 1 for the shared projection). A body with its experts averaged (Eq. 6) is therefore an
ordinary bottleneck adapter after dropping that axis: :data:`~adaptermix.methods.adamix.merging.MERGE_EXPERTS`
says how (pure functions, the body's :meth:`~AdaMixBody.derived_artefacts`);
:func:`adaptermix.artefacts.transforms.merge_experts` applies them to artefacts.

Routing (Sec. 3): in train mode every forward of the encoder draws, for every layer and site, one down and
one up expert uniformly at random from a generator the body owns; the whole batch goes through them, so
the cost is that of one adapter. In eval mode the body follows its :class:`AdaMixInference` mode (default
MERGED: the experts' average, i.e. the merged adapter, evaluated without writing it out).

Deviations and choices, all following the official code (microsoft/AdaMix, ``expert_soup.py`` and
``modeling_roberta.py``) where the paper is silent or differs:

- The two consistency passes draw their routes independently (the official code calls ``randint`` per
  pass); the paper's ``j != j'`` is not enforced, so with small M both passes may coincide.
- The task loss is the cross-entropy of pass 1 only; pass 2 enters only through the consistency term
  (the official code has the second pass's task loss commented out).
- The experts are one stacked parameter per projection, so AdamW keeps updating unselected experts with
  their momentum (as in the official code, whose trainer zeroes gradients rather than dropping them).
- All experts start as copies of one initialisation — exactly the plain bottleneck's init for the same
  ``init_seed`` and ``method.init`` (default ``bert``: both projections drawn; ``mam``: zero up-projection,
  the only init before ``init`` existed) — which is what makes averaging them meaningful (no hidden-unit
  permutation to undo).
- Routing at inference (RANDOM mode) draws one route per batch, as in training; the official code draws
  one expert per sentence at inference by computing every expert.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from adaptermix.backbone.loading import Encoder
from adaptermix.methods.adamix.consistency import consistency_loss
from adaptermix.methods.adamix.inference import AdaMixInference
from adaptermix.methods.adamix.merging import MERGE_EXPERTS
from adaptermix.methods.base import (
    ACTIVATIONS,
    AdapterBody,
    Derivation,
    Method,
    SiteModule,
    register_method,
    seeded_generator,
)
from adaptermix.methods.config import PLACEMENT_SITES as PLACEMENT_SITES
from adaptermix.methods.config import AdaMixConfig, AdaMixOptions
from adaptermix.methods.losses import task_loss


class ExpertLinear(nn.Module):
    """``E`` linear maps stacked on a leading axis: ``weight`` [E, out, in], ``bias`` [E, out]."""

    def __init__(self, experts: int, in_features: int, out_features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(experts, out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(experts, out_features))

    def forward(self, x: torch.Tensor, expert: int | None) -> torch.Tensor:
        """Apply expert ``expert``, or the experts' average (Eq. 6) when ``expert`` is None."""
        dt = x.dtype
        if expert is None:
            return F.linear(x, self.weight.mean(0).to(dt), self.bias.mean(0).to(dt))
        return F.linear(x, self.weight[expert].to(dt), self.bias[expert].to(dt))


class Routing:
    """The route the sites of one body follow now: ``(down, up)`` expert per (layer, site), or None = merged.

    A plain object (not a module) shared by the body and its sites, so sites need no reference to the body.
    """

    def __init__(self) -> None:
        self.route: list[list[tuple[int, int]]] | None = None


class AdaMixSite(SiteModule):
    """M experts of a bottleneck adapter at one site; routes are read from the shared :class:`Routing`."""

    def __init__(
        self,
        layer: int,
        site: int,
        hidden: int,
        size: int,
        opts: AdaMixOptions,
        cfg: AdaMixConfig,
        routing: Routing,
    ) -> None:
        super().__init__()
        m = opts.num_experts
        self.down = ExpertLinear(1 if opts.sharing == "down" else m, hidden, size)
        self.act = ACTIVATIONS[cfg.activation]()
        self.up = ExpertLinear(1 if opts.sharing == "up" else m, size, hidden)
        self.drop = nn.Dropout(cfg.dropout) if cfg.dropout > 0 else nn.Identity()
        self._where = (layer, site)
        self._routing = routing

    def reset(self, gen: torch.Generator, std: float, init: str = "mam") -> None:
        """The plain bottleneck's init (one draw per site, same generator order), copied into every expert."""
        from adaptermix.methods.bottleneck import init_projections

        down, up = init_projections(self.down.weight.shape[1:], self.up.weight.shape[1:], gen, init, std)
        with torch.no_grad():
            self.down.weight.copy_(down.expand_as(self.down.weight))
            self.down.bias.zero_()
            self.up.weight.copy_(up.expand_as(self.up.weight))
            self.up.bias.zero_()

    def hook(self, module: nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> torch.Tensor:
        route = self._routing.route
        down, up = (None, None) if route is None else route[self._where[0]][self._where[1]]
        # Computed in the encoder's dtype (fp32 experts cast to bf16 over a bf16 encoder; see Bottleneck.delta).
        h = self.drop(output)
        delta: torch.Tensor = self.up(self.act(self.down(h, down)), up)
        return output + delta


class AdaMixBody(AdapterBody):
    """An AdaMix adapter: per-site experts, a routing generator, the consistency loss and merge export."""

    #: The router is a pre-hook on the encoder's forward, which a cached prefix would skip.
    caches_prefix = False

    def __init__(self, cfg: AdaMixConfig, hidden: int, num_layers: int) -> None:
        opts = cfg.adamix
        sites = cfg.sites
        size = cfg.bottleneck_for(hidden)
        routing = Routing()
        gen = seeded_generator(cfg.init_seed)

        def make(layer: int, site: str) -> AdaMixSite:
            mod = AdaMixSite(layer, sites.index(site), hidden, size, opts, cfg, routing)
            mod.reset(gen, cfg.init_std, cfg.init or "bert")
            return mod

        super().__init__(num_layers, sites, make)
        self.options = opts
        self.routing = routing
        self.inference = AdaMixInference.MERGED
        self._pinned: list[list[tuple[int, int]]] | None = None
        self._train_gen: torch.Generator | None = None
        self._eval_gen = torch.Generator().manual_seed(0)
        first = cast(AdaMixSite, self.site_modules()[0][2])  # layers[0][sites[0]]
        self.num_down, self.num_up = first.down.weight.shape[0], first.up.weight.shape[0]

    # -- routing -------------------------------------------------------------------------------------
    def seed_routing(self, seed: int) -> torch.Generator:
        """Seed the training-route generator (else it is seeded from the global RNG at the first draw)."""
        self._train_gen = torch.Generator().manual_seed(seed)
        return self._train_gen

    def draw_route(self, generator: torch.Generator) -> list[list[tuple[int, int]]]:
        """One uniform draw of a (down, up) expert pair for every layer and site (one call, vectorised)."""
        shape = (len(self.layers), len(self.sites))
        down = torch.randint(self.num_down, shape, generator=generator)
        up = torch.randint(self.num_up, shape, generator=generator)
        return torch.stack([down, up], dim=-1).tolist()

    def fixed_route(self) -> list[list[tuple[int, int]]]:
        """The first expert of every projection (AdaMix-FixedRouting)."""
        return [[(0, 0)] * len(self.sites) for _ in self.layers]

    def _next_route(self) -> list[list[tuple[int, int]]] | None:
        if self._pinned is not None:
            return self._pinned
        if self.training:
            gen = self._train_gen
            if gen is None:
                # Derived from the global RNG, which the training loop seeds with the run's seed.
                gen = self.seed_routing(int(torch.randint(0, 2**62, (1,)).item()))
            return self.draw_route(gen)
        if self.inference is AdaMixInference.MERGED:
            return None
        if self.inference is AdaMixInference.FIXED:
            return self.fixed_route()
        return self.draw_route(self._eval_gen)  # RANDOM, and ENSEMBLE one member at a time

    def prepare_forward(self, *_hook_args: Any) -> None:
        """Pick the route of the next forward (the encoder's forward pre-hook calls this every forward)."""
        self.routing.route = self._next_route()

    def attach(self, encoder: Encoder) -> None:
        """Attach the site hooks, plus a pre-hook on the encoder that picks the route of each forward."""
        super().attach(encoder)
        self._handles.append(encoder.model.register_forward_pre_hook(self.prepare_forward))

    @contextlib.contextmanager
    def pinned_route(self, route: list[list[tuple[int, int]]] | None) -> Iterator[None]:
        """Every forward inside the block follows ``route`` (None = merged), in train or eval mode."""
        old = self._pinned
        self._pinned = route
        try:
            yield
        finally:
            self._pinned = old

    @contextlib.contextmanager
    def inference_mode(self, mode: AdaMixInference, seed: int = 0) -> Iterator[None]:
        """Evaluate in ``mode`` inside the block; random routes come from a generator seeded with ``seed``."""
        old = self.inference
        self.inference = mode
        self._eval_gen = torch.Generator().manual_seed(seed)
        try:
            yield
        finally:
            self.inference = old

    # -- training ------------------------------------------------------------------------------------
    def training_loss(
        self, model: nn.Module, batch: dict[str, torch.Tensor], labels: torch.Tensor, regression: bool
    ) -> torch.Tensor:
        """Eq. 5: task loss of pass 1 + weight x consistency between two independently routed passes.

        With weight 0 there is a single pass (the cost of one adapter step).
        """
        logits = model(**batch)
        loss = task_loss(logits, labels, regression)
        weight = self.options.consistency_weight
        if weight > 0:
            loss = loss + weight * consistency_loss(logits, model(**batch), regression)
        return loss

    def derived_artefacts(self) -> tuple[Derivation, ...]:
        """The merged (Eq. 6) adapter, written by the training job beside the unmerged artefact it saved
        (``<dir>-merged``, see :func:`adaptermix.artefacts.transforms.merged_path`)."""
        return (MERGE_EXPERTS,)


def build_adamix(
    method: Method[AdaMixConfig], cfg: AdaMixConfig, hidden: int, num_layers: int, _intermediate: int | None = None
) -> AdaMixBody:
    return AdaMixBody(cfg, hidden, num_layers)


# Sites listed here are those of the default (Houlsby) placement; ``method.adamix.placement`` picks them.
register_method(
    Method(
        "adamix",
        "adamix",
        PLACEMENT_SITES["houlsby"],
        "Wang et al. 2022: mixture of bottleneck adapters, stochastic routing, merged by averaging",
        build_adamix,
        AdaMixConfig,
    )
)
