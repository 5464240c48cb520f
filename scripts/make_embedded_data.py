"""Make the small data pack embedded in the package (``src/adaptermix/resources/datapack``) from the full one.

The embedded pack is what ``make demo`` runs on when no data pack is configured (neither ``data.data_dir``
nor ``$ADAPTERMIX_DATA``). It is chosen deterministically, so anyone with the data pack can rebuild it
byte for byte and check it::

    python scripts/make_embedded_data.py /path/to/data-pack            # writes the default --out
    python scripts/make_embedded_data.py PACK --out DIR --datasets a,b --max-train 100

For each dataset and split: a seeded, label-stratified sample of at most ``--max-*`` rows, drawn with the
tool's own capping procedure (:func:`adaptermix.data.sampling.stratified_sample`: proportional
allocation with largest-remainder rounding, every class kept, plain seeded sample for regression), the
chosen rows copied byte for byte in the pack's order. Each ``dataset.json`` keeps the pack's manifest
fields (name, task, problem, label_names, metric, secondary_metrics, domain, split_policy, source, license,
notes), recomputes ``splits``, ``label_distribution`` and ``sha256`` for the written files, and records
under ``subset`` how the rows were chosen and the sha256 of the pack files they came from. The pack's
``lexical/`` folder (TextFooler's counter-fitting constraints and WordNet lexnames, Apache-2.0) is copied
whole. A pack file whose sha256 differs from its manifest is refused, and a dataset whose license forbids
commercial use is refused (the package is Apache-2.0). The output folder is replaced as a whole, only
when everything was written.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any

from adaptermix.core.errors import AdapterMixError
from adaptermix.core.io import atomic_dir
from adaptermix.data.sampling import stratified_sample
from adaptermix.data.schema import Example

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "src" / "adaptermix" / "resources" / "datapack"
# The demo's domains (configs/demo.yaml): financial_phrasebank (CC BY-NC-SA 3.0) is swapped for spooky_authors.
DEFAULT_DATASETS = ("sst2", "spooky_authors", "offensive_tweets", "qnli", "mrpc")
SPLITS = ("train", "validation", "test")
DEFAULT_CAPS = {"train": 2000, "validation": 300, "test": 500}
SEED = 13
MANIFEST = "dataset.json"
LEXICAL = "lexical"
KEEP = (
    "name", "task", "problem", "label_names", "metric", "secondary_metrics", "domain", "split_policy",
    "source", "license", "notes",
)
# A license naming one of these does not allow shipping the data in an Apache-2.0 package.
_NOT_REDISTRIBUTABLE = re.compile(r"\bNC\b|non-?commercial|\bND\b|no derivatives", re.IGNORECASE)
SCRIPT = "scripts/make_embedded_data.py"


class EmbedError(AdapterMixError):
    """A pack that cannot be subset (missing file, bad row, checksum mismatch, license)."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EmbedError(f"{path} not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EmbedError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise EmbedError(f"{path}: expected a JSON object")
    return data


