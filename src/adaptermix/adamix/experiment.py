"""The AdaMix GLUE experiment: AdaMix vs Houlsby / Pfeiffer / LoRA, ablations and inference modes.

Reproduces the *shape* of Wang et al. 2022, Tables 1, 3, 4 and 6 on a small encoder with capped data. The
config names *variants* (a method config plus optional training overrides, i.e. configurations, not code)
and the tasks; the grid is variants x tasks x seeds. A variant may restrict itself to some tasks (the
paper runs its ablations, Tables 4 and 6, on five of the GLUE tasks); the default grid further keeps only
``default_tasks`` (to fit a CPU budget), and ``full=True`` lifts that restriction.

Resumable: every run writes ``results/<variant>/<task>/seed<k>.json`` atomically when it is done, keyed by
a hash of everything that determines it; a rerun skips runs whose result exists with the same key (a
changed config re-runs exactly the affected runs). The Markdown tables are rewritten after every run from
the result files only.

The grid runs on the package's one job engine (:mod:`adaptermix.core.jobs`, as a study's trainings do): a
run is a job whose key is :attr:`Run.key` and whose record is its result file (:func:`run_grid`).
Parallel: ``workers=N`` starts N processes (:func:`adaptermix.core.jobs.run_workers`) that walk the same
pending list and take each run through a claim file, each with 1/N of the torch threads. Two invocations
on the same folder cooperate the same way. A run's training is itself resumable by the study pipeline's
config-hash logic (:mod:`adaptermix.training.resume`): an adapter already trained with the same key (a run
killed while evaluating its inference modes) is reused, not trained again. On the 2-core CPU here, two one-thread workers make 1.13-1.16x the
training steps per second of one two-thread process (``bench/bench_workers.py``): a MiniLM step at
batch 32 does not use two threads fully.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from adaptermix.adamix.report import ResultRow, render_tables
from adaptermix.core import jobs
from adaptermix.core.config import StrictModel
from adaptermix.core.errors import ConfigError
from adaptermix.core.hashing import json_hash
from adaptermix.core.io import atomic_write_json, atomic_write_text
from adaptermix.core.signals import exit_on_sigterm
from adaptermix.data.config import DataConfig
from adaptermix.methods.config import MethodConfig
from adaptermix.model import HeadConfig
from adaptermix.training.config import ModelConfig, TrainConfig, TrainRunConfig

if TYPE_CHECKING:  # the runner imports this module: a runtime import would be a cycle
    from adaptermix.adamix.runner import Assets

log = logging.getLogger(__name__)

Mode = Literal["random", "fixed", "ensemble"]


class VariantSpec(StrictModel):
    """One row family of the tables: a method config, training overrides and (optionally) its tasks."""

    label: str | None = Field(None, description="row name in the tables (default: the variant's key)")
    method: dict[str, Any]
    train: dict[str, Any] = Field(
        default_factory=dict, description="overrides of the experiment's train block"
    )
    tasks: list[str] | None = Field(
        None, description="the tasks this variant runs on (None: every task), in both grids"
    )


class InferenceSpec(StrictModel):
    """Table 3: evaluate one AdaMix variant's unmerged checkpoints under other inference modes."""

    variant: str = "adamix"
    modes: list[Mode] = ["random", "fixed", "ensemble"]
    routes: int = Field(4, ge=1, description="random routes T of the ensemble (paper: 4)")
    seed: int = 0


class TableSpec(StrictModel):
    """One output table: rows are variant keys, or ``variant:mode`` for an inference mode."""

    title: str
    rows: list[str]
    note: str = ""
    tasks: list[str] | None = Field(None, description="this table's columns (None: every task with results)")


