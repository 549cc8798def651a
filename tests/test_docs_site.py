"""The docs site's entrance tells the truth about the project it fronts.

The home page's install section describes every dependency and every extra
that ``pyproject.toml`` declares (and the packages each extra brings); the
navigation reaches every page once, in the order Home, Get started, Guides,
Theory, Reference, Performance, Contributing; the glossary defines each term
once and points at pages that exist; the home page's three doors are doctests
(their shown output is compared when the docs are tested) that link to their
guides. The examples themselves run with the docs (``docs/conftest.py``).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

# How the page names each distribution an extra brings (a new dependency must
# be added here and described on the page).
DISPLAY = {
    "numpy": "NumPy",
    "scipy": "SciPy",
    "sympy": "SymPy",
    "numba": "Numba",
    "hypothesis": "Hypothesis",
    "pytest": "pytest",
    "threadpoolctl": "threadpoolctl",
    "tqdm": "tqdm",
    "torch": "PyTorch",
    "matplotlib": "matplotlib",
    "dask": "Dask",
    "bokeh": "Bokeh",
    "mkdocs": "MkDocs",
    "mkdocs-material": "Material for MkDocs",
    "mkdocstrings": "mkdocstrings",
    "pymdown-extensions": "PyMdown Extensions",
    "ruff": "ruff",
    "mypy": "mypy",
    "sybil": "Sybil",
    "reservoirpy": "ReservoirPy",
}


def _read(rel: str) -> str:
    return (ROOT / rel).read_text(encoding="utf-8")


def _pyproject() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)


def _requirement(spec: str) -> tuple[str, list[str]]:
    """``"dask[distributed]>=2024.1"`` -> ``("dask", ["distributed"])``."""
    m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?", spec)
    assert m, spec
    extras = [e.strip() for e in (m.group(2) or "").split(",") if e.strip()]
    return m.group(1).lower().replace("_", "-"), extras


def _section(text: str, heading: str) -> str:
    """The body of the ``## heading`` section of a Markdown page."""
    m = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert m, f"no '## {heading}' section"
    return m.group(1)


def _table_rows(section: str) -> dict[str, list[str]]:
    """First cell (without backticks) -> the row's cells, for every table row."""
    rows = {}
    for line in section.splitlines():
        if line.startswith("|") and not set(line) <= set("|- "):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            rows[cells[0].strip("`")] = cells
    return rows


def _strip_fences(text: str) -> str:
    return re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)


# ---------------------------------------------------------------- install


def test_requirement_parser():
    assert _requirement("dask[distributed]>=2024.1") == ("dask", ["distributed"])
    assert _requirement("rnntheory[docs,plot,sweep]") == ("rnntheory", ["docs", "plot", "sweep"])
    assert _requirement("mkdocstrings[python]>=0.26") == ("mkdocstrings", ["python"])
    assert _requirement("torch>=2.2,<2.14") == ("torch", [])


def test_every_core_dependency_is_on_the_home_page():
    install = _section(_read("docs/index.md"), "Install")
    plain = install.split("Extras add")[0]  # the plain install's table
    for spec in _pyproject()["project"]["dependencies"]:
        name, _ = _requirement(spec)
        assert name in DISPLAY, f"{name}: new dependency; add it to DISPLAY and to the page"
        assert DISPLAY[name] in plain, f"the plain install's table does not name {DISPLAY[name]}"


def test_every_extra_is_described_with_what_it_brings():
    rows = _table_rows(_section(_read("docs/index.md"), "Install").split("Extras add")[1])
    extras = _pyproject()["project"]["optional-dependencies"]
    assert extras, "pyproject.toml declares no extras"
    for extra, specs in extras.items():
        assert extra in rows, f"extra `{extra}` of pyproject.toml is not described on docs/index.md"
        _, brings, enables = rows[extra]
        assert enables, f"extra `{extra}`: the page does not say what it enables"
        for spec in specs:
            name, sub = _requirement(spec)
            if name == "rnntheory":  # an extra made of other extras
                for other in sub:
                    assert f"`{other}`" in brings, f"extra `{extra}` includes `{other}`"
                continue
            assert name in DISPLAY, f"{name}: new dependency; add it to DISPLAY and to the page"
            assert DISPLAY[name] in brings, f"extra `{extra}` brings {DISPLAY[name]}"


def test_the_table_check_fails_on_a_missing_extra():
    # the check above is not vacuous: a table without a row is caught
    rows = _table_rows("| extra | brings | enables |\n|---|---|---|\n| `plot` | matplotlib | figures |\n")
    assert set(rows) == {"extra", "plot"}
    assert "oracle" not in rows


