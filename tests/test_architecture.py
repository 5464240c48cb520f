"""docs/architecture.md kept honest: its layer table holds on the import graph, its registries exist.

The layer table (```text blocks, lines ``layer N name : unit, unit``) and the exception lines
(``exception MODULE -> MODULE : why``) are parsed from the doc; a "unit" is a top-level module or
subpackage of adaptermix (``adaptermix`` itself is the package's ``__init__``). Every module must belong
to a layer, and may import only its own layer and those below (lazy imports count, ``TYPE_CHECKING``
ones do not; see tests/import_graph.py), except the listed exceptions, which must all still be needed.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

from adaptermix.registry import Registry
from import_graph import SRC, import_graph, module_files

DOC = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"


def _doc() -> str:
    return DOC.read_text(encoding="utf-8")


def layers() -> dict[str, int]:
    """Unit -> layer number, from the doc's ``layer N name : a, b`` lines."""
    out: dict[str, int] = {}
    for n, units in re.findall(r"^layer (\d+) [^:]*: (.+)$", _doc(), flags=re.M):
        for unit in (u.strip() for u in units.split(",")):
            assert unit not in out, f"{unit} is in two layers"
            out[unit] = int(n)
    assert out, "no layer table found in docs/architecture.md"
    return out


def exceptions() -> set[tuple[str, str]]:
    return set(re.findall(r"^exception (\S+) -> (\S+) : .+$", _doc(), flags=re.M))


def unit_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def test_every_module_is_in_a_layer() -> None:
    table = layers()
    missing = sorted({unit_of(m) for m in module_files()} - set(table))
    assert not missing, f"place these in the layer table of docs/architecture.md: {missing}"
    stale = sorted(set(table) - {unit_of(m) for m in module_files()})
    assert not stale, f"the layer table names units that do not exist: {stale}"


def test_lower_layers_never_import_higher_ones() -> None:
    table, allowed = layers(), exceptions()
    upward = sorted(
        (a, b)
        for a, targets in import_graph().items()
        for b in targets
        if table[unit_of(b)] > table[unit_of(a)]
    )
    bad = [f"{a} (layer {table[unit_of(a)]}) -> {b} (layer {table[unit_of(b)]})" for a, b in upward if (a, b) not in allowed]
    assert not bad, "imports against the layering of docs/architecture.md:\n" + "\n".join(bad)
    unneeded = sorted(allowed - set(upward))
    assert not unneeded, f"exceptions in docs/architecture.md no longer needed (remove them): {unneeded}"


def _doc_registries() -> list[str]:
    return re.findall(r"^registry (\S+)$", _doc(), flags=re.M)


def test_every_registry_named_in_the_doc_exists() -> None:
    named = _doc_registries()
    assert len(named) >= 8
    for dotted in named:
        module, _, attr = dotted.rpartition(".")
        assert isinstance(getattr(importlib.import_module(module), attr, None), Registry), dotted


def test_every_registry_in_the_package_is_in_the_doc() -> None:
    """Each module-level ``NAME = Registry(...)`` / ``NAME: Registry[...] = ...`` is documented."""
    named = set(_doc_registries())
    found = set()
    for module, path in module_files().items():
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                annotation = ast.unparse(node.annotation)
                if annotation.startswith("Registry") and not node.target.id.startswith("_"):
                    found.add(f"{module}.{node.target.id}")
            elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
                if ast.unparse(node.value.func) == "Registry":
                    found.update(f"{module}.{t.id}" for t in node.targets
                                 if isinstance(t, ast.Name) and not t.id.startswith("_"))
    assert found, "no registry found in the package"
    assert not sorted(found - named), f"registries missing from docs/architecture.md: {sorted(found - named)}"


def test_files_named_in_the_checklists_exist() -> None:
    root = SRC.parent
    paths = set(re.findall(r"`((?:src|tests|docs)/[\w/.]+\.(?:py|md))`", _doc()))
    assert paths
    missing = sorted(p for p in paths if not (root / p).exists())
    assert not missing, f"docs/architecture.md names files that do not exist: {missing}"


def test_the_guide_the_code_cites_exists() -> None:
    """Docstrings cite the guide's sections by name: those sections exist."""
    headings = set(re.findall(r"^#+ (.+)$", _doc(), flags=re.M))
    cited = set()
    for path in (SRC / "adaptermix").rglob("*.py"):
        cited.update(re.findall(r"docs/architecture\.md, \"([^\"]+)\"", path.read_text(encoding="utf-8")))
    assert cited, "no citation of docs/architecture.md found"
    assert cited <= headings, f"cited sections missing from docs/architecture.md: {sorted(cited - headings)}"


def test_nothing_in_the_package_imports_the_test_fixtures() -> None:
    """``adaptermix.testing`` (layer 8) is for tests and benchmarks: the library itself never needs it."""
    users = sorted(
        a for a, targets in import_graph().items()
        if unit_of(a) != "testing" and any(unit_of(b) == "testing" for b in targets)
    )
    assert not users, f"modules importing adaptermix.testing: {users}"