class ExperimentConfig(StrictModel):
    """Everything ``adaptermix adamix experiment`` needs; see ``configs/adamix-glue.yaml``."""

    model: ModelConfig = ModelConfig(max_length=64)
    data_dir: str | None = None
    tasks: list[str]
    default_tasks: list[str] | None = Field(
        None, description="tasks of the default grid (None: all); --full runs every variant's tasks"
    )
    max_train: int | None = Field(1000, ge=1)
    max_validation: int | None = Field(300, ge=1)
    max_test: int | None = Field(None, ge=1)
    seeds: list[int] = [1, 2, 3]
    train: TrainConfig = TrainConfig(learning_rate=1e-3, epochs=2, progress=False)
    head: HeadConfig = HeadConfig()
    variants: dict[str, VariantSpec]
    inference: InferenceSpec = InferenceSpec()
    tables: list[TableSpec]
    output_dir: str = "runs/adamix-glue"
    keep_adapters: bool = True
    train_tokens_per_s: float = Field(
        2500.0, gt=0, description="one process's training throughput, for the --dry-run time estimate only"
    )


@dataclass(frozen=True)
class Run:
    """One training run of the grid, fully resolved."""

    variant: str
    task: str
    seed: int
    cfg: TrainRunConfig
    modes: tuple[str, ...]

    @property
    def key(self) -> str:
        """Hash of what the run computes. The *resolved* encoder precision is part of it when not fp32
        (fp32 runs keep the keys they had before precision existed; a bf16 run is a run of its own)."""
        from adaptermix.core.device import precision_name, resolve_device, resolve_precision

        train = self.cfg.model_dump(mode="json", exclude={"output_dir": True, "model": {"precision"}})
        payload: dict[str, Any] = {"train": train, "modes": self.modes}
        precision = precision_name(resolve_precision(self.cfg.model.precision, resolve_device()))
        if precision != "fp32":
            payload["precision"] = precision
        return json_hash(payload)

    def result_path(self, root: Path) -> Path:
        return root / "results" / self.variant / self.task / f"seed{self.seed}.json"

    def claim_path(self, root: Path) -> Path:
        return self.result_path(root).with_suffix(".claim")


