"""Typed per-method configs: one class per method holding only its fields, dispatched on ``name``.

Every registered method declares its config class (``Method.config``); :class:`MethodConfig` is their base
and also the type a recipe names (``TrainRunConfig.method``, ``StudyConfig.methods``): validating a mapping
as ``MethodConfig`` picks the class registered for its ``name`` (a discriminated union keyed by ``name``,
rebuilt from the methods registry, so a plug-in method's config validates like a built-in one). A config
declares what the rest of the tool asks of a method:

- :meth:`MethodConfig.shape_signature`: the fields two adapters must share to be mixed (pool checks);
- :attr:`MethodConfig.scale`: the factor the body's update is multiplied by (LoRA: ``alpha / r``; 1.0 elsewhere);
- :attr:`MethodConfig.sites`: where the method inserts itself (LoRA: its ``target_modules``).

Backward compatibility (adapter.json files, config hashes and stamps): before this split one config held
every method's fields. A mapping in that layout still validates: a field of another method holding its
old default (``bottleneck_size: null`` on LoRA) is dropped; one holding anything else is kept inert (it
changes nothing) so that the config dumps as before. Dumps keep the old layout exactly: every old field,
in the old order, with the old defaults (:data:`LEGACY_LAYOUT`), so ``config_hash`` (over
``model_dump(exclude_defaults=True)``), training stamps and ``adapter.json`` are those of before. New fields
(LoRA's ``target_modules``) appear only when they differ from their default.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import (
    Field,
    GetCoreSchemaHandler,
    PrivateAttr,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic._internal._model_construction import ModelMetaclass
from pydantic_core import CoreSchema, core_schema

from adaptermix.core.config import StrictModel
from adaptermix.core.errors import ConfigError

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

DEFAULT_METHOD = "pfeiffer"
"""The method of a config that names none (the one-config layout's default)."""

LEGACY_LAYOUT: dict[str, Any] = {
    "name": DEFAULT_METHOD,
    "preset": None,
    "bottleneck_size": None,
    "reduction_factor": 16.0,
    "activation": "relu",
    "rank": 4,
    "alpha": 8.0,
    "dropout": 0.0,
    "init_seed": 0,
    "init_std": 0.02,
    "init": None,
    "original_ln_before": False,
    "adamix": AdaMixOptions().model_dump(),
}
"""The fields of the one config every method shared before the split, in its order, with its defaults.
Every config dumps in this layout (a method's own fields where it has them, these defaults elsewhere), so
hashes and stamps computed over dumps are unchanged. Never edit: add new fields to a method's class."""

NEW_FIELDS_AFTER: dict[str, str] = {"target_modules": "alpha"}
"""Fields added after the split -> the layout field they are dumped after (only when not at their default)."""


def apply_preset(data: Any) -> Any:
    """``data`` with its ``preset`` expanded (fields set explicitly win; the preset's name wins over ``name``)."""
    if isinstance(data, dict) and data.get("preset") is not None:
        preset = METHOD_PRESETS.get(data["preset"])
        if preset is None:
            valid = ", ".join(sorted(METHOD_PRESETS))
            raise ConfigError(f"unknown method preset {data['preset']!r}; valid: {valid}")
        merged = dict(preset)
        merged.update({k: v for k, v in data.items() if k != "name" or "name" not in preset})
        return merged
    return data


def _is_legacy_default(key: str, value: Any) -> bool:
    if key == "adamix":
        opts = value if isinstance(value, AdaMixOptions) else AdaMixOptions.model_validate(value)
        return opts == AdaMixOptions()
    default = LEGACY_LAYOUT[key]
    return bool(value == default) and (value is None) == (default is None)


class _DispatchOnName(ModelMetaclass):
    """``MethodConfig(name=..., ...)`` builds the config class registered for ``name`` (a subclass)."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        if cls.__dict__.get("_DISPATCH_BASE", False):
            if args:
                raise TypeError("MethodConfig takes keyword arguments only")
            return validate_method_config(kwargs)
        return super().__call__(*args, **kwargs)


class MethodConfig(StrictModel, metaclass=_DispatchOnName):
    """Base of every method's config, and the type of ``method:`` in recipes (validates to the subclass
    registered for ``name``). Everything a config holds is saved in ``adapter.json``.

    Subclasses hold only their method's fields and override :attr:`SHAPE_FIELDS`, :attr:`scale` and
    :attr:`sites`. ``MethodConfig(...)``, :meth:`model_validate` and :meth:`from_saved` called on this base
    return the subclass for ``name`` (unknown names: :class:`GenericMethodConfig`, refused where built).
    """

    _DISPATCH_BASE: ClassVar[bool] = True
    SHAPE_FIELDS: ClassVar[tuple[str, ...]] = ()
    """Fields (dotted for nested options) that change what the tensors mean; compared by pool checks."""

    name: str = DEFAULT_METHOD
    preset: str | None = None
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="dropout on the adapter input")
    init_seed: int = Field(
        0,
        description="seed of the adapter initialisation; shared by default across domains so that "
        "adapters start from one init and their weights are comparable unit by unit",
    )
    init: Init | None = Field(
        None,
        description="initialisation scheme: bert (default for bottleneck/AdaMix: both projections N(0, init_std)), "
        "mam (zero up-projection) or houlsby (truncated N(0, 0.01)); LoRA: peft (its only one). "
        "Unset = the method's default; the resolved value is what adapter.json records",
    )
    _inert: dict[str, Any] = PrivateAttr(default_factory=dict)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        """The base validates as the union of the registered configs; a subclass as itself."""
        if cls.__dict__.get("_DISPATCH_BASE", False):
            return core_schema.no_info_plain_validator_function(lambda v: validate_method_config(v))
        return handler(source)

    @model_validator(mode="wrap")
    @classmethod
    def _legacy_fields(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        """Presets expanded; fields of the one-config layout that are not this method's set aside (see the
        module docstring): dropped at their old default, kept inert otherwise."""
        data = apply_preset(data)
        inert: dict[str, Any] = {}
        if isinstance(data, dict):
            foreign = {k: v for k, v in data.items() if k in LEGACY_LAYOUT and k not in cls.model_fields}
            data = {k: v for k, v in data.items() if k not in foreign}
            for key, value in foreign.items():
                if key == "adamix" and not isinstance(value, (dict, AdaMixOptions)):
                    raise ConfigError(f"method.adamix must be a mapping, not {value!r}")
                if not _is_legacy_default(key, value):
                    inert[key] = value.model_dump() if isinstance(value, AdaMixOptions) else value
            if inert:  # checked as the one config checked them, though they change nothing here
                GenericMethodConfig.model_validate({k: v for k, v in inert.items()})
        obj = handler(data)
        if inert and isinstance(obj, MethodConfig):
            obj._inert = inert
        return obj

    @model_validator(mode="after")
    def _resolve_init(self) -> MethodConfig:
        init = self.resolve_init(self.init)
        if init != self.init:
            object.__setattr__(self, "init", init)  # frozen model: resolved once, at validation
        return self

    def resolve_init(self, init: str | None) -> str | None:
        """The init scheme this method trains from for a configured ``init`` (None = the method's default)."""
        if init is None:
            return "bert"
        if init not in BOTTLENECK_INITS:
            raise ConfigError(
                f"method.init {init!r} is LoRA's; a {self.name!r} adapter takes one of "
                f"{', '.join(BOTTLENECK_INITS)}"
            )
        return init

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> dict[str, Any]:
        """The one-config layout (see :data:`LEGACY_LAYOUT`), so that dumps and hashes are those of before."""
        own: dict[str, Any] = handler(self)
        fields = type(self).model_fields
        out: dict[str, Any] = {}
        for key, default in LEGACY_LAYOUT.items():
            if key == "name":
                if not (info.exclude_defaults and self.name == DEFAULT_METHOD):
                    out[key] = self.name
            elif key in own:
                out[key] = own[key]
            elif key in self._inert:
                out[key] = self._inert[key]
            elif key not in fields and not info.exclude_defaults:
                out[key] = dict(default) if isinstance(default, dict) else default
            for new, after in NEW_FIELDS_AFTER.items():
                if after == key and new in own and getattr(self, new) != fields[new].default:
                    out[new] = own[new]
        return out

    # -- what the rest of the tool asks of a method -------------------------------------------------
    def shape_signature(self) -> dict[str, Any]:
        """The method's name and the fields that must agree for two adapters to be mixable."""
        sig: dict[str, Any] = {"name": self.name}
        for key in self.SHAPE_FIELDS:
            value: Any = self
            for part in key.split("."):
                value = getattr(value, part)
            sig[key] = list(value) if isinstance(value, tuple) else value
        return sig

    @property
    def scale(self) -> float:
        """The factor the body's update is multiplied by (LoRA: ``alpha / r``)."""
        return 1.0

    @property
    def sites(self) -> tuple[str, ...]:
        """The sites (``layers.{i}.{site}``) the method inserts itself at."""
        return ()

    @property
    def inert_fields(self) -> dict[str, Any]:
        """Fields of the one-config layout that this method does not use, kept only to dump as before."""
        return dict(self._inert)

    @classmethod
    def model_validate(
        cls, obj: Any, *, strict: bool | None = None, from_attributes: bool | None = None,
        context: Any | None = None, **kwargs: Any,
    ) -> Any:
        """Validate ``obj``; on the base class, into the config class registered for its ``name``."""
        if cls.__dict__.get("_DISPATCH_BASE", False):
            return validate_method_config(obj)
        return super().model_validate(obj, strict=strict, from_attributes=from_attributes, context=context,
                                      **kwargs)

    @classmethod
    def from_saved(cls, data: dict[str, Any]) -> MethodConfig:
        """The method config of an artefact's ``adapter.json``; one without ``init`` loads as what it was.

        Bottleneck and AdaMix adapters written before ``init`` existed had a zero up-projection (``mam``);
        reading them with today's default (``bert``) would misstate how they were trained.
        """
        if "init" not in data and data.get("name") != "lora":
            data = {**data, "init": LEGACY_INIT}
        cfg: MethodConfig = validate_method_config(data)
        return cfg

    @classmethod
    def known_fields(cls) -> set[str]:
        """Every field a saved method config may hold (the one-config layout plus every registered
        method's fields): what an ``adapter.json`` written by this version can contain."""
        known = set(LEGACY_LAYOUT) | set(NEW_FIELDS_AFTER)
        for config in CONFIG_CLASSES.values():
            known |= set(config.model_fields)
        return known


class _BottleneckShape(MethodConfig):
    """Fields of a bottleneck-shaped body (bottleneck adapters, AdaMix's experts)."""

    bottleneck_size: int | None = Field(None, ge=1, description="bottleneck width; default hidden/reduction")
    reduction_factor: float = Field(16.0, gt=0)
    activation: Activation = "relu"
    init_std: float = Field(0.02, gt=0)

    def bottleneck_for(self, hidden_size: int) -> int:
        """The bottleneck width for an encoder of ``hidden_size``."""
        if self.bottleneck_size is not None:
            return self.bottleneck_size
        return max(1, int(round(hidden_size / self.reduction_factor)))


class BottleneckConfig(_BottleneckShape):
    """Bottleneck adapters (Houlsby; Pfeiffer): one down/up projection pair per site."""

    SHAPE_FIELDS: ClassVar[tuple[str, ...]] = ("bottleneck_size", "reduction_factor", "activation",
                                               "original_ln_before")
    BOTTLENECK_SITES: ClassVar[tuple[str, ...]] = ()
    original_ln_before: bool = Field(
        False,
        description="AdapterHub SeqBn placement: apply the block's LayerNorm(x + residual) before the adapter "
        "and again after it (BERT/RoBERTa only); default False is the Houlsby placement",
    )

    @property
    def sites(self) -> tuple[str, ...]:
        return self.BOTTLENECK_SITES


class HoulsbyConfig(BottleneckConfig):
    """Houlsby et al. 2019: adapters after the attention and the feed-forward output projections."""

    BOTTLENECK_SITES: ClassVar[tuple[str, ...]] = ("attn", "ffn")
    name: Literal["houlsby"] = "houlsby"


class PfeifferConfig(BottleneckConfig):
    """Pfeiffer et al. 2021: one adapter after the feed-forward output projection."""

    BOTTLENECK_SITES: ClassVar[tuple[str, ...]] = ("ffn",)
    name: Literal["pfeiffer"] = "pfeiffer"


PLACEMENT_SITES: dict[str, tuple[str, ...]] = {"houlsby": ("attn", "ffn"), "pfeiffer": ("ffn",)}
"""Sites adapted by each AdaMix placement; the merged adapter is an artefact of the method of the same name."""


class AdaMixConfig(_BottleneckShape):
    """AdaMix (Wang et al. 2022): M bottleneck experts per site; ``adamix.placement`` picks the sites."""

    SHAPE_FIELDS: ClassVar[tuple[str, ...]] = ("bottleneck_size", "reduction_factor", "activation",
                                               "adamix.num_experts", "adamix.sharing", "adamix.placement")
    name: Literal["adamix"] = "adamix"
    adamix: AdaMixOptions = AdaMixOptions()

    @property
    def sites(self) -> tuple[str, ...]:
        return PLACEMENT_SITES[self.adamix.placement]


LORA_MODULES: tuple[str, ...] = ("query", "key", "value", "attn", "ffn_in", "ffn")
"""LoRA's sites, in body order: the attention query/key/value projections, the attention output projection
(``attn``), the feed-forward input (``ffn_in``, BERT's ``intermediate.dense``) and output (``ffn``)
projections. The last three are the modules bottleneck adapters call ``attn`` / ``ffn`` too."""

LORA_MODULE_ALIASES: dict[str, tuple[str, ...]] = {
    "query": ("query",), "q": ("query",), "q_lin": ("query",),
    "key": ("key",), "k": ("key",), "k_lin": ("key",),
    "value": ("value",), "v": ("value",), "v_lin": ("value",),
    "attn": ("attn",), "attention.output.dense": ("attn",), "out_lin": ("attn",),
    "ffn_in": ("ffn_in",), "intermediate": ("ffn_in",), "intermediate.dense": ("ffn_in",), "lin1": ("ffn_in",),
    "ffn": ("ffn",), "output.dense": ("ffn",), "lin2": ("ffn",),
    # peft matches a bare name against the end of every module path: BERT's three ``dense`` layers.
    "dense": ("attn", "ffn_in", "ffn"),
}
"""Names ``target_modules`` accepts (peft's module names of BERT-family / DistilBERT encoders, or the site
names) -> the sites they select. ``dense`` is every encoder-layer ``dense`` (peft would also adapt the pooler's
``dense``, which adaptermix's encoder does not use)."""

DEFAULT_LORA_MODULES: tuple[str, ...] = ("query", "value")


class LoRAConfig(MethodConfig):
    """LoRA (Hu et al. 2022): a rank-``rank`` update scaled by ``alpha / rank`` on each of ``target_modules``."""

    SHAPE_FIELDS: ClassVar[tuple[str, ...]] = ("rank", "alpha", "target_modules")
    name: Literal["lora"] = "lora"
    rank: int = Field(4, ge=1, description="LoRA rank r")
    alpha: float = Field(8.0, gt=0, description="LoRA alpha; the update is scaled by alpha / r")
    target_modules: tuple[str, ...] = Field(
        DEFAULT_LORA_MODULES,
        description="linear modules LoRA adapts, as peft's target_modules: query, key, value, attn (attention "
        "output dense), ffn_in (intermediate dense), ffn (output dense), or peft's names (dense = all three)",
    )

    @field_validator("target_modules", mode="before")
    @classmethod
    def _canonical_modules(cls, value: Any) -> tuple[str, ...]:
        """Aliases resolved to sites, in :data:`LORA_MODULES` order, each once."""
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)) or not value:
            raise ValueError("target_modules must be a non-empty list of module names")
        chosen: set[str] = set()
        for item in value:
            sites = LORA_MODULE_ALIASES.get(str(item))
            if sites is None:
                raise ValueError(f"unknown LoRA target module {item!r}; valid: {', '.join(LORA_MODULE_ALIASES)}")
            chosen.update(sites)
        return tuple(s for s in LORA_MODULES if s in chosen)

    def resolve_init(self, init: str | None) -> str | None:
        if init not in (None, "peft"):
            raise ConfigError(
                f"method.init {init!r} applies to bottleneck adapters; LoRA keeps peft's init "
                "(A Kaiming-uniform, B zero): leave method.init unset or set it to 'peft'"
            )
        return "peft"

    @property
    def scale(self) -> float:
        """``alpha / r``: the one place the LoRA scale is computed."""
        return float(self.alpha) / float(self.rank)

    @property
    def sites(self) -> tuple[str, ...]:
        return self.target_modules


