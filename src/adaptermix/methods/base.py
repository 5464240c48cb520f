"""What every adapter method shares: a body of per-layer site modules attached to the encoder by hooks.

An :class:`AdapterBody` owns ``layers[i][site]`` modules whose state-dict names follow the project-wide
convention ``layers.{i}.{site}.{param}``. :meth:`AdapterBody.attach` registers one forward hook per site on
the module the encoder spec names; no upstream ``forward`` is copied and no class is swapped.

The hooks a method may provide to training are declared here with their defaults, so the training job
calls them on every body: :meth:`AdapterBody.training_loss` (the loss of one step; default the task loss
of one forward) and :meth:`AdapterBody.derived_artefacts` (artefacts derived from the one training saved,
as pure :class:`Derivation` functions; default none). A method never reads or writes artefacts itself:
the training job (or a CLI command) applies a derivation with :func:`adaptermix.artefacts.transforms.write_derived`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

import torch
from torch import nn

from adaptermix.backbone.loading import Encoder
from adaptermix.core.errors import ConfigError
from adaptermix.core.registry import Registry
from adaptermix.methods.config import MethodConfig, register_config
from adaptermix.methods.losses import task_loss


class SiteModule(nn.Module):
    """An adapter at one site. :meth:`hook` maps the hooked module's (inputs, output) to a new output.

    ``hooks_block`` = True hooks the site's whole output sub-block (see ``EncoderSpec.block_module``)
    instead of its output projection.
    """

    hooks_block: bool = False

    def hook(self, module: nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


@dataclass(frozen=True)
class Derivation:
    """An artefact derived from a trained one (AdaMix: its merged adapter), as pure functions.

    ``suffix``: the derived artefact is written beside its source, as ``<source dir><suffix>``.
    ``tensors``: source state dict (body and ``head.*``) -> derived state dict.
    ``method``: source method config -> derived method config (raise to refuse a source).
    ``provenance``: (source method config, source provenance, source path or None) -> derived provenance.
    Everything else in the metadata (task, head, base model, training, metrics) carries over.
    """

    suffix: str
    tensors: Callable[[Mapping[str, torch.Tensor]], dict[str, torch.Tensor]]
    method: Callable[[MethodConfig], MethodConfig]
    provenance: Callable[[MethodConfig, dict[str, Any], str | None], dict[str, Any]]


class AdapterBody(nn.Module):
    """All adapter site modules of one adapter, indexed ``layers[i][site]``."""

    #: Whether the encoder's work before the first site may be cached across forwards of one batch
    #: (:mod:`adaptermix.backbone.prefix`): False for a body that acts at the encoder's forward itself.
    caches_prefix: bool = True

    def __init__(self, num_layers: int, sites: tuple[str, ...], make: Callable[[int, str], SiteModule]) -> None:
        super().__init__()
        self.sites = sites
        self.layers = nn.ModuleList(nn.ModuleDict({s: make(i, s) for s in sites}) for i in range(num_layers))
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def attach(self, encoder: Encoder) -> None:
        """Register the forward hooks on ``encoder``; attaching twice is an error."""
        if self._handles:
            raise RuntimeError("adapter body is already attached")
        for i, site, mod in self.site_modules():
            get = encoder.spec.block_module if mod.hooks_block else encoder.spec.site_module
            target = get(encoder.model, i, site)
            self._handles.append(target.register_forward_hook(mod.hook))

    def detach(self) -> None:
        """Remove the hooks; the encoder is back to its original function."""
        for h in self._handles:
            h.remove()
        self._handles.clear()

    # -- hooks a method may override (the training job calls them on every body) ----------------------
    def training_loss(
        self, model: nn.Module, batch: dict[str, torch.Tensor], labels: torch.Tensor, regression: bool
    ) -> torch.Tensor:
        """The loss of one training step of ``model`` (the :class:`~adaptermix.model.AdapterModel` this
        body is attached to) on ``batch``: by default the task loss of one forward. AdaMix adds a
        consistency term between two stochastically routed passes."""
        return task_loss(model(**batch), labels, regression)

    def derived_artefacts(self) -> tuple[Derivation, ...]:
        """Artefacts the training job derives from the artefact it saved for this body (default none)."""
        return ()

    def site_modules(self) -> list[tuple[int, str, SiteModule]]:
        """Every ``(layer, site, module)`` in layer order, then site order. The casts restate what
        ``__init__`` built (a ModuleList of ModuleDicts of ``make``'s SiteModules), which torch's
        container types cannot carry."""
        return [
            (i, s, cast(SiteModule, m))
            for i, layer in enumerate(self.layers)
            for s, m in cast(nn.ModuleDict, layer).items()
        ]


C = TypeVar("C", bound=MethodConfig)


@dataclass(frozen=True)
class Method(Generic[C]):
    """A registered adapter method: its family, its default sites, its config class and how to build its body.

    ``config``: the :class:`~adaptermix.methods.config.MethodConfig` subclass holding the method's fields;
    a method config named ``name`` validates into it (registered by :func:`register_method`), and it declares
    the method's shape signature, scale and sites. ``sites``: those of the default config (``adaptermix
    list``); a body adapts ``cfg.sites``. ``build(method, cfg, hidden_size, num_layers, intermediate_size)``
    builds a freshly initialised body (``intermediate_size``: the feed-forward width, None if unknown).
    """

    name: str
    family: str
    sites: tuple[str, ...]
    description: str
    build: Callable[[Method[C], C, int, int, int | None], AdapterBody]
    config: type[C]

    def build_body(
        self, cfg: MethodConfig, hidden_size: int, num_layers: int, intermediate_size: int | None = None
    ) -> AdapterBody:
        """Build a freshly initialised body; the init is a function of ``cfg.init_seed`` only."""
        return self.build(self, self.typed(cfg), hidden_size, num_layers, intermediate_size)

    def typed(self, cfg: MethodConfig) -> C:
        """``cfg`` as this method's config class (a config of another method is refused in one line)."""
        if isinstance(cfg, self.config):
            return cfg
        if cfg.name == self.name:  # e.g. built by a caller that did not go through validation
            validated: C = self.config.model_validate(cfg.model_dump())
            return validated
        raise ConfigError(f"method {self.name!r} cannot build a body from a {cfg.name!r} config")


METHODS: Registry[Method[Any]] = Registry("method")


def register_method(method: Method[C]) -> Method[C]:
    """Register ``method`` under its name and its config class for that name (one line per method)."""
    METHODS.register(method.name, method)
    register_config(method.name, method.config)
    return method


def seeded_generator(seed: int) -> torch.Generator:
    """A CPU generator for deterministic adapter initialisation independent of the global RNG."""
    g = torch.Generator()
    g.manual_seed(seed)
    return g


ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "swish": nn.SiLU,
}
