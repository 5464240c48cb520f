"""``adaptermix eval ADAPTER``: evaluate an adapter artefact on a split of a dataset.

``adaptermix eval DIR --domain D`` evaluates domain D's view of a masked merge artefact (``mix --rule emr``
or ``tall_mask``, :mod:`adaptermix.artefacts.masked`) on D's own dataset; ``--domain`` on an ordinary adapter is an error.
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

import adaptermix as am
from adaptermix.cli.base import Command, add_overwrite, add_precision, command_inputs, register_command
from adaptermix.core.io import atomic_write_json, check_output, mark_output, output_stamp

if TYPE_CHECKING:
    from adaptermix.artefacts.artefact import Adapter


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("adapter", help="adapter directory (adapter.safetensors + adapter.json)")
    p.add_argument("--domain", help="for a masked merge artefact (mix --rule emr|tall_mask): the domain whose "
                   "view (base + scale * mask * unified, with its own head) to evaluate")
    p.add_argument("--split", default="test", help="split to evaluate (default: test)")
    p.add_argument("--dataset", help="dataset name (default: the adapter's own)")
    p.add_argument("--data-dir", help="data pack directory (default: $ADAPTERMIX_DATA, else the embedded one)")
    p.add_argument("--max-examples", type=int, help="evaluate a seeded, stratified sample of this size")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--json", dest="json_out", help="also write the metrics to this JSON file")
    add_overwrite(p)
    add_precision(p)


def _run(args: argparse.Namespace) -> int:
    # --domain only enters the stamp when given, so an ordinary eval's stamp is what it always was
    skip = ("json_out", "batch_size") + (("domain",) if args.domain is None else ())
    stamp = output_stamp("eval", command_inputs(args, skip=skip))
    if args.json_out:
        check_output(args.json_out, stamp=stamp, overwrite=args.overwrite, kind="file")
    view = _masked_view(args)
    adapter = view if view is not None else am.load_adapter(args.adapter)
    data = am.eval_data(adapter, args.split, args.dataset, args.data_dir, args.max_examples)
    metrics = am.evaluate(view if view is not None else args.adapter, args.split, args.dataset, args.data_dir,
                          args.max_examples, max_length=args.max_length, batch_size=args.batch_size,
                          precision=args.precision)
    result = {"adapter": args.adapter, "split": args.split, "dataset": data.name, "metrics": metrics}
    if view is not None:
        result = {**result, "domain": args.domain, "rule": view.meta.provenance["rule"]}
    if args.json_out:
        atomic_write_json(args.json_out, result)
        mark_output(args.json_out, stamp, kind="file")
    print(json.dumps(result, indent=2))
    return 0


def _masked_view(args: argparse.Namespace) -> Adapter | None:
    """Domain ``--domain``'s view when ADAPTER is a masked merge artefact (None for an ordinary adapter)."""
    from adaptermix.artefacts.artefact import load_adapter
    from adaptermix.artefacts.masked import for_domain, load_masked, read_masked_json
    from adaptermix.core.errors import ConfigError

    raw = read_masked_json(args.adapter)
    if raw is None:
        if args.domain is not None:
            load_adapter(args.adapter)  # a missing or broken folder is named as such first
            raise ConfigError(f"--domain applies to masked merge artefacts (mix --rule emr|tall_mask); "
                              f"{args.adapter} is an ordinary adapter")
        return None
    if args.domain is None:
        names = ", ".join(str(d.get("name")) for d in raw.get("domains") or [] if isinstance(d, dict))
        raise ConfigError(f"{args.adapter} is a masked merge artefact ({raw.get('kind')}): pass --domain, one of {names}")
    return for_domain(load_masked(args.adapter), args.domain)


register_command(Command("eval", "evaluate an adapter on a split (accuracy, F1, MCC, Pearson ...)", _args, _run))