class GenericMethodConfig(_BottleneckShape):
    """The one-config layout, for a method name outside the registry (e.g. a plug-in not imported): it loads
    as it was saved; building a body from it fails naming the unknown method."""

    SHAPE_FIELDS: ClassVar[tuple[str, ...]] = (
        "bottleneck_size", "reduction_factor", "activation", "original_ln_before", "rank", "alpha",
        "adamix.num_experts", "adamix.sharing", "adamix.placement",
    )
    rank: int = Field(4, ge=1)
    alpha: float = Field(8.0, gt=0)
    original_ln_before: bool = False
    adamix: AdaMixOptions = AdaMixOptions()

    def resolve_init(self, init: str | None) -> str | None:
        return init if init is not None else "bert"


CONFIG_CLASSES: dict[str, type[MethodConfig]] = {
    "houlsby": HoulsbyConfig, "pfeiffer": PfeifferConfig, "lora": LoRAConfig, "adamix": AdaMixConfig,
}
"""Method name -> its config class. ``register_method`` adds each registered method's ``config`` here (the
built-in ones are listed so that the configs validate before the methods package has been imported)."""


def register_config(name: str, config: type[MethodConfig]) -> None:
    """Make ``config`` the class a method config named ``name`` validates into."""
    if not isinstance(config, type) or not issubclass(config, MethodConfig):
        raise TypeError(f"the config of method {name!r} must subclass MethodConfig")
    CONFIG_CLASSES[name] = config


def config_class(name: str) -> type[MethodConfig]:
    """The config class registered for method ``name`` (:class:`GenericMethodConfig` if none is)."""
    return CONFIG_CLASSES.get(name, GenericMethodConfig)


def validate_method_config(data: Any) -> Any:
    """``data`` (a mapping, or a config) as the config class registered for its ``name`` — the discriminated
    union of every registered method's config. A config instance passes unchanged."""
    if isinstance(data, MethodConfig):
        return data
    if not isinstance(data, Mapping):
        raise ValueError(f"a method config must be a mapping, not {type(data).__name__}")
    data = apply_preset(dict(data))
    name = data.get("name", DEFAULT_METHOD)
    return config_class(str(name)).model_validate(data)

