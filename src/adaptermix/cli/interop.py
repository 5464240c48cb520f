"""``adaptermix import FORMAT SRC -o OUT`` and ``adaptermix export-adapter FORMAT ADAPTER -o OUT``.

Import reads an adapter saved by another library (``peft`` LoRA, AdapterHub ``adapterhub`` bottleneck) into
an ordinary adaptermix artefact; export-adapter writes an adaptermix LoRA artefact as a peft directory.
(``adaptermix export`` is the results-store export of the sweep commands, hence the longer name.)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from adaptermix.cli.base import Command, add_overwrite, command_inputs, register_command
from adaptermix.core.errors import ConfigError
from adaptermix.core.io import check_output, mark_output, output_stamp


def _import_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("format", help="source format: peft or adapterhub")
    p.add_argument("src", help="the foreign adapter directory")
    p.add_argument("-o", "--output-dir", required=True, help="artefact directory to write")
    p.add_argument("--model", help="base encoder id or path (default: the one the source records, if any)")
    head = p.add_mutually_exclusive_group()
    head.add_argument(
        "--task-from",
        metavar="ADAPTER",
        help="reuse the trained head, head config and task of this adaptermix adapter (same base)",
    )
    head.add_argument("--labels", help="comma-separated label names: a fresh head initialised to zero")
    p.add_argument("--task-name", help="task name to record (default: the source directory's name)")
    add_overwrite(p)


def _import_run(args: argparse.Namespace) -> int:
    from adaptermix.backbone.loading import load_encoder
    from adaptermix.interop import IMPORTERS, HeadChoice, import_adapter

    importer = IMPORTERS.get(args.format)
    stamp = output_stamp("import", command_inputs(args, skip=("output_dir",)))
    check_output(args.output_dir, stamp=stamp, overwrite=args.overwrite)
    src = Path(args.src)
    model = args.model or (importer.base_model_hint(src) if src.is_dir() else None)
    if not model:
        raise ConfigError(f"{src} does not record its base model; give --model NAME_OR_PATH")
    labels = tuple(x.strip() for x in args.labels.split(",") if x.strip()) if args.labels else ()
    if args.labels is not None and len(labels) < 2:
        raise ConfigError("--labels needs at least two comma-separated names")
    head = HeadChoice(
        task_from=Path(args.task_from) if args.task_from else None, labels=labels, task_name=args.task_name
    )
    out = import_adapter(args.format, src, args.output_dir, load_encoder(model), head)
    mark_output(out, stamp)
    print(
        json.dumps({"adapter": str(out), "from": args.format, "source": str(src), "model": model}, indent=2)
    )
    return 0


def _export_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("format", help="target format: peft")
    p.add_argument("adapter", help="adaptermix adapter directory (a LoRA adapter for peft)")
    p.add_argument("-o", "--output-dir", required=True, help="directory to write")
    add_overwrite(p)


def _export_run(args: argparse.Namespace) -> int:
    from adaptermix.interop import export_adapter

    stamp = output_stamp("export-adapter", command_inputs(args, skip=("output_dir",)))
    check_output(args.output_dir, stamp=stamp, overwrite=args.overwrite)
    out = export_adapter(args.format, args.adapter, args.output_dir)
    mark_output(out, stamp)
    print(json.dumps({"exported": str(out), "format": args.format, "adapter": args.adapter}, indent=2))
    return 0


register_command(
    Command(
        "import",
        "import a peft LoRA or AdapterHub bottleneck adapter as an adaptermix adapter",
        _import_args,
        _import_run,
    )
)
register_command(
    Command(
        "export-adapter", "export an adaptermix LoRA adapter to the peft format", _export_args, _export_run
    )
)
