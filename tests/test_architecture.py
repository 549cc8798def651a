"""The house's structure, read from the code with ``ast``.

Every module of the package (``rnntheory/`` and the proofs that install as
``rnntheory.proofs``) sits on one floor of the table below, and the table is the
one the architecture page (``docs/architecture.md``) shows. Three rules are
checked on every ``import`` statement, at module level or inside a function
(a lazy import is still an arrow):

* no import runs back up: a module imports only from its own floor or below;
* the import graph has no cycle;
* no module imports another module's private (``_name``) definition.

A module missing from the table fails the first test, so a new module must be
given a floor (and a line on the architecture page).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from fnmatch import fnmatchcase
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Floors from the bottom up, each a list of module patterns. A module may import
# from its own floor and the floors below it, never from a floor above.
FLOORS: list[tuple[str, list[str]]] = [
    ("leaves", [
        "rnntheory._validation", "rnntheory._vecmath", "rnntheory._outputs",
        "rnntheory._parallel", "rnntheory._oracles", "rnntheory._version", "rnntheory._linalg",
        "rnntheory._tables",
        "rnntheory.activations",
    ]),
    ("symbolic", ["rnntheory.symbolic", "rnntheory.symbolic.*"]),
    ("kernels", [
        "rnntheory._jacobian_kernels", "rnntheory.cells._*kernels",
        "rnntheory.remedies._*kernels", "rnntheory._gated_jacobians",
        "rnntheory._stack_jacobians",
    ]),
    ("data", ["rnntheory.init", "rnntheory.tasks"]),
    ("cells", ["rnntheory.cells", "rnntheory.cells.*", "rnntheory.esn"]),
    ("analysis", [
        "rnntheory.jacobians", "rnntheory.bounds", "rnntheory.strategies",
        "rnntheory.torch_bridge", "rnntheory.plotting", "rnntheory._figures",
        "rnntheory._traces", "rnntheory.checkpoints", "rnntheory.diagnosis",
    ]),
    ("remedies", ["rnntheory.remedies", "rnntheory.remedies.*"]),
    ("training", ["rnntheory.training", "rnntheory.training.*"]),
    ("experiments", ["rnntheory.experiments", "rnntheory.experiments.*"]),
    ("checks", [
        "rnntheory.checks", "rnntheory.checks.*", "rnntheory.ledger",
        "rnntheory.proofs", "rnntheory.proofs.*", "rnntheory.verification",
    ]),
    ("face", ["rnntheory", "rnntheory.cli", "rnntheory.__main__"]),
]


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for base, prefix in ((ROOT / "rnntheory", ["rnntheory"]), (ROOT / "proofs", ["rnntheory", "proofs"])):
        for path in sorted(base.rglob("*.py")):
            parts = prefix + list(path.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def floor_of(module: str) -> int | None:
    """The floor index of ``module`` (its most specific pattern wins), or None."""
    best: tuple[int, int] | None = None
    for i, (_, patterns) in enumerate(FLOORS):
        for p in patterns:
            if fnmatchcase(module, p):
                rank = len(p.replace("*", ""))
                if best is None or rank > best[0]:
                    best = (rank, i)
    return None if best is None else best[1]


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement, lazy ones included (``if TYPE_CHECKING`` blocks too)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if MODULES[module].name != "__init__.py":
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _canonical(name: str) -> str:
    """``proofs.x`` (as the proofs import each other) is ``rnntheory.proofs.x``."""
    return "rnntheory." + name if name == "proofs" or name.startswith("proofs.") else name


def edges() -> list[tuple[str, str, str | None]]:
    """``(importer, imported module, imported name or None)`` for every arrow inside the package."""
    out: list[tuple[str, str, str | None]] = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in _imports(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    target = _canonical(alias.name)
                    if target in MODULES:
                        out.append((module, target, None))
                continue
            target = _canonical(_resolve(module, node))
            if target not in MODULES:
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in MODULES:
                    out.append((module, sub, None))
                else:
                    out.append((module, target, alias.name))
    return out


EDGES = edges()


def test_every_module_has_a_floor() -> None:
    """A module the table does not place cannot be checked; give it a floor."""
    assert "rnntheory.cells.elman" in MODULES and "rnntheory.proofs.clipping" in MODULES
    missing = sorted(m for m in MODULES if floor_of(m) is None)
    assert missing == [], f"modules without a floor in FLOORS: {missing}"


def test_no_import_runs_back_up() -> None:
    """Each arrow points to the importer's floor or below."""
    up = sorted(
        f"{a} ({FLOORS[floor_of(a)][0]}) -> {b} ({FLOORS[floor_of(b)][0]})"  # type: ignore[index]
        for a, b, _ in EDGES
        if floor_of(a) is not None and floor_of(b) is not None and floor_of(b) > floor_of(a)  # type: ignore[operator]
    )
    assert up == [], "imports that run back up:\n" + "\n".join(dict.fromkeys(up))


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    advanced = True
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_cycle_finder_finds_a_cycle() -> None:
    """The finder itself: a three-module circle is reported, a chain is not."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_no_import_cycle() -> None:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for a, b, _ in EDGES:
        if a != b:
            graph[a].add(b)
    assert _cycles(graph) == []


def test_no_private_name_crosses_a_module() -> None:
    """``from .x import _name`` reaches into another module's private code.

    A helper used by more than one module is package-internal: it has a public
    name (in a module whose own name may start with an underscore).
    """
    private = sorted(
        f"{a} imports {name} from {b}" for a, b, name in EDGES
        if name is not None and name.startswith("_") and a != b
    )
    assert private == [], "private names imported across modules:\n" + "\n".join(private)


@pytest.mark.parametrize("module", ["rnntheory.cells.elman", "rnntheory.training.loop", "rnntheory.proofs.clipping"])
def test_edges_are_read(module: str) -> None:
    """The reader sees the arrows a module certainly has (guards against a reader that sees none)."""
    assert any(a == module for a, _, _ in EDGES)


def _page_floors() -> list[tuple[str, list[str]]]:
    """The floors table of docs/architecture.md, bottom floor first."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    table = text.split("<!-- floors: start -->")[1].split("<!-- floors: end -->")[0]
    rows = [line for line in table.strip().splitlines()[2:] if line.startswith("|")]
    out = []
    for line in rows:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        out.append((cells[0], [p.strip().strip("`") for p in cells[1].split(",")]))
    return out[::-1]


def test_architecture_page_matches_the_floors() -> None:
    """The page a contributor reads shows the same floors, in the same order, with the same modules."""
    assert _page_floors() == FLOORS