def _merge_dicts(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge_dicts(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def validate_experiment(cfg: ExperimentConfig) -> None:
    """Cross-field checks: table rows and the inference variant must name variants; modes need adamix."""
    for table in cfg.tables:
        for row in table.rows:
            if row.split(":")[0] not in cfg.variants:
                raise ConfigError(
                    f"table {table.title!r}: row {row!r} names no variant (have: {', '.join(cfg.variants)})"
                )
    if cfg.inference.variant not in cfg.variants:
        raise ConfigError(f"inference.variant {cfg.inference.variant!r} is not a variant")
    if cfg.variants[cfg.inference.variant].method.get("name") != "adamix":
        raise ConfigError(f"inference.variant {cfg.inference.variant!r} must be an 'adamix' variant")
    for where, subset in (
        [("default_tasks", cfg.default_tasks)]
        + [(f"variant {k!r}", v.tasks) for k, v in cfg.variants.items()]
        + [(f"table {t.title!r}", t.tasks) for t in cfg.tables]
    ):
        unknown = sorted(set(subset or ()) - set(cfg.tasks))
        if unknown:
            raise ConfigError(f"{where}: task {unknown[0]!r} is not in tasks")


def plan_runs(cfg: ExperimentConfig, full: bool = False) -> list[Run]:
    """The grid, ordered seed-major so that every table cell gets its first seed early."""
    validate_experiment(cfg)
    root = Path(cfg.output_dir)
    base_train = cfg.train.model_dump(mode="json")
    runs = []
    for seed in cfg.seeds:
        for task in cfg.tasks:
            for name, v in cfg.variants.items():
                if v.tasks is not None and task not in v.tasks:
                    continue
                if not full and cfg.default_tasks is not None and task not in cfg.default_tasks:
                    continue
                # The seed drives the adapter init too, so the spread over seeds includes init variance.
                method = MethodConfig.model_validate({**v.method, "init_seed": seed})
                train = TrainConfig.model_validate({**_merge_dicts(base_train, v.train), "seed": seed})
                data = DataConfig(
                    name=task,
                    data_dir=cfg.data_dir,
                    max_train=cfg.max_train,
                    max_validation=cfg.max_validation,
                    max_test=cfg.max_test,
                )
                run_cfg = TrainRunConfig(
                    model=cfg.model,
                    data=data,
                    method=method,
                    head=cfg.head,
                    train=train,
                    output_dir=str(root / "adapters" / name / task / f"seed{seed}"),
                    eval_splits=["test"],
                )
                modes = tuple(cfg.inference.modes) if name == cfg.inference.variant else ()
                runs.append(Run(name, task, seed, run_cfg, modes))
    return runs


def is_done(run: Run, root: Path) -> bool:
    path = run.result_path(root)
    if not path.is_file():
        return False
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("key") == run.key
    except (OSError, json.JSONDecodeError):
        return False


def load_rows(cfg: ExperimentConfig) -> list[ResultRow]:
    """Every finished result of the current config (the tables read only these files).

    Results left by an earlier version of the config (their key matches no run of the full grid) are
    ignored, so a table never mixes settings.
    """
    keys = {r.key for r in plan_runs(cfg, full=True)}
    rows = []
    for path in sorted((Path(cfg.output_dir) / "results").glob("*/*/seed*.json")):
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            if raw.get("key") in keys:
                rows.append(ResultRow.from_json(raw))
        except (OSError, json.JSONDecodeError, KeyError):
            log.warning("skipping unreadable result %s", path)
    return rows


def render_results(cfg: ExperimentConfig) -> str:
    """The configured tables (Markdown) rendered from the result files."""
    labels = {k: v.label or k for k, v in cfg.variants.items()}
    header = (
        f"Encoder `{cfg.model.name}`, max_length {cfg.model.max_length}; caps: train {cfg.max_train}, "
        f"validation {cfg.max_validation}, test {cfg.max_test or 'all'} examples per task; "
        f"{cfg.train.epochs:g} epochs, lr {cfg.train.learning_rate:g}, batch {cfg.train.batch_size}; "
        f"seeds {', '.join(map(str, cfg.seeds))}. Test split = GLUE dev set (QNLI/MNLI: carved from dev). "
        "Cells: mean ± std over seeds (n = seeds finished), metric x 100."
    )
    return render_tables(cfg.tables, load_rows(cfg), labels, cfg.tasks, header)


def write_tables(cfg: ExperimentConfig) -> str:
    """Render the tables to ``<output_dir>/results.md`` (atomically) and return them."""
    text = render_results(cfg)
    atomic_write_text(Path(cfg.output_dir) / "results.md", text)
    return text


#: Builds a worker's executor (run -> result record) once per worker process; must be picklable (a
#: module-level function) so that spawned workers can receive it. Tests inject a fake one.
ExecutorFactory = Callable[[ExperimentConfig, list[str]], Callable[[Run], dict[str, Any]]]


def _default_factory(cfg: ExperimentConfig, tasks: list[str]) -> Callable[[Run], dict[str, Any]]:
    from adaptermix.adamix.runner import make_executor

    return make_executor(cfg, tasks)


def run_experiment(
    cfg: ExperimentConfig,
    full: bool = False,
    dry_run: bool = False,
    workers: int = 1,
    executor_factory: ExecutorFactory | None = None,
) -> str:
    """Run every pending run of the grid (resumable, ``workers`` processes) and return the Markdown tables."""
    from adaptermix.adamix.runner import estimate_seconds, load_assets

    if workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}")
    root = Path(cfg.output_dir)
    runs = plan_runs(cfg, full)
    pending = [r for r in runs if not is_done(r, root)]
    tasks = sorted({r.task for r in runs})
    assets: Assets | None = None
    if dry_run or executor_factory is None:
        assets = load_assets(cfg, tasks)  # for the estimate (and, in-process, reused by the runs)
        total = sum(estimate_seconds(r, assets, cfg.train_tokens_per_s, cfg.inference.routes) for r in pending)
        print(
            f"adamix experiment: {len(runs)} runs, {len(runs) - len(pending)} done, {len(pending)} pending; "
            f"estimate {total / 60:.0f} min in one process at {cfg.train_tokens_per_s:g} train tokens/s"
            # Not divided by `workers`: extra workers only help as far as idle cores allow (on 2 cores,
            # 2 workers finish ~1.15x sooner; bench/bench_workers.py).
            + (f" (workers help only as far as idle cores allow; {workers} asked)" if workers > 1 else ""),
            flush=True,
        )
        if dry_run:
            for r in pending:
                print(
                    f"  {r.variant:<24} {r.task:<6} seed {r.seed}  ~{estimate_seconds(r, assets, cfg.train_tokens_per_s, cfg.inference.routes):.0f} s"
                )
            return render_results(cfg)  # a dry run writes nothing
    clear_stale_claims(root)
    if not pending:
        return write_tables(cfg)
    if workers > 1:
        assets = None  # each worker loads its own; the parent need not hold a copy while they run
        _run_workers(cfg, full, workers, executor_factory or _default_factory)
    elif executor_factory is None:
        from adaptermix.adamix.runner import make_executor

        work_through(cfg, pending, make_executor(cfg, tasks, assets))  # reuses the estimate's assets
    else:
        work_through(cfg, pending, executor_factory(cfg, tasks))
    return write_tables(cfg)


def clear_stale_claims(root: Path) -> list[Path]:
    """Remove the claims of runs whose process died (killed with SIGKILL, say); returns them."""
    return jobs.clear_stale_claims(root.glob("results/*/*/*.claim"))


def run_grid(cfg: ExperimentConfig, execute: Callable[[Run], dict[str, Any]]) -> jobs.JobGrid[Run, dict[str, Any]]:
    """The experiment as a grid of the job engine: a run is done when its result file carries its key;
    its claim sits beside that file; its result is recorded (atomically) with the key added."""
    root = Path(cfg.output_dir)

    def record(run: Run, result: dict[str, Any]) -> None:
        result["key"] = run.key
        atomic_write_json(run.result_path(root), result)

    return jobs.JobGrid(lambda run: is_done(run, root), lambda run: run.claim_path(root), execute, record)


def work_through(
    cfg: ExperimentConfig, pending: list[Run], execute: Callable[[Run], dict[str, Any]], name: str = ""
) -> int:
    """Run each of ``pending`` that no other process has finished or claimed; returns how many ran here."""
    prefix = f"{name} " if name else ""

    def report(i: int, run: Run, result: dict[str, Any], seconds: float) -> None:
        print(
            f"{prefix}[{i}/{len(pending)}] {run.variant} {run.task} seed {run.seed}: "
            f"{result['metric']}={result['test'][result['metric']]:.4f} ({seconds:.0f} s)",
            flush=True,
        )
        write_tables(cfg)

    return jobs.work_through(pending, run_grid(cfg, execute), on_done=report)


def _worker_main(
    cfg_json: dict[str, Any], full: bool, threads: int, name: str, factory: ExecutorFactory
) -> None:
    """Entry point of a spawned worker: its own threads, encoder and data; the same pending list."""
    with exit_on_sigterm():  # terminate() from the parent still releases this worker's claim
        jobs.enter_worker(threads)
        cfg = ExperimentConfig.model_validate(cfg_json)
        root = Path(cfg.output_dir)
        pending = [r for r in plan_runs(cfg, full) if not is_done(r, root)]
        work_through(cfg, pending, factory(cfg, sorted({r.task for r in pending})), name)


def _run_workers(cfg: ExperimentConfig, full: bool, workers: int, factory: ExecutorFactory) -> None:
    threads = jobs.worker_threads(workers)
    print(f"adamix experiment: {workers} workers x {threads} thread(s)", flush=True)
    cfg_json = cfg.model_dump(mode="json")
    jobs.run_workers(
        _worker_main, [(cfg_json, full, threads, f"w{i + 1}", factory) for i in range(workers)], "adamix"
    )