# ------------------------------------------------------------- navigation

TOP = ["Home", "Get started", "Guides", "Theory", "Reference", "Performance", "Contributing"]


def _nav():
    yaml = pytest.importorskip("yaml")
    return yaml.safe_load(_read("mkdocs.yml"))["nav"]


def _pages(node) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, list):
        return [p for item in node for p in _pages(item)]
    if isinstance(node, dict):
        return [p for value in node.values() for p in _pages(value)]
    raise AssertionError(f"unexpected nav entry {node!r}")


def test_navigation_order():
    nav = _nav()
    assert [next(iter(item)) for item in nav] == TOP
    assert nav[0] == {"Home": "index.md"} and nav[1] == {"Get started": "get-started.md"}
    guides = nav[2]["Guides"]
    headings = [next(iter(item)) for item in guides]
    assert headings[:5] == ["Check a derivation", "Property-test a claim", "Analyse your model",
                            "Train with remedies", "Experiments and sweeps"]
    theory = _pages(nav[3])
    for page in ("conventions.md", "theory/article.md", "ledger.md"):
        assert page in theory, page
    reference = _pages(nav[4])
    assert "api/rnntheory.md" in reference and "guides/cli.md" in reference
    assert "glossary.md" in reference
    contributing = _pages(nav[6])
    assert contributing == ["contributing.md", "architecture.md"]


def test_every_page_is_in_the_navigation_once():
    pages = _pages(_nav())
    local = [p for p in pages if not p.startswith(("http://", "https://"))]
    duplicates = {p for p in local if local.count(p) > 1}
    assert not duplicates, f"pages listed twice in nav: {sorted(duplicates)}"
    on_disk = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert set(local) <= on_disk, f"nav names missing pages: {sorted(set(local) - on_disk)}"
    assert on_disk <= set(local), f"pages no menu reaches: {sorted(on_disk - set(local))}"


# --------------------------------------------------------------- glossary

REQUIRED_TERMS = [
    "flow", "nats", "MSGD", "NRMSE84", "smart tanh", "BPTT(k1, k2)", "ESP",
    r"$\gamma_W$", r"$\gamma_h$", r"$\rho$", r"$\sigma_{\max}$", "Lyapunov exponent",
    "structural damping", r"$\Omega$", "certificate", "log space", "teacher forcing",
    "free running", "scheduled sampling", "leak", "spectral radius",
]

ENTRY = re.compile(r"^### (?P<title>.+?)\s*\{ #(?P<anchor>[a-z0-9-]+) \}\s*$")


def _entries(text: str) -> list[tuple[str, str, str]]:
    """(title, anchor, body) for every ``### title { #anchor }`` entry."""
    lines = _strip_fences(text).splitlines()
    out, current = [], None
    for line in lines:
        m = ENTRY.match(line)
        if m or line.startswith("## ") or line.startswith("### "):
            if current:
                out.append((current[0], current[1], "\n".join(current[2])))
            current = (m["title"], m["anchor"], []) if m else None
            assert m or not line.startswith("### "), f"glossary entry without an anchor: {line}"
        elif current:
            current[2].append(line)
    if current:
        out.append((current[0], current[1], "\n".join(current[2])))
    return out


def _names(title: str) -> list[str]:
    """The names an entry defines: its title split at commas (outside
    parentheses), with an alias in ``name (alias)`` counted as a name."""
    names = []
    for part in re.split(r",\s*(?![^()]*\))", title):
        m = re.fullmatch(r"(.*?) \((.*)\)", part.strip())
        names += [m[1], m[2]] if m else [part]
    return [n.strip().lower() for n in names if n.strip()]


def test_entry_parser():
    text = "## Terms\n\n### Flow { #flow }\n\nA.\n\n### $\\rho$, spectral radius { #rho }\n\nB.\n"
    assert _entries(text) == [("Flow", "flow", "\nA.\n"), ("$\\rho$, spectral radius", "rho", "\nB.")]
    assert _names("Echo state property (ESP)") == ["echo state property", "esp"]
    assert _names("BPTT, BPTT(k1, k2)") == ["bptt", "bptt(k1, k2)"]
    with pytest.raises(AssertionError, match="without an anchor"):
        _entries("### Flow\n\nA.\n")


def test_each_glossary_term_is_defined_once():
    entries = _entries(_read("docs/glossary.md"))
    assert len(entries) >= len(REQUIRED_TERMS) - 5  # several terms share an entry
    anchors = [a for _, a, _ in entries]
    assert len(anchors) == len(set(anchors)), "two entries share an anchor"
    names = [n for title, _, _ in entries for n in _names(title)]
    repeated = {n for n in names if names.count(n) > 1}
    assert not repeated, f"defined more than once: {sorted(repeated)}"
    for term in REQUIRED_TERMS:
        holders = [t for t, _, _ in entries if term.lower() in t.lower()]
        assert len(holders) == 1, f"{term!r} is in {len(holders)} entry titles: {holders}"


