"""Configuration of one training run: model, data, method, head and optimisation."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from adaptermix.backbone.loading import DEFAULT_MODEL
from adaptermix.core.config import StrictModel
from adaptermix.data.config import DataConfig
from adaptermix.methods.config import MethodConfig
from adaptermix.model import HeadConfig


class ModelConfig(StrictModel):
    """The frozen encoder: a Hugging Face id or a local path, and the format it computes in."""

    name: str = DEFAULT_MODEL
    max_length: int = Field(128, ge=8, le=4096, description="tokens per input (pairs: both texts together)")
    # None = $ADAPTERMIX_PRECISION or auto (bf16 where the device computes it fast); adapters and heads
    # always keep fp32 weights. The resolved value is recorded in artefacts (training.precision).
    precision: Literal["auto", "fp32", "bf16"] | None = Field(
        None, description="encoder precision: fp32, bf16 or auto (default: $ADAPTERMIX_PRECISION or auto)"
    )


class TrainConfig(StrictModel):
    """Optimisation: one loop for every method (AdamW, linear warm-up/decay, clipping, early stopping)."""

    learning_rate: float = Field(4e-4, gt=0)
    epochs: float = Field(3, gt=0, description="may be fractional")
    batch_size: int = Field(32, ge=1)
    eval_batch_size: int = Field(64, ge=1)
    warmup_ratio: float = Field(0.06, ge=0, le=1)
    weight_decay: float = Field(0.1, ge=0)
    grad_clip: float | None = Field(1.0, gt=0)
    seed: int = 42
    eval_every_steps: int | None = Field(None, ge=1, description="validate every N steps (default: per epoch)")
    patience: int | None = Field(None, ge=1, description="stop after N validations without improvement")
    progress: bool = True


class TrainRunConfig(StrictModel):
    """Everything ``adaptermix train`` needs; saved resolved beside the adapter it produces."""

    model: ModelConfig = ModelConfig()
    data: DataConfig
    method: MethodConfig = MethodConfig()
    head: HeadConfig = HeadConfig()
    train: TrainConfig = TrainConfig()
    output_dir: str = "runs/adapter"
    eval_splits: list[str] = ["validation", "test"]
