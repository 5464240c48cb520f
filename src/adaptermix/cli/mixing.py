"""``adaptermix fsd``, ``adaptermix mix`` and ``adaptermix prune``: the paper's diagnostics and operations."""

from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING

import adaptermix as am
from adaptermix.cli.base import (
    MIX_SPACES,
    PARAM_SPACES,
    PRUNE_SCOPES,
    RULE_NAMES,
    Command,
    Listed,
    add_overwrite,
    command_inputs,
    register_command,
)
from adaptermix.core.config import parse_override
from adaptermix.core.io import check_output, mark_output, output_stamp

if TYPE_CHECKING:
    from adaptermix.artefacts.pool import AdapterPool


def _fsd_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("adapters", nargs="+", help="adapter directories (named by their folder)")
    p.add_argument("-o", "--output-dir", required=True,
                   help="writes fsd.csv, fsd.json, fsd.png/svg, fsd_per_<by>.csv, fsd_by_kind.csv "
                   "(+ fsd_floor.csv with --replicate, fsd_top.csv with --top-fraction)")
    p.add_argument("--space", choices=PARAM_SPACES, metavar="SPACE", default="raw",
                   help="%(choices)s: raw parameters (the paper) or LoRA effective updates dW = B A alpha/r")
    p.add_argument("--by", choices=["layer", "site", "module", "kind"], default="layer",
                   help="grouping of the per-group FSD")
    p.add_argument("--replicate", action="append", default=[], metavar="NAME=PATH",
                   help="a replicate of adapter NAME (same domain and init, other training seed/sample): "
                   "its FSD to NAME is NAME's noise floor (repeatable)")
    p.add_argument("--top-fraction", type=float, metavar="F",
                   help="also the FSD over the weights in the top F by magnitude of both adapters (0 < F <= 1)")
    p.add_argument("--from-init", action="store_true",
                   help="compare what training changed (each adapter minus its init, rebuilt from method.init "
                   "and init_seed) instead of the weights; not the paper's FSD")
    add_overwrite(p)


def _replicates(items: list[str], names: list[str]) -> dict[str, tuple[str, str]]:
    """``NAME=PATH`` options -> replicate name -> (domain adapter name, path)."""
    from adaptermix.core.errors import ConfigError

    out: dict[str, tuple[str, str]] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ConfigError(f"--replicate {item!r}: expected NAME=PATH")
        if name not in names:
            raise ConfigError(f"--replicate {item!r}: {name!r} is not one of the adapters ({', '.join(names)})")
        k = 1 + sum(1 for d, _ in out.values() if d == name)
        out[f"{name}~r{k}"] = (name, path)
    return out


def _csv(rows: list[list[object]]) -> str:
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    return buf.getvalue()