def test_each_glossary_entry_defines_and_links():
    for title, _, body in _entries(_read("docs/glossary.md")):
        prose = re.sub(r"\$[^$]*\$", "x", body)
        assert len(prose.split()) >= 15, f"{title}: too short to be a definition"
        links = re.findall(r"\]\(([^)#]+\.md)(#[^)]*)?\)", body)
        assert links, f"{title}: links to no page that uses it"
        for page, _ in links:
            assert (DOCS / page).is_file(), f"{title}: link to missing page {page}"


# ------------------------------------------------------------- home page

DOORS = [
    ("Check a derivation", "guides/prove.md"),
    ("Property-test a claim", "guides/strategies.md"),
    ("Analyse your model", "guides/diagnose.md"),
]


def test_home_page_has_three_doors_with_checked_output():
    home = _read("docs/index.md")
    positions = [home.index(f"\n## {door}\n") for door, _ in DOORS]
    assert positions == sorted(positions), "the doors are out of order"
    for door, guide in DOORS:
        body = _section(home, door)
        blocks = re.findall(r"^```python\n(.*?)^```", body, re.M | re.S)
        assert len(blocks) == 1, f"{door}: one example"
        example = blocks[0]
        assert example.startswith(">>> "), f"{door}: a doctest, so its shown output is compared"
        shown = [line for line in example.splitlines()
                 if line.strip() and not line.startswith((">>> ", "... "))]
        assert shown, f"{door}: no output shown"
        assert len(example.splitlines()) <= 30, f"{door}: keep the example short"
        assert f"]({guide})" in body, f"{door}: no link to {guide}"


def test_get_started_walks_the_doors_in_order():
    page = _read("docs/get-started.md")
    steps = ["Install", "rnntheory verify", "Check a derivation", "Property-test a claim",
             "Analyse your model"]
    positions = [page.index(step) for step in steps]
    assert positions == sorted(positions)
    assert "](guides/cli.md" in page  # verify's output is described there, not pasted here


# ----------------------------------------------------------- contributing


def _bash_blocks(text: str) -> list[str]:
    return re.findall(r"^```bash\n(.*?)^```", text, re.M | re.S)


def test_contributing_runs_what_the_readme_and_ci_run():
    page = _read("docs/contributing.md")
    readme_test = [b for b in _bash_blocks(_read("README.md")) if b.startswith("python -m pytest")]
    assert readme_test, "README has no test command"
    assert readme_test[0] in _bash_blocks(page), "the test command differs from the README's"
    ci = _read(".ci/run")
    for step in ("ruff check .", "mypy", "mkdocs build --strict", "python -m pytest",
                 'python -m pip install --quiet -e ".[dev,oracle]"'):
        assert step in ci, f".ci/run no longer runs {step!r}"
        assert step.replace("--quiet ", "") in page, f"the page does not say CI runs {step!r}"
    for path in ("benchmarks/README.md", ".ci/run", "tests/oracle.py", "tests/naive.py",
                 "rnntheory/_validation.py", "tests/test_fuzz.py", "tests/test_architecture.py"):
        assert (ROOT / path).is_file(), path
        assert path in page or Path(path).name in page, path
    assert "](architecture.md)" in page


# ----------------------------------------------------------------- README


def test_readme_opens_as_the_home_page_does():
    readme, home = _read("README.md"), _read("docs/index.md")
    first = home.split("\n\n")[1]
    assert first.startswith("**rnntheory**")
    assert readme.split("\n\n")[1] == first, "README's opening differs from the home page's"
    for door, _ in DOORS:
        # the README shows the home page's examples, which the docs tests run
        home_block = re.search(r"^```python\n.*?^```", _section(home, door), re.M | re.S)
        m = re.search(rf"^### {re.escape(door)}\n(.*?)(?=^##)", readme, re.M | re.S)
        assert m and home_block, door
        assert home_block.group(0) in m.group(1), f"README's '{door}' example differs from the home page's"
    positions = [readme.index(f"\n### {door}\n") for door, _ in DOORS]
    assert positions == sorted(positions) and positions[-1] < readme.index("## Two commands")
    extras = _section(readme, "Extras")
    for extra in _pyproject()["project"]["optional-dependencies"]:
        assert f"`{extra}`" in extras, f"README's Extras do not name `{extra}`"
