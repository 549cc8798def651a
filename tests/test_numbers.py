"""One source for every number the pages quote.

A measured number on a page (README.md, docs/**/*.md, benchmarks/README.md) is
either stated once, where the run that produced it is described, or quoted
with its source in an HTML comment right after it (invisible on GitHub and in
MkDocs)::

    21×<!-- src: benchmarks/README.md#elman-f64-h64-b1 -->
    1.74<!-- src: docs/figures/experiments/init-spectra.json#numbers/schemes/smart_tanh/sigma_max/mean -->

A source is a JSON file (the key is a ``/``-separated path into it, list
indices as numbers, a space in a key written ``%20``) or a page that states the number once, marked with
``<!-- id: KEY -->`` right after it. The quoted number must equal its
source rounded as shown (within half a unit of its last digit), so a page
that drifts from its source fails here. Pages whose speed ratios are all
quoted from a source must not hold an unmarked ratio.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]

# a number (digits grouped by plain spaces allowed: "20 100"), up to a few unit
# characters ("×", " s", " ms", "%"), then the marker
_NUMBER = r"(?P<num>[-−]?\d{1,3}(?: \d{3})+(?:\.\d+)?|[-−]?\d+(?:\.\d+)?)(?P<unit>[^\d<>\n]{0,4})"
SRC = re.compile(_NUMBER + r"<!-- src: (?P<path>[^#\s]+)#(?P<key>[^\s]+) -->")
ID = re.compile(_NUMBER + r"<!-- id: (?P<key>[^\s]+) -->")
MARK = re.compile(r"<!-- (src|id): ")

# pages whose speed ratios all come from a source: an unmarked "N×" is a copy
RATIO_PAGES = ("README.md", "docs/guides/performance.md", "docs/guides/omega.md")
RATIO = re.compile(r"\d(?:\.\d+)?×")


def _pages() -> list[Path]:
    pages = [ROOT / "README.md", ROOT / "benchmarks" / "README.md"]
    pages += sorted((ROOT / "docs").rglob("*.md"))
    return [p for p in pages if p.exists()]


def _value(text: str) -> tuple[float, int]:
    """The number as shown and its count of decimals."""
    t = text.replace(" ", "").replace("−", "-")
    decimals = len(t.split(".")[1]) if "." in t else 0
    return float(t), decimals


def _ids(pages: list[Path]) -> dict[tuple[str, str], list[str]]:
    """``(page, key) -> [numbers]`` for every ``<!-- id: KEY -->`` of the pages."""
    out: dict[tuple[str, str], list[str]] = {}
    for p in pages:
        rel = p.relative_to(ROOT).as_posix()
        for m in ID.finditer(p.read_text(encoding="utf-8")):
            out.setdefault((rel, m["key"]), []).append(m["num"])
    return out


def _lookup(path: str, key: str, ids: dict[tuple[str, str], list[str]]) -> float:
    """The source value of ``path#key``; raises LookupError naming what is missing."""
    if path.endswith(".json"):
        f = ROOT / path
        if not f.exists():
            raise LookupError(f"{path} does not exist")
        node = json.loads(f.read_text(encoding="utf-8"))
        for part in map(unquote, key.split("/")):
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise LookupError(f"{path}#{key}: no item {part!r}")
                node = node[int(part)]
            elif isinstance(node, dict) and part in node:
                node = node[part]
            else:
                raise LookupError(f"{path}#{key}: no key {part!r}")
        if isinstance(node, bool) or not isinstance(node, int | float):
            raise LookupError(f"{path}#{key} is not a number: {node!r}")
        return float(node)
    stated = ids.get((path, key))
    if not stated:
        raise LookupError(f"{path} has no number marked <!-- id: {key} -->")
    return _value(stated[0])[0]