def _fsd_run(args: argparse.Namespace) -> int:
    import numpy as np

    from adaptermix.core.io import atomic_write_json, atomic_write_text
    from adaptermix.report.plots import fsd_heatmap, save_figure

    stamp = output_stamp("fsd", command_inputs(args, skip=("output_dir",)))
    check_output(args.output_dir, stamp=stamp, overwrite=args.overwrite)
    dirs = {Path(d).name: d for d in args.adapters}
    if len(dirs) != len(args.adapters):
        from adaptermix.core.errors import ConfigError

        raise ConfigError("two adapters have the same name; give them distinct directory names")
    reps = _replicates(args.replicate, list(dirs))
    pool = am.load_pool({**dirs, **{r: p for r, (_, p) in reps.items()}})
    summary = am.fsd_summary(pool, args.space, {r: d for r, (d, _) in reps.items()}, args.top_fraction,
                             from_init=args.from_init)
    names = summary["names"]
    out = Path(args.output_dir)
    vals = np.asarray(summary["fsd"])
    atomic_write_text(out / "fsd.csv", _csv([["adapter", *names]]
                                            + [[n, *(f"{v:.6f}" for v in row)] for n, row in zip(names, vals, strict=True)]))
    grouped = am.fsd_grouped(pool, args.by, args.space)
    rows: list[list[object]] = [[args.by, "adapter_a", "adapter_b", "fsd", "space"]]
    for g, key in enumerate(grouped.keys):
        for i in range(len(pool.names)):
            for j in range(i + 1, len(pool.names)):
                rows.append([key, pool.names[i], pool.names[j], f"{float(grouped.values[g, i, j]):.6f}", args.space])
    atomic_write_text(out / f"fsd_per_{args.by}.csv", _csv(rows))
    kind_cols = ["adapter_a", "adapter_b", "kind", "n_params", "fsd", "space"]
    atomic_write_text(out / "fsd_by_kind.csv", _csv([kind_cols] + [
        [r[c] if c != "fsd" else f"{r['fsd']:.6f}" for c in kind_cols] for r in summary["by_kind"]]))
    written = ["fsd.csv", "fsd.json", "fsd.png", "fsd.svg", f"fsd_per_{args.by}.csv", "fsd_by_kind.csv"]
    floor = summary["noise_floor"]
    if floor is not None:
        cols = ["adapter_a", "adapter_b", "fsd", "floor_a", "floor_b", "excess"]
        atomic_write_text(out / "fsd_floor.csv", _csv([cols] + [
            [r[c] if isinstance(r[c], str) else ("" if r[c] is None else f"{r[c]:.6f}") for c in cols]
            for r in floor["pairs"]]))
        written.append("fsd_floor.csv")
    top = summary.get("top_fraction")
    if top is not None:
        atomic_write_text(out / "fsd_top.csv", _csv([["adapter", *names]] + [
            [n, *(f"{v:.6f}" for v in row)] for n, row in zip(names, top["fsd"], strict=True)]))
        written.append("fsd_top.csv")
    atomic_write_json(out / "fsd.json", summary)
    save_figure(fsd_heatmap(vals, names, f"FSD (%), {pool.method.get('name')}, space={args.space}"), out / "fsd")
    width = max(len(n) for n in names)
    print(f"FSD (%) of the {summary['of']}, space={args.space}, {summary['n_params']} parameters per adapter")
    print(" " * (width + 1) + " ".join(f"{n[:7]:>7s}" for n in names))
    for name, row in zip(names, vals, strict=True):
        print(f"{name:<{width}s} " + " ".join(f"{v * 100:7.2f}" for v in row))
    if floor is not None:
        print("noise floor (FSD to the same domain's replicates, %): " + ", ".join(
            f"{d} {f * 100:.2f}" for d, f in floor["floor"].items() if f is not None))
        for r in floor["pairs"]:
            if r["excess"] is not None:
                print(f"  {r['adapter_a']} vs {r['adapter_b']}: FSD {r['fsd'] * 100:.2f}, "
                      f"excess over the floor {r['excess'] * 100:+.2f}")
    if top is not None:
        print(f"FSD over the top {top['fraction']:g} by magnitude (%):")
        for name, row in zip(names, top["fsd"], strict=True):
            print(f"{name:<{width}s} " + " ".join(f"{v * 100:7.2f}" for v in row))
        if top["noise_floor"] is not None:
            print("  its noise floor (%): " + ", ".join(
                f"{d} {f * 100:.2f}" for d, f in top["noise_floor"]["floor"].items() if f is not None))
    mark_output(out, stamp)
    print(f"wrote {out}/" + ", ".join(written))
    return 0


def _mix_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("adapters", nargs="+", help="adapter directories to mix")
    p.add_argument("--rule", default="average", action=Listed, names=RULE_NAMES,
                   help="merge rule (`adaptermix list rules` describes them): %(names)s")
    p.add_argument("-o", "--output-dir", required=True, help="the mixed adapter's directory")
    p.add_argument("--target", help="domain whose head the mixture uses and which a selecting rule (greedy_fsd, "
                   "sparse_fsd) always keeps (default: the first adapter the rule mixes); with a masked rule "
                   "(emr, tall_mask): write only this domain's view, as an ordinary adapter")
    p.add_argument("--space", choices=MIX_SPACES, metavar="SPACE", default="raw",
                   help="%(choices)s; raw: raw parameters (the paper's Eq. 1); tv: task vectors, each adapter minus the pool's "
                   "shared seeded init, merged and the init added back; dw: LoRA effective updates (average only)")
    p.add_argument("--heads", choices=["target", "average"], default="target",
                   help="target: the target's own head; average: only if all label sets are identical")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="rule parameter, e.g. --param density=0.2 or --param weights=[0.7,0.3] (repeatable)")
    add_overwrite(p)


