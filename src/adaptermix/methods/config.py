"""Configuration of adapter methods, with the paper's settings as named presets."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from adaptermix.config import StrictModel
from adaptermix.errors import ConfigError

Activation = Literal["relu", "gelu", "tanh", "swish"]

Init = Literal["bert", "mam", "houlsby", "peft"]
"""Initialisation schemes (``method.init``), after AdapterHub's ``BnConfig.init_weights``
(adapter-hub/adapters, ``src/adapters/methods/modeling.py``, ``Adapter.__init__``):

- ``bert`` (AdapterHub's default ``init_weights="bert"``, ``init_bert_weights``): down- and up-projection
  weights from ``N(0, init_std)`` (AdapterHub: 0.02 fixed), zero biases. The default for bottleneck
  adapters: both projections start from the shared seed, so their signs start equal across domains.
- ``mam`` (AdapterHub's ``"mam_adapter"``): zero up-projection, so a fresh adapter is the identity. Deviation:
  the down-projection is drawn from ``N(0, init_std)`` (adaptermix's behaviour before ``init`` existed, kept so
  that older artefacts mean what they meant), not AdapterHub's Kaiming-uniform. Artefacts whose
  ``adapter.json`` has no ``init`` were trained this way and load as ``mam``.
- ``houlsby`` (AdapterHub's ``"houlsby"``): near-identity; both weights from a normal with std 1e-2 truncated
  at +-2e-2 (as AdapterHub, independent of ``init_std``), zero biases.
- ``peft``: LoRA's only init (peft's default): ``A`` Kaiming-uniform, ``B`` zero. LoRA accepts only this one,
  bottleneck methods never take it.
"""

BOTTLENECK_INITS: tuple[str, ...] = ("bert", "mam", "houlsby")
LEGACY_INIT = "mam"
"""What a bottleneck artefact written before ``method.init`` existed was initialised with."""


class AdaMixOptions(StrictModel):
    """AdaMix (Wang et al. 2022) options; used only by the ``adamix`` method."""

    num_experts: int = Field(4, ge=1, description="M adapter copies per projection and layer")
    sharing: Literal["up", "down", "none"] = Field(
        "up", description="share one projection across experts (paper default: up)"
    )
    consistency_weight: float = Field(1.0, ge=0.0, description="weight of the symmetric-KL term; 0 disables")
    placement: Literal["houlsby", "pfeiffer"] = "houlsby"


# The paper's settings (Nguyen & Le 2024, Sec. 4.1 / App. A.3): bottleneck 256 on BERT-base, 64 on
# RoBERTa-large, LoRA rank 4 (Hu et al. 2022). A preset fills every field it names unless the config
# sets that field explicitly.
METHOD_PRESETS: dict[str, dict[str, Any]] = {
    "houlsby-256": {"name": "houlsby", "bottleneck_size": 256},
    "houlsby-64": {"name": "houlsby", "bottleneck_size": 64},
    "pfeiffer-256": {"name": "pfeiffer", "bottleneck_size": 256},
    "pfeiffer-64": {"name": "pfeiffer", "bottleneck_size": 64},
    "lora-r4": {"name": "lora", "rank": 4, "alpha": 8.0},
    "adamix-64": {"name": "adamix", "bottleneck_size": 64},
}


class MethodConfig(StrictModel):
    """Which adapter method to train and its shape; everything here is saved in ``adapter.json``."""

    name: str = "pfeiffer"
    preset: str | None = None
    bottleneck_size: int | None = Field(None, ge=1, description="bottleneck width; default hidden/reduction")
    reduction_factor: float = Field(16.0, gt=0)
    activation: Activation = "relu"
    rank: int = Field(4, ge=1, description="LoRA rank r")
    alpha: float = Field(8.0, gt=0, description="LoRA alpha; the update is scaled by alpha / r")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="dropout on the adapter input")
    init_seed: int = Field(
        0,
        description="seed of the adapter initialisation; shared by default across domains so that "
        "adapters start from one init and their weights are comparable unit by unit",
    )
    init_std: float = Field(0.02, gt=0)
    init: Init | None = Field(
        None,
        description="initialisation scheme: bert (default for bottleneck/AdaMix: both projections N(0, init_std)), "
        "mam (zero up-projection) or houlsby (truncated N(0, 0.01)); LoRA: peft (its only one). "
        "Unset = the method's default; the resolved value is what adapter.json records",
    )
    original_ln_before: bool = Field(
        False,
        description="AdapterHub SeqBn placement: apply the block's LayerNorm(x + residual) before the adapter "
        "and again after it (BERT/RoBERTa only); default False is the Houlsby placement",
    )
    adamix: AdaMixOptions = AdaMixOptions()

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("preset") is not None:
            preset = METHOD_PRESETS.get(data["preset"])
            if preset is None:
                valid = ", ".join(sorted(METHOD_PRESETS))
                raise ConfigError(f"unknown method preset {data['preset']!r}; valid: {valid}")
            merged = dict(preset)
            merged.update({k: v for k, v in data.items() if k != "name" or "name" not in preset})
            return merged
        return data

    @model_validator(mode="after")
    def _resolve_init(self) -> MethodConfig:
        if self.name == "lora":
            if self.init not in (None, "peft"):
                raise ConfigError(
                    f"method.init {self.init!r} applies to bottleneck adapters; LoRA keeps peft's init "
                    "(A Kaiming-uniform, B zero): leave method.init unset or set it to 'peft'"
                )
            init = "peft"
        elif self.init is None:
            init = "bert"
        elif self.init not in BOTTLENECK_INITS:
            raise ConfigError(
                f"method.init {self.init!r} is LoRA's; a {self.name!r} adapter takes one of "
                f"{', '.join(BOTTLENECK_INITS)}"
            )
        else:
            return self
        object.__setattr__(self, "init", init)  # frozen model: resolved once, at validation
        return self

    @classmethod
    def from_saved(cls, data: dict[str, Any]) -> MethodConfig:
        """The method config of an artefact's ``adapter.json``; one without ``init`` loads as what it was.

        Bottleneck and AdaMix adapters written before ``init`` existed had a zero up-projection (``mam``);
        reading them with today's default (``bert``) would misstate how they were trained.
        """
        if "init" not in data and data.get("name") != "lora":
            data = {**data, "init": LEGACY_INIT}
        return cls.model_validate(data)

    def bottleneck_for(self, hidden_size: int) -> int:
        """The bottleneck width for an encoder of ``hidden_size``."""
        if self.bottleneck_size is not None:
            return self.bottleneck_size
        return max(1, int(round(hidden_size / self.reduction_factor)))
