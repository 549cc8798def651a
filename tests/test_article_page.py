"""The page that restates the article, ``docs/theory/article.md``, held to the ledger.

Every claim the ledger registers has a section on the page with its anchor,
every equation 1–16 has its anchor, each claim's verdict on the page (in its
section and in the summary table) equals the verdict on the ledger page, and
every internal link of the page, and every link from the ledger page to it,
lands on a page and an anchor that exist.

The ledger page ``docs/ledger.md`` is compared with a fresh run of every proof
by ``tests/test_ledger.py``; comparing the article page with it (rather than
running the 34 proofs a second time) keeps this file fast while a drift on
either side still fails: a changed verdict makes the ledger page stale, and
the regenerated ledger page then disagrees with the article page.
"""

from __future__ import annotations

import importlib
import re
from functools import cache
from pathlib import Path

import pytest

markdown = pytest.importorskip("markdown")
pytest.importorskip("pymdownx")  # the site's Markdown extensions (the docs extra)

from rnntheory import ledger  # noqa: E402

DOCS = Path(__file__).parents[1] / "docs"
PAGE = DOCS / "theory" / "article.md"
LEDGER_PAGE = DOCS / "ledger.md"

LINK = re.compile(r"(?<!!)\[(?P<text>[^\]]*)\]\((?P<target>[^)\s]+)\)")
CLAIM_HEADING = re.compile(r"^#{2,6} .*\{#(?P<id>c\d\d)\}\s*$", re.M)
VERDICT_LINE = re.compile(r"^\*\*Verdict:\*\* \*(?P<verdict>[^*]+)\*\s*$", re.M)
SUMMARY_ROW = re.compile(r"^\| \[(?P<id>C\d\d)\]\(#(?P<anchor>c\d\d)\) \| (?P<where>[^|]+) \| (?P<verdict>[^|]+) \|$", re.M)


def _page() -> str:
    return PAGE.read_text(encoding="utf-8")


@cache
def _render_ids(text: str) -> frozenset[str]:
    """Every ``id`` a page has once rendered the way the site renders it
    (headings' slugs, ``{#id}`` attributes, ``<a id>``)."""
    md = markdown.Markdown(
        extensions=["toc", "attr_list", "admonition", "pymdownx.superfences", "pymdownx.arithmatex"],
        extension_configs={"pymdownx.arithmatex": {"generic": True}},
    )
    return frozenset(re.findall(r'\bid="([^"]+)"', md.convert(text)))


def _ids(path: Path) -> frozenset[str]:
    return _render_ids(path.read_text(encoding="utf-8"))


def _documented(path: Path, anchor: str) -> bool:
    """Whether the API page ``path`` documents the public object ``anchor``
    (a dotted path such as ``rnntheory.bounds.certify``) through one of its
    ``::: module`` blocks, as mkdocstrings gives it that anchor."""
    roots = re.findall(r"^::: (\S+)\s*$", path.read_text(encoding="utf-8"), re.M)
    if not any(anchor == r or anchor.startswith(r + ".") for r in roots):
        return False
    parts = anchor.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            if name.startswith("_") or not hasattr(obj, name):
                return False
            obj = getattr(obj, name)
        return bool(getattr(obj, "__doc__", None))
    return False


def _broken_links(path: Path, text: str | None = None) -> list[str]:
    """The internal links of the page at ``path`` (its text, or ``text`` read
    as if it were there) whose page or anchor does not exist."""
    text = path.read_text(encoding="utf-8") if text is None else text
    broken = []
    for m in LINK.finditer(text):
        target = m.group("target")
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        file, _, anchor = target.partition("#")
        dest = (path.parent / file).resolve() if file else path.resolve()
        if file and (not dest.is_file() or DOCS.resolve() not in dest.parents):
            broken.append(f"{target}: no page {dest}")
            continue
        if not anchor:
            continue
        if anchor in (_render_ids(text) if not file else _ids(dest)):
            continue
        if dest.parent.name == "api" and _documented(dest, anchor):
            continue
        broken.append(f"{target}: no anchor #{anchor} in {dest.relative_to(DOCS.resolve())}")
    return broken


def _sections() -> dict[str, str]:
    """The claim sections of the page, by anchor (``c01`` …): the text from a
    claim's heading to the next heading of any claim or to the references."""
    text = _page()
    end = text.index("\n## References")
    heads = list(CLAIM_HEADING.finditer(text))
    return {
        h.group("id"): text[h.end(): (heads[i + 1].start() if i + 1 < len(heads) else end)]
        for i, h in enumerate(heads)
    }


def _ledger_page_verdicts() -> dict[str, str]:
    """The verdict of each claim as the generated ledger page states it in the
    claim's own section (``**Verdict**: false. **Method**: …``)."""
    text = LEDGER_PAGE.read_text(encoding="utf-8")
    found = re.findall(r"^## (C\d\d)\n(?:.*\n)*?\*\*Verdict\*\*: (.+?)\. \*\*Method\*\*", text, re.M)
    return dict(found)


# ----------------------------------------------------------------------------- anchors
def test_every_registered_claim_has_a_section_with_its_anchor():
    """The claims with a section on the page, in page order, are exactly the
    ledger's registered claims, C01–C34, in ID order."""
    ids = [h.group("id") for h in CLAIM_HEADING.finditer(_page())]
    registered = [i.lower() for i in ledger.registry()]
    assert len(registered) == 34
    assert ids == registered
    rendered = _ids(PAGE)
    assert {i for i in registered if i not in rendered} == set()