def _mix_run(args: argparse.Namespace) -> int:
    from adaptermix.artefacts.artefact import save_adapter
    from adaptermix.artefacts.masked import MASKED_RULES

    stamp = output_stamp("mix", command_inputs(args, skip=("output_dir",)))
    check_output(args.output_dir, stamp=stamp, overwrite=args.overwrite)
    params = {}
    for item in args.param:
        keys, value = parse_override(item)
        params[".".join(keys)] = value
    pool = am.load_pool(args.adapters)
    target = Path(args.target).name if args.target else None
    if args.rule in MASKED_RULES and target is None:  # every domain's view, stored once (adaptermix.artefacts.masked)
        return _write_masked(args, pool, params, stamp)
    mixed = am.mix(pool, args.rule, target, args.space, args.heads, **params)
    path = save_adapter(args.output_dir, mixed.tensors, mixed.meta)
    mark_output(path, stamp)
    print(json.dumps({"adapter": str(path), "provenance": mixed.meta.provenance}, indent=2, default=str))
    return 0


def _write_masked(args: argparse.Namespace, pool: AdapterPool, params: dict[str, object],
                  stamp: dict[str, str]) -> int:
    """``mix --rule emr|tall_mask`` without ``--target``: one masked merge artefact holding every domain."""
    from adaptermix.artefacts.masked import save_masked
    from adaptermix.core.errors import ConfigError

    if args.heads != "target":
        raise ConfigError("a masked merge keeps every domain's own head; --heads applies to ordinary mixtures")
    artefact = am.mix_masked(pool, args.rule, args.space, **params)
    path = save_masked(artefact, args.output_dir)
    mark_output(path, stamp)
    storage = artefact.storage()
    print(json.dumps({"masked_artefact": str(path), "rule": artefact.kind, "space": artefact.space,
                      "domains": list(artefact.domains),
                      "scales": {d: float(s) for d, s in artefact.scales.items()},
                      "storage": {k: storage[k] for k in ("n_params", "shared_bytes", "per_domain_bytes",
                                                          "per_domain_bits_per_param")},
                      "eval": f"adaptermix eval {path} --domain D"}, indent=2))
    return 0


def _prune_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("adapter", help="adapter directory")
    p.add_argument("--sparsity", type=float, required=True, help="fraction of body parameters set to zero, in [0, 1]")
    p.add_argument("--scope", default="global", choices=PRUNE_SCOPES, metavar="SCOPE",
                   help="how parameters are grouped before counting: %(choices)s (default: global)")
    p.add_argument("-o", "--output-dir", required=True)
    add_overwrite(p)


def _prune_run(args: argparse.Namespace) -> int:
    from adaptermix.artefacts.artefact import save_adapter
    from adaptermix.pruning import check_sparsity

    check_sparsity(args.sparsity)
    stamp = output_stamp("prune", command_inputs(args, skip=("output_dir",)))
    check_output(args.output_dir, stamp=stamp, overwrite=args.overwrite)
    pruned = am.prune(am.load_adapter(args.adapter), args.sparsity, args.scope)
    path = save_adapter(args.output_dir, pruned.tensors, pruned.meta)
    mark_output(path, stamp)
    nz = sum(int((t != 0).sum()) for t in pruned.body.values())
    total = sum(t.numel() for t in pruned.body.values())
    print(json.dumps({"adapter": str(path), "nonzero": nz, "total": total, "sparsity": 1 - nz / total}, indent=2))
    return 0


register_command(Command("fsd", "fraction of sign difference (Alg. 3) between adapters: matrix, heatmap", _fsd_args, _fsd_run))
register_command(Command("mix", "mix adapters with a merge rule into one adapter artefact", _mix_args, _mix_run))
register_command(Command("prune", "magnitude-prune an adapter to a sparsity (Alg. 2)", _prune_args, _prune_run))