def read_checked(path: Path, manifest: dict[str, Any]) -> bytes:
    """The bytes of a pack file, checked against the sha256 its manifest lists (when it lists one)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise EmbedError(f"cannot read {path}: {exc.strerror or exc}") from None
    expected = manifest.get("sha256", {}).get(path.name)
    if expected is not None and sha256(data) != expected:
        raise EmbedError(f"{path}: sha256 {sha256(data)} differs from its {MANIFEST} ({expected})")
    return data


def parse_rows(data: bytes, where: str) -> tuple[list[bytes], list[Example]]:
    """The non-blank lines of a JSONL split and one :class:`Example` per line (for its label)."""
    lines = [line for line in data.split(b"\n") if line.strip()]
    examples = []
    for i, line in enumerate(lines, 1):
        try:
            row = json.loads(line)
            examples.append(Example(text=row["text"], label=row["label"], text_pair=row.get("text_pair")))
        except (ValueError, KeyError, TypeError) as exc:
            raise EmbedError(f"{where}:{i}: not a data-pack row ({exc})") from None
    return lines, examples


def subset_split(lines: list[bytes], examples: list[Example], cap: int, classification: bool) -> list[bytes]:
    """The chosen lines, in the pack's order (the tool's capping procedure, seed :data:`SEED`)."""
    chosen = stratified_sample(examples, cap, SEED, stratify=classification)
    position = {id(ex): i for i, ex in enumerate(examples)}
    return [lines[position[id(ex)]] for ex in chosen]


def subset_dataset(folder: Path, caps: dict[str, int]) -> tuple[dict[str, bytes], dict[str, Any]]:
    """The written split files and the manifest of one dataset's subset."""
    manifest = read_manifest(folder)
    name = folder.name
    license_ = str(manifest.get("license", ""))
    if _NOT_REDISTRIBUTABLE.search(license_):
        raise EmbedError(f"{name}: license {license_!r} does not allow redistribution in an Apache-2.0 package")
    classification = manifest.get("problem", "classification") == "classification"
    files: dict[str, bytes] = {}
    counts: dict[str, int] = {}
    pack_rows: dict[str, int] = {}
    pack_sha: dict[str, str] = {}
    distribution: dict[str, dict[str, int]] = {}
    for split in SPLITS:
        path = folder / f"{split}.jsonl"
        data = read_checked(path, manifest)
        pack_sha[path.name] = sha256(data)
        lines, examples = parse_rows(data, f"{name}/{path.name}")
        chosen = subset_split(lines, examples, caps[split], classification)
        files[path.name] = b"".join(line + b"\n" for line in chosen)
        counts[split], pack_rows[split] = len(chosen), len(lines)
        if classification:
            labels = [json.loads(line)["label"] for line in chosen]
            distribution[split] = {str(k): labels.count(k) for k in sorted(set(labels))}
    out = {k: manifest[k] for k in KEEP if k in manifest}
    how = (
        f"per split a seeded (random seed {SEED}) {'label-stratified ' if classification else ''}sample of at "
        f"most {caps['train']} train / {caps['validation']} validation / {caps['test']} test rows, drawn with "
        "adaptermix.data.sampling.stratified_sample (the tool's own capping procedure), rows copied byte for "
        "byte in the pack's order"
    )
    out["notes"] = (
        f"Embedded subset of the data pack's {name} ({how}; made by {SCRIPT}; the pack files' sha256 are "
        "under 'subset'). " + str(manifest.get("notes", ""))
    ).strip()
    out["splits"] = counts
    if classification:
        out["label_distribution"] = distribution
    out["subset"] = {
        "script": SCRIPT,
        "method": how,
        "seed": SEED,
        "max_rows": dict(caps),
        "pack_rows": pack_rows,
        "pack_sha256": pack_sha,
    }
    out["sha256"] = {f: sha256(b) for f, b in files.items()}
    return files, out


def copy_lexical(pack: Path) -> dict[str, bytes]:
    """Every file of the pack's ``lexical/`` folder, byte for byte (checked against its manifest)."""
    folder = pack / LEXICAL
    manifest = read_manifest(folder)
    if not (folder / "ppdb_synonyms.txt").is_file():
        raise EmbedError(f"{folder}/ppdb_synonyms.txt not found: not the data pack's lexical folder")
    return {p.name: read_checked(p, manifest) for p in sorted(folder.iterdir()) if p.is_file()}


def _source_text(manifest: dict[str, Any]) -> str:
    parts = []
    for src in manifest.get("source", []):
        if "note" in src and "cross-check" in str(src["note"]):
            continue
        parts.append(f"`{src.get('repo', '?')}`@{str(src.get('commit', '?'))[:10]}")
    return ", ".join(parts) or "(not stated)"