def test_every_equation_has_its_anchor():
    """Eqs. 1–16 each have an anchor ``eq-N`` (Eq. 2 also ``eq-2a``/``eq-2b``)."""
    rendered = _ids(PAGE)
    wanted = {f"eq-{i}" for i in range(1, 17)} | {"eq-2a", "eq-2b"}
    assert wanted - rendered == set()
    # each equation is stated, in display math, in its own section
    text = _page()
    for i in [1, "2a", "2b", *range(3, 17)]:
        start = text.index(f"{{#eq-{i}}}")
        section = text[start: text.index("\n### ", start) if i != 16 else text.index("\n## The claims")]
        assert section.count("$$") >= 2, f"Eq. {i} has no displayed formula"


def test_summary_table_lists_every_claim_once_where_the_ledger_places_it():
    """The summary table has one row per registered claim, in order, linking to
    its section, and its 'where' column agrees with the registry's place up to
    wording ("L1/L2 paragraph" is written "L1/L2 penalties")."""
    rows = list(SUMMARY_ROW.finditer(_page()))
    reg = ledger.registry()
    assert [r.group("id") for r in rows] == list(reg)
    for r in rows:
        assert r.group("anchor") == r.group("id").lower()
        where = reg[r.group("id")].where
        for eq in re.findall(r"Eqs?\. [\d–]+", where):
            assert eq in r.group("where"), (r.group("id"), where, r.group("where"))


# ----------------------------------------------------------------------------- verdicts
def test_each_verdict_on_the_page_is_the_ledgers():
    """Each claim's section states exactly one verdict, the same as the summary
    table's and as the generated ledger page's, and it is one of the ledger's
    verdicts."""
    sections = _sections()
    table = {r.group("anchor"): r.group("verdict").strip() for r in SUMMARY_ROW.finditer(_page())}
    on_ledger = _ledger_page_verdicts()
    assert sorted(on_ledger) == list(ledger.registry())
    for cid, verdict in on_ledger.items():
        found = VERDICT_LINE.findall(sections[cid.lower()])
        assert found == [verdict], (cid, found, verdict)
        assert table[cid.lower()] == verdict, (cid, table[cid.lower()], verdict)
        assert verdict in ledger.VERDICTS


def test_the_verdict_check_detects_a_changed_verdict():
    """The parser reads what the page says: a page whose C21 verdict is edited
    no longer matches (guards against a regex that matches nothing)."""
    section = _sections()["c21"]
    assert VERDICT_LINE.findall(section) == ["false"]
    edited = section.replace("**Verdict:** *false*", "**Verdict:** *holds*")
    assert VERDICT_LINE.findall(edited) == ["holds"] != [_ledger_page_verdicts()["C21"]]


def test_each_false_claim_names_its_counterexample_and_every_claim_its_proof_module():
    """A *false* verdict comes with a counterexample stated on the page, and
    every section names the module of ``proofs/`` whose function proves it."""
    reg = ledger.registry()
    for cid, section in _sections().items():
        spec = reg[cid.upper()]
        module = spec.prove.__module__.rsplit(".", 1)[-1]
        assert f"proof: `proofs/{module}.py`" in section, (cid, module)
        assert f"[Ledger entry](../ledger.md#{cid})" in section, cid
        if VERDICT_LINE.findall(section) == ["false"]:
            assert "counterexample" in section.lower(), cid


# ----------------------------------------------------------------------------- links
def test_every_internal_link_of_the_page_resolves():
    """Every relative link of the page names an existing docs page and, when it
    has one, an anchor that page has (API anchors: an object its
    ``::: module`` block documents)."""
    assert _broken_links(PAGE) == []


def test_the_ledger_page_links_each_claim_and_its_equations_to_the_page():
    """Each claim's section of the ledger page links to the claim's anchor on
    the article page and to every equation its place names, and those links
    resolve."""
    text = LEDGER_PAGE.read_text(encoding="utf-8")
    for cid, spec in ledger.registry().items():
        assert f"[{cid}](theory/article.md#{cid.lower()})" in text, cid
        for first, last in re.findall(r"Eqs?\. (\d+)(?:–(\d+))?", spec.where):
            for i in range(int(first), int(last or first) + 1):
                assert f"[Eq. {i}](theory/article.md#eq-{i})" in text, (cid, i)
    assert _broken_links(LEDGER_PAGE) == []


def test_the_link_check_detects_a_missing_anchor():
    """The link checker is not vacuous: a link to an anchor no page has, to a
    missing page, to a missing anchor of the page itself and to an API object
    that does not exist are all reported, while good ones are not."""
    probe = (
        "[ok](../ledger.md#c21) [ok](#x) [ok](symbolic.md) "
        "[api](../api/bounds.md#rnntheory.bounds.certify)\n\n"
        "## X {#x}\n\n"
        "[bad](../ledger.md#c99) [gone](nowhere.md) [self](#y) "
        "[api](../api/bounds.md#rnntheory.bounds.no_such)\n"
    )
    broken = _broken_links(PAGE, probe)
    assert len(broken) == 4, broken
    for bad in ("#c99", "nowhere.md", "#y", "no_such"):
        assert any(bad in b for b in broken), bad
