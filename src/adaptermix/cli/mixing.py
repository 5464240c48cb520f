"""``adaptermix fsd``, ``adaptermix mix`` and ``adaptermix prune``: the paper's diagnostics and operations."""

from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path

from adaptermix.cli.base import Command, add_overwrite, command_inputs, register_command
from adaptermix.config import parse_override
from adaptermix.io import check_output, mark_output, output_stamp


def _fsd_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("adapters", nargs="+", help="adapter directories (named by their folder)")
    p.add_argument("-o", "--output-dir", required=True, help="writes fsd.csv, fsd.json, fsd.png/svg, fsd_per_<by>.csv")
    p.add_argument("--space", choices=["raw", "dw"], default="raw",
                   help="raw parameters (the paper) or LoRA effective updates dW = B A alpha/r")
    p.add_argument("--by", choices=["layer", "site", "module"], default="layer", help="grouping of the per-group FSD")
    add_overwrite(p)


def _fsd_run(args: argparse.Namespace) -> int:
    from adaptermix.diagnostics import grouped_fsd
    from adaptermix.io import atomic_write_json, atomic_write_text
    from adaptermix.pool import load_pool
    from adaptermix.report.plots import fsd_heatmap, save_figure

    stamp = output_stamp("fsd", command_inputs(args, skip=("output_dir",)))
    check_output(args.output_dir, stamp=stamp, overwrite=args.overwrite)
    pool = load_pool(args.adapters)
    mat = pool.fsd(args.space)
    out = Path(args.output_dir)
    vals = mat.values.numpy()
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["adapter", *pool.names])
    for name, row in zip(pool.names, vals, strict=True):
        w.writerow([name, *(f"{v:.6f}" for v in row)])
    atomic_write_text(out / "fsd.csv", buf.getvalue())
    grouped = grouped_fsd(pool.stacked_in(args.space), args.by)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([args.by, "adapter_a", "adapter_b", "fsd", "space"])
    for g, key in enumerate(grouped.keys):
        for i in range(len(pool.names)):
            for j in range(i + 1, len(pool.names)):
                w.writerow([key, pool.names[i], pool.names[j], f"{float(grouped.values[g, i, j]):.6f}", args.space])
    atomic_write_text(out / f"fsd_per_{args.by}.csv", buf.getvalue())
    atomic_write_json(out / "fsd.json", {**mat.as_dict(), "row_means": mat.row_means().tolist()})
    save_figure(fsd_heatmap(vals, pool.names, f"FSD (%), {pool.method.get('name')}, space={args.space}"), out / "fsd")
    width = max(len(n) for n in pool.names)
    print(f"FSD (%), space={args.space}, {mat.n_params} parameters per adapter")
    print(" " * (width + 1) + " ".join(f"{n[:7]:>7s}" for n in pool.names))
    for name, row in zip(pool.names, vals, strict=True):
        print(f"{name:<{width}s} " + " ".join(f"{v * 100:7.2f}" for v in row))
    mark_output(out, stamp)
    print(f"wrote {out}/fsd.csv, fsd.json, fsd.png, fsd.svg, fsd_per_{args.by}.csv")
    return 0


def _mix_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("adapters", nargs="+", help="adapter directories to mix")
    p.add_argument("--rule", default="average", help="merge rule (see `adaptermix list rules`)")
    p.add_argument("-o", "--output-dir", required=True, help="the mixed adapter's directory")
    p.add_argument("--target", help="domain whose head the mixture uses and which a selecting rule (greedy_fsd, "
                   "sparse_fsd) always keeps (default: the first adapter the rule mixes)")
    p.add_argument("--space", choices=["raw", "dw"], default="raw", help="raw parameters, or LoRA dW (average only)")
    p.add_argument("--heads", choices=["target", "average"], default="target",
                   help="target: the target's own head; average: only if all label sets are identical")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="rule parameter, e.g. --param density=0.2 or --param weights=[0.7,0.3] (repeatable)")
    add_overwrite(p)


def _mix_run(args: argparse.Namespace) -> int:
    from adaptermix.artefact import save_adapter
    from adaptermix.mixture import mix_pool
    from adaptermix.pool import load_pool

    stamp = output_stamp("mix", command_inputs(args, skip=("output_dir",)))
    check_output(args.output_dir, stamp=stamp, overwrite=args.overwrite)
    params = {}
    for item in args.param:
        keys, value = parse_override(item)
        params[".".join(keys)] = value
    pool = load_pool(args.adapters)
    target = Path(args.target).name if args.target else None
    mixed = mix_pool(pool, args.rule, target, args.space, args.heads, **params)
    path = save_adapter(args.output_dir, mixed.tensors, mixed.meta)
    mark_output(path, stamp)
    print(json.dumps({"adapter": str(path), "provenance": mixed.meta.provenance}, indent=2, default=str))
    return 0


def _prune_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("adapter", help="adapter directory")
    p.add_argument("--sparsity", type=float, required=True, help="fraction of body parameters set to zero, in [0, 1]")
    p.add_argument("--scope", default="global", choices=["global", "per_layer", "per_site", "per_module", "per_tensor"])
    p.add_argument("-o", "--output-dir", required=True)
    add_overwrite(p)


def _prune_run(args: argparse.Namespace) -> int:
    from adaptermix.artefact import load_adapter, save_adapter
    from adaptermix.mixture import prune_adapter
    from adaptermix.pruning import check_sparsity

    check_sparsity(args.sparsity)
    stamp = output_stamp("prune", command_inputs(args, skip=("output_dir",)))
    check_output(args.output_dir, stamp=stamp, overwrite=args.overwrite)
    adapter = load_adapter(args.adapter)
    pruned = prune_adapter(adapter, args.sparsity, args.scope)
    path = save_adapter(args.output_dir, pruned.tensors, pruned.meta)
    mark_output(path, stamp)
    nz = sum(int((t != 0).sum()) for t in pruned.body.values())
    total = sum(t.numel() for t in pruned.body.values())
    print(json.dumps({"adapter": str(path), "nonzero": nz, "total": total, "sparsity": 1 - nz / total}, indent=2))
    return 0


register_command(Command("fsd", "fraction of sign difference (Alg. 3) between adapters: matrix, heatmap", _fsd_args, _fsd_run))
register_command(Command("mix", "mix adapters with a merge rule into one adapter artefact", _mix_args, _mix_run))
register_command(Command("prune", "magnitude-prune an adapter to a sparsity (Alg. 2)", _prune_args, _prune_run))