def check_page(text: str, ids: dict[tuple[str, str], list[str]]) -> list[str]:
    """Every quoted number of ``text`` against its source: a list of disagreements."""
    problems = []
    for m in SRC.finditer(text):
        shown, decimals = _value(m["num"])
        try:
            source = _lookup(m["path"], m["key"], ids)
        except LookupError as exc:
            problems.append(f"{m['num']}{m['unit']}: {exc}")
            continue
        half = 0.5 * 10.0 ** (-decimals)
        if not abs(shown - source) <= half + 1e-9 * max(1.0, abs(source)):
            problems.append(
                f"{m['num']}{m['unit']} disagrees with {m['path']}#{m['key']} = {source:g} "
                f"(shown to {decimals} decimals)"
            )
    return problems


def test_every_quoted_number_agrees_with_its_source():
    pages = _pages()
    ids = _ids(pages)
    problems = []
    n = 0
    for p in pages:
        text = p.read_text(encoding="utf-8")
        n += len(SRC.findall(text))
        problems += [f"{p.relative_to(ROOT)}: {q}" for q in check_page(text, ids)]
    assert not problems, "\n".join(problems)
    assert n >= 10, f"only {n} quoted numbers found: the convention is not being read"


def test_each_stated_number_is_stated_once():
    """An ``id`` names one number on one page; two statements would be two sources."""
    ids = _ids(_pages())
    twice = {k: v for k, v in ids.items() if len(v) > 1}
    assert not twice, twice
    keys = [k for _, k in ids]
    assert len(keys) == len(set(keys)), sorted(k for k in keys if keys.count(k) > 1)


def test_every_marker_sits_right_after_a_number():
    """A marker the test cannot pair with a number would check nothing."""
    bad = []
    for p in _pages():
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
            paired = len(SRC.findall(line)) + len(ID.findall(line))
            if len(MARK.findall(line)) != paired:
                bad.append(f"{p.relative_to(ROOT)}:{i}: {line.strip()[:120]}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("page", RATIO_PAGES)
def test_speed_ratios_on_quoting_pages_are_marked(page):
    """No unmarked copy of a ratio on the pages that quote their ratios."""
    text = (ROOT / page).read_text(encoding="utf-8")
    marked = {m.start("num") for m in SRC.finditer(text)}
    bare = []
    for m in RATIO.finditer(text):
        start = m.start()
        while start > 0 and (text[start - 1].isdigit() or text[start - 1] == "."):
            start -= 1
        if start not in marked:
            bare.append(text[max(0, start - 40):m.end() + 10].replace("\n", " "))
    assert not bare, (
        f"{page} quotes ratios without their source; write each as "
        "N×<!-- src: FILE#KEY --> (e.g. benchmarks/results/remedy_matrix.json#ratios/CELL|REMEDY, "
        f"or a number a page states once with <!-- id: KEY -->): {bare}"
    )


def test_a_disagreeing_number_is_caught(tmp_path):
    """The check is not vacuous: a wrong digit, a wrong rounding, a missing key and a
    missing page are all reported; the right numbers (rounded as shown) pass."""
    ids = {("bench.md", "ratio"): ["21.1"]}
    src = "benchmarks/results/remedy_matrix.json"
    value = _lookup(src, "ratios/stacked-elman|omega", {})
    good = (f"{round(value, 1)}×<!-- src: {src}#ratios/stacked-elman|omega --> and "
            "21×<!-- src: bench.md#ratio --> and 21.1 s<!-- src: bench.md#ratio -->")
    assert check_page(good, ids) == []
    bad = (f"{round(value, 1) + 0.1:.1f}×<!-- src: {src}#ratios/stacked-elman|omega --> "
           "22×<!-- src: bench.md#ratio --> 21.2<!-- src: bench.md#ratio --> "
           "3<!-- src: bench.md#nope --> 4<!-- src: nowhere.json#a -->")
    problems = check_page(bad, ids)
    assert len(problems) == 5, problems
    assert "disagrees" in problems[1] and "no number marked" in problems[3]
    assert "does not exist" in problems[4]
