"""ONE training loop for every adapter method.

AdamW over adapter + head parameters only (the encoder is frozen and asserted so), linear warm-up then
linear decay, gradient clipping, validation each epoch (or every N steps) with best-checkpoint selection
and optional early stopping, a progress bar with ETA and running loss. Deterministic for a seed on CPU.

Methods that need more than "logits -> task loss" per step (AdaMix: two stochastic passes plus a
consistency term) override :meth:`~adaptermix.methods.base.AdapterBody.training_loss`, a hook every body
has (default: the task loss); the loop stays the same.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from adaptermix.data.schema import TaskInfo
from adaptermix.methods.losses import task_loss as task_loss  # re-exported: its historical home
from adaptermix.model import AdapterModel
from adaptermix.training.batching import TokenizedSet, num_train_batches, train_batches
from adaptermix.training.config import TrainConfig
from adaptermix.training.evaluate import evaluate


@dataclass
class TrainResult:
    """Outcome of :func:`train`: the best validation metrics and the history of validations."""

    best_metrics: dict[str, float]
    best_step: int
    steps: int
    history: list[dict[str, float]] = field(default_factory=list)
    stopped_early: bool = False


def step_loss(model: AdapterModel, batch: dict[str, torch.Tensor], labels: torch.Tensor, regression: bool) -> torch.Tensor:
    """The loss of one step: the body's ``training_loss`` hook (the task loss unless the method overrides
    it, e.g. AdaMix's consistency term)."""
    return model.body.training_loss(model, batch, labels, regression)


def _param_groups(model: AdapterModel, weight_decay: float) -> list[dict[str, object]]:
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for mod in (model.body, model.head):
        for name, p in mod.named_parameters():
            if not p.requires_grad:
                continue
            (no_decay if name.endswith("bias") else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _headline(info: TaskInfo, metrics: dict[str, float]) -> float:
    return metrics[info.metric]


def train(
    model: AdapterModel,
    train_set: TokenizedSet,
    val_set: TokenizedSet | None,
    info: TaskInfo,
    cfg: TrainConfig,
) -> TrainResult:
    """Train ``model``'s adapter and head in place; on return it holds the best validation checkpoint."""
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    model.assert_frozen()
    regression = info.problem == "regression"
    opt = torch.optim.AdamW(_param_groups(model, cfg.weight_decay), lr=cfg.learning_rate)
    per_epoch = num_train_batches(len(train_set), cfg.batch_size)
    total = max(1, math.ceil(per_epoch * cfg.epochs))
    warmup = int(total * cfg.warmup_ratio)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / max(1, warmup) if s < warmup else max(0.0, (total - s) / max(1, total - warmup))
    )
    eval_every = cfg.eval_every_steps or per_epoch
    best: tuple[float, int, dict[str, torch.Tensor], dict[str, float]] | None = None
    history: list[dict[str, float]] = []
    bad_evals, step, running = 0, 0, None
    bar = tqdm(total=total, desc=f"train {info.name}", unit="step", disable=not cfg.progress, leave=False)
    stopped = False
    model.train()
    while step < total and not stopped:
        for _idx, batch in train_batches(train_set, cfg.batch_size, gen):
            labels = train_set.labels[_idx]
            loss = step_loss(model, batch, labels, regression)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], cfg.grad_clip)
            opt.step()
            sched.step()
            step += 1
            running = loss.item() if running is None else 0.95 * running + 0.05 * loss.item()
            bar.update(1)
            bar.set_postfix(loss=f"{running:.4f}")
            if val_set is not None and (step % eval_every == 0 or step == total):
                metrics = evaluate(model, val_set, info, cfg.eval_batch_size)
                history.append({"step": step, **metrics})
                score = _headline(info, metrics)
                if best is None or score > best[0]:
                    state = {k: v.detach().clone() for k, v in model.trainable_state().items()}
                    best = (score, step, state, metrics)
                    bad_evals = 0
                else:
                    bad_evals += 1
                    if cfg.patience is not None and bad_evals >= cfg.patience:
                        stopped = True
                model.train()
            if step >= total or stopped:
                break
    bar.close()
    model.eval()
    if best is None:
        return TrainResult({}, step, step, history, stopped)
    model.load_trainable_state(best[2])
    return TrainResult(best[3], best[1], step, history, stopped)
