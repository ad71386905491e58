"""The package's layout holds: the library never imports the command-line tools, and no two parts import each other."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "sb3_rtrl"


def imported_modules(path: Path) -> set[str]:
    """Every ``sb3_rtrl...`` module a file imports, lazy imports inside functions included."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return {name for name in found if name.split(".")[0] == "sb3_rtrl"}


def part(module: str) -> str | None:
    """The first-level part of the package a module belongs to (``sb3_rtrl.cells.rtu`` -> ``cells``)."""
    bits = module.split(".")
    return bits[1] if len(bits) > 1 and ((PACKAGE / bits[1]).is_dir() or (PACKAGE / f"{bits[1]}.py").is_file()) else None


def edges() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        me = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        if me in ("__init__", "__main__"):
            continue
        graph.setdefault(me, set()).update(p for p in map(part, imported_modules(path)) if p and p != me)
    return graph


def test_the_library_never_imports_the_tools():
    library = [p for p in PACKAGE.rglob("*.py") if p.relative_to(PACKAGE).parts[0] not in ("cli", "__main__.py")]
    offenders = {str(p) for p in library if any(m.startswith("sb3_rtrl.cli") for m in imported_modules(p))}
    assert not offenders


def test_no_two_parts_import_each_other():
    graph = edges()

    def reaches(a: str, b: str, seen: frozenset[str] = frozenset()) -> bool:
        return b in graph.get(a, ()) or any(reaches(c, b, seen | {a}) for c in graph.get(a, ()) if c not in seen)

    cycles = sorted({tuple(sorted((a, b))) for a in graph for b in graph[a] if reaches(b, a)})
    assert not cycles


def test_the_check_sees_a_cycle(tmp_path, monkeypatch):
    """The cycle test could fail: two parts that import each other are found."""
    for name, other in (("one", "two"), ("two", "one")):
        (tmp_path / f"{name}.py").write_text(f"from sb3_rtrl.{other} import x\n")
    monkeypatch.setattr(f"{__name__}.PACKAGE", tmp_path)
    assert edges() == {"one": {"two"}, "two": {"one"}}
    try:
        test_no_two_parts_import_each_other()
    except AssertionError:
        return
    raise AssertionError("the cycle went unseen")
