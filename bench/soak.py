"""Soak test (Part 7): SIGKILL a running sweep at N random moments, resume each time, compare the result.

On a tiny random-init BERT saved to disk and a pool of seeded adapters on the toy sentiment data (every
subset, clean + FGSM), it runs ``python -m adaptermix sweep`` once uninterrupted (the reference), then
again with ``--kills`` SIGKILLs at seeded random moments (``--backend local``, ``ray`` — on a local
Ray instance the killed driver starts itself — or ``both``), resuming after each kill until the sweep
completes. It prints, per backend:

- faults injected / survived (a kill is survived when the store passes ``PRAGMA integrity_check`` right
  after it and the sweep later completes);
- trials stored / expected, duplicates, gaps (expected trials missing), data lost (trials whose stored
  metrics differ from the uninterrupted run's, or torn rows), leftover processes reaped;
- and the size of the bad-input catalogue of ``tests/reliability/test_bad_inputs.py``.

Usage: ``python bench/soak.py [--kills 20] [--seed 0] [--adapters 7] [--backend local|ray|both]
[--keep DIR]``.
Exit status 0 when every figure is as it should be (0 duplicates, 0 gaps, 0 lost).
"""

from __future__ import annotations

import argparse
import ast
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from adaptermix.sweep.spec import describe_expansion, load_spec
from adaptermix.testing.harness import (
    child_env,
    compare_stores,
    make_sweep,
    ray_tmpdir,
    save_tiny_bert,
    sweep_command,
    sweep_with_kills,
)

REPO = Path(__file__).resolve().parents[1]
BAD_INPUTS = REPO / "tests" / "reliability" / "test_bad_inputs.py"


def _catalogue(path: Path = BAD_INPUTS) -> tuple[int, int]:
    """(bad inputs in the catalogue, commands they cover), read from the test module's source with ``ast``
    (importing it would need ``tests/`` on ``sys.path`` and pytest): the ``case(id, argv, ...)`` calls of
    its ``CASES`` tuple, a command being the first word of ``argv`` (a string, a module-level string
    constant, or a ``+`` of those)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    consts: dict[str, ast.expr] = {}
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            consts[node.target.id] = node.value
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            consts[node.targets[0].id] = node.value
    table = consts.get("CASES")
    cases = list(table.elts) if isinstance(table, ast.Tuple) else []

    def text(e: ast.expr) -> str:
        if isinstance(e, ast.Constant) and isinstance(e.value, str):
            return e.value
        if isinstance(e, ast.Name) and e.id in consts:
            return text(consts[e.id])
        if isinstance(e, ast.BinOp) and isinstance(e.op, ast.Add):
            return text(e.left) + text(e.right)
        raise ValueError(f"{path.name}: cannot read an argv from {ast.unparse(e)!r}")

    if not cases:
        raise ValueError(f"{path.name}: no CASES tuple found")
    commands = {text(c.args[1]).split()[0] for c in cases if isinstance(c, ast.Call) and len(c.args) > 1}
    return len(cases), len(commands)


def soak(backend: str, spec: Path, reference: Path, total: int, kills: int, seed: int, root: Path) -> dict:
    store = root / f"soak-{backend}.sqlite"
    if backend == "ray":
        with ray_tmpdir() as tmp:
            run = sweep_with_kills(
                sweep_command(spec, store, "ray"), store, total, kills, seed, child_env(tmp)
            )
    else:
        run = sweep_with_kills(sweep_command(spec, store), store, total, kills, seed, child_env())
    diff = compare_stores(reference, store)
    survived = run.integrity_at_kill.count("ok") if diff.ok else 0
    return {
        "backend": backend,
        "faults injected": run.kills,
        "faults survived": survived,
        "attempts": run.attempts,
        "trials": diff.trials,
        "expected": diff.expected,
        "duplicates": diff.duplicates,
        "gaps": diff.gaps,
        "data lost": diff.lost,
        "extra": diff.extra,
        "integrity": diff.integrity,
        "leftover processes reaped": run.leftovers,
        "rows at each kill": run.counts_at_kill,
        "seconds": round(run.seconds, 1),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=20, help="SIGKILLs per backend (default 20)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    ap.add_argument("--adapters", type=int, default=7, help="pool size: N * 2**(N-1) * 2 trials (7: 896)")
    ap.add_argument(
        "--backend",
        choices=["local", "ray", "both"],
        default="local",
        help="which backend to soak (ray needs adaptermix[ray]; default: local)",
    )
    ap.add_argument("--keep", help="work in this folder and keep it (default: a temporary folder)")
    args = ap.parse_args()
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # the tiny checkpoint has no pooler: no load report on stderr

    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="adaptermix-soak-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        _, encoder = save_tiny_bert(root)
        spec = make_sweep(root, encoder, n_adapters=args.adapters)
        loaded = load_spec(spec)
        total = describe_expansion(loaded, list(loaded.pool_dirs())).total
        reference = root / "reference.sqlite"
        started = time.monotonic()
        subprocess.run(sweep_command(spec, reference), env=child_env(), check=True, capture_output=True)
        print(f"uninterrupted run: {total} trials in {time.monotonic() - started:.1f} s", flush=True)
        results = []
        for backend in ["local", "ray"] if args.backend == "both" else [args.backend]:
            print(f"soaking the {backend} backend with {args.kills} SIGKILLs ...", flush=True)
            results.append(soak(backend, spec, reference, total, args.kills, args.seed, root))
            print(json.dumps(results[-1], indent=2), flush=True)
        cases, commands = _catalogue()
        print(
            f"bad-input catalogue: {cases} cases over {commands} commands "
            "(tests/reliability/test_bad_inputs.py)"
        )
        print()
        print("| backend | faults injected | faults survived | trials | duplicates | gaps | data lost |")
        print("|---|---|---|---|---|---|---|")
        for r in results:
            print(
                f"| {r['backend']} | {r['faults injected']} | {r['faults survived']} "
                f"| {r['trials']}/{r['expected']} "
                f"| {r['duplicates']} | {r['gaps']} | {r['data lost']} |"
            )
        ok = all(
            r["faults survived"] == r["faults injected"] == args.kills
            and r["trials"] == r["expected"]
            and not (r["duplicates"] or r["gaps"] or r["data lost"] or r["extra"])
            for r in results
        )
        return 0 if ok else 1
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
