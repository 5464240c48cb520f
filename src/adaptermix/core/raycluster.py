"""What the Ray backends (sweeps and training) share: importing Ray, joining a cluster, sizing actors,
and shipping small file trees between driver and workers through the object store.

Workers never rely on the driver's filesystem: inputs (adapter artefacts, dataset rows) go out as bytes or
Python objects and outputs (trained artefacts) come back as bytes, so a cluster without a shared
filesystem works. Only the driver writes to disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adaptermix.core.errors import ResourceError
from adaptermix.core.io import atomic_dir


def import_ray() -> Any:
    """The ``ray`` module, or a one-line error saying how to install the optional extra."""
    try:
        import ray
    except ImportError:
        raise ResourceError("the Ray backend needs Ray: pip install 'adaptermix[ray]'") from None
    return ray


def init_ray(ray: Any, address: str | None) -> None:
    """Join ``address`` (``None``: start a local instance) unless this process is already connected."""
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True,
                 configure_logging=False)


@dataclass(frozen=True)
class ActorPlan:
    """How many actors to start and what each reserves (one GPU each when the cluster has GPUs)."""

    count: int
    options: dict[str, Any]
    threads: int | None  # torch threads per CPU actor; None on GPU actors

    @classmethod
    def for_cluster(cls, ray: Any, jobs: int, workers: int | None, cpus_per_worker: int) -> ActorPlan:
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        cpus = int(resources.get("CPU", 1))
        n = max(1, min(workers or (gpus if gpus else max(1, cpus // cpus_per_worker)), jobs))
        per_worker = max(1, cpus // n)  # every actor must fit at once, or work waits on a pending actor
        # Restart a dead actor (re-running its set-up) and retry its in-flight calls: work is keyed, so a
        # call that runs twice is still recorded once.
        opts: dict[str, Any] = {"max_restarts": -1, "max_task_retries": -1}
        opts.update({"num_gpus": 1} if gpus else {"num_cpus": per_worker})
        return cls(n, opts, None if gpus else per_worker)


def pack_tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` by its POSIX path relative to ``root``."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def unpack_tree(files: dict[str, bytes], root: Path) -> None:
    """Write a :func:`pack_tree` mapping under ``root`` (which must be new or empty)."""
    for rel, data in files.items():
        target = root / rel
        if ".." in Path(rel).parts or Path(rel).is_absolute():
            raise ResourceError(f"refusing to write {rel!r} outside {root}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def write_dirs_atomically(files: dict[str, bytes], parent: Path) -> list[Path]:
    """Write each top-level folder of a :func:`pack_tree` mapping to ``parent/<folder>`` atomically."""
    tops: dict[str, dict[str, bytes]] = {}
    for rel, data in files.items():
        top, _, rest = rel.partition("/")
        if not rest:
            raise ResourceError(f"expected files inside folders, got {rel!r}")
        tops.setdefault(top, {})[rest] = data
    written = []
    for top, inner in tops.items():
        with atomic_dir(parent / top) as tmp:
            unpack_tree(inner, tmp)
        written.append(parent / top)
    return written