def readme(manifests: dict[str, dict[str, Any]], lexical: dict[str, Any]) -> str:
    """The embedded pack's README: what it is, how it was made, and each dataset's source and license."""
    caps = next(iter(manifests.values()))["subset"]["max_rows"] if manifests else DEFAULT_CAPS
    lines = [
        "# Embedded data pack",
        "",
        "A small copy of the offline data pack shipped inside the package, so that `make demo` runs on a fresh",
        "clone. It is used only when no data pack is configured: `data.data_dir` in a config wins, then",
        "`$ADAPTERMIX_DATA`, then this folder (`adaptermix list datasets` shows which one is in use). Results",
        "on it are not comparable with results on the full pack: the splits are subsets.",
        "",
        f"Made by `{SCRIPT}` from the full data pack, deterministically: per dataset and split, a",
        f"label-stratified sample (seed {SEED}, the tool's own capping procedure) of at most {caps['train']} train /",
        f"{caps['validation']} validation / {caps['test']} test rows, copied byte for byte in the pack's order.",
        "Each `dataset.json` keeps the pack's manifest (source, license, notes, metric,",
        "labels), with `splits`, `label_distribution` and `sha256` of the files here and, under `subset`, the",
        "sha256 of the pack files they were drawn from. `lexical/` is the pack's folder copied whole (TextFooler's",
        "counter-fitting constraints and WordNet lexnames). Rebuild or check with",
        "",
        "    python scripts/make_embedded_data.py /path/to/data-pack",
        "",
        "## Datasets",
        "",
        "| dataset | domain | train / validation / test rows |",
        "|---|---|---|",
    ]
    for name, m in manifests.items():
        s = m["splits"]
        lines.append(f"| `{name}` | {m.get('domain', '')} | {s['train']} / {s['validation']} / {s['test']} |")
    lines += [
        "",
        "`spooky_authors` replaces the demo's former `financial_phrasebank`: FinancialPhraseBank is licensed",
        "CC BY-NC-SA 3.0 (non-commercial, share-alike), which does not allow shipping it in an Apache-2.0",
        "package; spooky_authors (Kaggle \"Spooky Author Identification\", sentences from public-domain works",
        "by Poe, Lovecraft and Mary Shelley) is another short-text single-sentence domain of the pack.",
        "The script refuses any dataset whose license forbids commercial use or derivatives.",
        "",
        "## Licenses",
        "",
        "The code of adaptermix is Apache-2.0; the data here keep their own terms, as recorded in each",
        "`dataset.json` (quoted below). Cite the original authors when you use them.",
        "",
        "| folder | source (repository@commit) | license |",
        "|---|---|---|",
    ]
    for name, m in [*manifests.items(), (LEXICAL, lexical)]:
        lines.append(f"| `{name}` | {_source_text(m)} | {m.get('license', '(not stated)')} |")
    return "\n".join(lines) + "\n"


def build(pack: Path, out: Path, datasets: tuple[str, ...], caps: dict[str, int]) -> dict[str, dict[str, int]]:
    """Write the embedded pack for ``datasets`` of ``pack`` to ``out`` (replaced as a whole).

    Returns dataset -> split -> rows written.
    """
    if not pack.is_dir():
        raise EmbedError(f"data pack folder not found: {pack}")
    written = {name: subset_dataset(pack / name, caps) for name in datasets}
    lexical = copy_lexical(pack)
    lexical_manifest = read_manifest(pack / LEXICAL)
    with atomic_dir(out) as tmp:
        for name, (files, manifest) in written.items():
            (tmp / name).mkdir()
            for fname, data in files.items():
                (tmp / name / fname).write_bytes(data)
            text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
            (tmp / name / MANIFEST).write_text(text, encoding="utf-8")
        (tmp / LEXICAL).mkdir()
        for fname, data in lexical.items():
            (tmp / LEXICAL / fname).write_bytes(data)
        manifests = {name: m for name, (_, m) in written.items()}
        (tmp / "README.md").write_text(readme(manifests, lexical_manifest), encoding="utf-8")
    return {name: m["splits"] for name, (_, m) in written.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("pack", type=Path, help="the full data pack (a folder of <name>/dataset.json + splits)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default: {DEFAULT_OUT})")
    p.add_argument("--datasets", default=",".join(DEFAULT_DATASETS), help="comma-separated dataset names")
    for split, cap in DEFAULT_CAPS.items():
        p.add_argument(f"--max-{split}", type=int, default=cap, help=f"at most this many {split} rows")
    args = p.parse_args(argv)
    caps = {split: getattr(args, f"max_{split}") for split in SPLITS}
    if any(c < 1 for c in caps.values()):
        p.error("--max-* must be at least 1")
    datasets = tuple(d for d in args.datasets.split(",") if d)
    try:
        counts = build(args.pack.expanduser(), args.out, datasets, caps)
    except AdapterMixError as exc:
        print(f"make_embedded_data: error: {exc}", file=sys.stderr)
        return 2
    for name, splits in counts.items():
        print(f"{name:20s} " + " ".join(f"{s}={n}" for s, n in splits.items()))
    size = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    print(f"wrote {args.out} ({size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
