"""Tables: the one Markdown table writer (every generated table is parsed here and
keeps its header's column count, a cell holding ``|`` included) and the aligned
plain-text tables the command line prints.

Two independent readers check the Markdown: a GitHub-flavoured row splitter
written here from the GFM rule (a ``|`` preceded by an odd number of
backslashes is part of the cell), and Python-Markdown's ``tables`` extension,
the renderer of the docs site, whose HTML cells must hold the original text.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rnntheory._tables import (
    display_width,
    markdown_cell,
    markdown_table,
    markdown_to_text,
    shorten,
    text_table,
)

DOCS = Path(__file__).parents[1] / "docs"
DELIM = re.compile(r"^\|(\s*:?-{3,}:?\s*\|)+$")


def gfm_cells(line: str) -> list[str]:
    """The raw cells of one table row: split at each ``|`` preceded by an even number
    of backslashes (GFM), the leading and trailing pipes dropped."""
    assert line.startswith("|") and line.endswith("|"), line
    cells, start = [], 1
    for i in range(1, len(line)):
        if line[i] == "|":
            n = 0
            while line[i - 1 - n] == "\\":
                n += 1
            if n % 2 == 0:
                cells.append(line[start:i])
                start = i + 1
    assert start == len(line), line
    return cells


def tables_in(text: str) -> list[list[list[str]]]:
    """Every table of a Markdown page (a header row, a delimiter row, body rows)
    as lists of raw cells; a row that does not start with ``|`` ends a table."""
    lines = text.splitlines()
    out = []
    for i in range(len(lines) - 1):
        if lines[i].startswith("|") and DELIM.match(lines[i + 1]):
            rows = [gfm_cells(lines[i]), gfm_cells(lines[i + 1])]
            j = i + 2
            while j < len(lines) and lines[j].startswith("|"):
                rows.append(gfm_cells(lines[j]))
                j += 1
            out.append(rows)
    return out


def assert_well_formed(text: str, *, at_least: int = 1) -> list[list[list[str]]]:
    tables = tables_in(text)
    assert len(tables) >= at_least, text[:500]
    for t in tables:
        for row in t:
            assert len(row) == len(t[0]), (t[0], row)
    return tables


class _Cells(HTMLParser):
    """The text of every <th>/<td> of rendered HTML, row by row."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def rendered_cells(md: str) -> list[list[str]]:
    markdown = pytest.importorskip("markdown")
    p = _Cells()
    p.feed(markdown.markdown(md, extensions=["tables"]))
    return p.rows


# ----------------------------------------------------------------------------- the writer

PIPES = [
    ["|λ1| > |λ2|", "a \\| b", "ends in \\"],
    ["two\nlines\r\nthree", "\\sigma \\\\ \\(", "x\\|y"],
    ["", "  padded  ", "‖x‖ = |x|"],
]


def test_cells_with_pipes_backslashes_and_newlines_keep_the_shape():
    """Regression: a ``|`` inside a cell was written raw (``verify --report`` split the
    row into more columns than the header). Both readers see 3 cells per row, and the
    renderer shows each cell's text as given (line breaks as spaces)."""
    text = markdown_table(["a|b", "back\\slash", "c"], PIPES, align=["left", "right", "center"])
    (table,) = assert_well_formed(text)
    assert table[1] == ["---", "---:", ":---:"]
    html = rendered_cells(text)
    assert html[0] == ["a|b", "back\\slash", "c"]
    for got, want in zip(html[1:], PIPES, strict=True):
        assert got == [" ".join(w.split()) for w in want]


def test_a_raw_pipe_would_have_broken_the_row():
    """The check above can fail: the same row written without escaping has 4 cells."""
    assert len(gfm_cells("| " + " | ".join(["a", "|x|"]) + " |")) == 4
    assert len(gfm_cells("| " + " | ".join(markdown_cell(c) for c in ["a", "|x|"]) + " |")) == 2


@given(st.lists(st.text(alphabet="ab |\\\n(!*_", max_size=12), min_size=1, max_size=4))
def test_any_cell_text_survives_the_renderer(cells):
    """Any text over an alphabet of pipes, backslashes, line breaks and punctuation:
    one row of len(cells) cells for both readers, and the rendered text is the input
    (whitespace collapsed; ``*``/``_`` stay Markdown and are left out of the comparison)."""
    text = markdown_table([f"h{i}" for i in range(len(cells))], [cells])
    table = assert_well_formed(text)[0]
    assert len(table[2]) == len(cells)
    if any(c in "".join(cells) for c in "*_"):
        return
    html = rendered_cells(text)
    # HTML shows a run of spaces as one, so both sides are compared with whitespace
    # collapsed (Python-Markdown keeps the two spaces of a cell such as "\\  \\")
    assert [" ".join(h.split()) for h in html[1]] == [" ".join(c.split()) for c in cells]


BAD = [
    (lambda: markdown_table(["a", "b"], [[1]]), ValueError, r"`rows` must have 2 cells each .* got 1 in row 0"),
    (lambda: markdown_table([], []), TypeError, "`headers` must be a non-empty sequence"),
    (lambda: markdown_table("ab", []), TypeError, "`headers` must be a non-empty sequence"),
    (lambda: markdown_table(["a"], ["x"]), TypeError, "`rows` must hold sequences of cells, got str"),
    (lambda: markdown_table(["a"], [[1]], align="middle"), ValueError, "`align` entries must be one of"),
    (lambda: markdown_table(["a"], [[1]], align=["left", "right"]), ValueError,
     r"`align` must give one alignment per column \(1\), got 2"),
    (lambda: text_table(["a"], [[1]], width=10, shrink=3), ValueError, "`shrink` must index a column"),
    (lambda: markdown_to_text(b"| a |"), TypeError, "`markdown` must be a str, got bytes"),
]


@pytest.mark.parametrize(("call", "exc", "match"), BAD)
def test_bad_inputs_name_the_argument(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


# ----------------------------------------------------------------------------- every generated table


def test_verify_report_tables(tmp_path):
    """``verify --report``'s page: the checks table and the ledger table, with a claim
    holding ``|`` and a line break (the regression case) read back intact."""
    from rnntheory.ledger import ClaimResult
    from rnntheory.verification import CheckResult, VerifyConfig, write_report

    rows = [CheckResult("demo", "‖x‖ = |x| for a scalar\nx", 1, 1, 0.0, True),
            CheckResult("nan", "a | b", 2, 3, float("nan"), False)]
    claims = [ClaimResult("C08", "eigenvalues |λ1| > |λ2|", "Eq. 9", "reading", "false", "",
                          (), True, None, 0.0, None)]
    page = write_report(rows, tmp_path, VerifyConfig(T=5), claims).read_text(encoding="utf-8")
    checks, ledger = assert_well_formed(page, at_least=2)
    assert [len(r) for r in checks] == [6] * 4 and [len(r) for r in ledger] == [4] * 3
    html = rendered_cells(page)
    assert html[1][-1] == "‖x‖ = |x| for a scalar x" and html[2][-1] == "a | b"
    assert html[2][3] == "nan" and html[2][4] == "FAIL"
    assert html[4][-1] == "eigenvalues |λ1| > |λ2|"


def test_ledger_page_tables():
    """``rnntheory prove --markdown``: the committed page (equal to a fresh rendering,
    tests/test_ledger.py) and a rendering of a claim with pipes."""
    from rnntheory.ledger import ClaimResult, to_markdown

    assert_well_formed((DOCS / "ledger.md").read_text(encoding="utf-8"))
    r = ClaimResult("C99", "a | b \\| c", "Eq. |9|", "reading", "holds", "", (), False, None, 0.0, None)
    (table,) = assert_well_formed(to_markdown([r]))
    assert len(table[2]) == 5
    assert rendered_cells(to_markdown([r]))[1][1:3] == ["Eq. |9|", "a | b \\| c"]


def test_remedy_matrix_tables():
    """The cell × remedy page, rendered now and as committed."""
    from rnntheory.remedies.support import render_markdown

    for text in (render_markdown(), (DOCS / "guides" / "remedy-matrix.md").read_text(encoding="utf-8")):
        (table, *_) = assert_well_formed(text)
        assert len(table) > 10 and len(table[0]) > 5


@pytest.mark.parametrize(
    ("name", "config"),
    [
        ("init-spectra", {"n_hidden": 6, "seeds": 2}),
        ("bound-tightness", {"T": 6, "n_hidden": 3, "models": ("elman-smart_tanh", "gru"),
                             "figures": "none"}),
    ],
)
def test_experiment_report_tables(name, config, tmp_path):
    """Experiments' reports from tiny runs: every table well formed on the page written."""
    from rnntheory.experiments import get_experiment, run_experiment

    cfg = get_experiment(name).config_type(**config)
    run_experiment(name, out=tmp_path, config=cfg)
    assert_well_formed((tmp_path / f"{name}.md").read_text(encoding="utf-8"))


def test_experiments_table_helper_escapes():
    """The helper every experiment's report uses goes through the one writer: a method
    named with ``|`` stays in its cell; numbers are formatted as before."""
    from rnntheory.experiments.registry import markdown_table as exp_table

    text = exp_table(["method", "error"], [["clip | Ω", 0.5], ["none", float("nan")]])
    (table,) = assert_well_formed(text)
    assert len(table) == 4 and len(table[2]) == 2
    assert rendered_cells(text)[1:] == [["clip | Ω", "0.5"], ["none", "—"]]


def test_sweep_report_tables(tmp_path):
    """``rnntheory report``: the success and gradient tables of a tiny store."""
    from rnntheory.experiments import RunSpec
    from rnntheory.experiments.report import write_report
    from rnntheory.experiments.store import Store

    metrics = {"final_error": 0.0, "solved": True, "steps_to_solve": 10, "grad_norm_median": 1.0,
               "grad_norm_max": 2.0, "n_clips": 1, "n_fallbacks": 0, "n_nonfinite_grads": 0,
               "wall_s": 0.1}
    with Store(tmp_path / "r.db") as s:
        for rem in ("", "clip"):
            s.record(RunSpec("temporal_order", 20, remedies=rem, seed=0), metrics=metrics)
    res = write_report(tmp_path / "r.db", tmp_path / "out", figures=False)
    succ, grads = assert_well_formed(Path(res.path).read_text(encoding="utf-8"), at_least=2)
    assert len(succ[0]) == 8 and len(grads[0]) == 8 and len(succ) == 4


# ----------------------------------------------------------------------------- terminal text


def test_text_table_aligns_and_shortens():
    """Columns padded to one display width (a wide character counts 2), numbers right
    aligned, the shrinking column cut with an ellipsis so no line passes the width."""
    rows = [["eq12", 4.4e-16, "Eq. 12: ‖∂h_t/∂h_k‖ ≤ (γ_W γ_h)^(t−k) on every pair"],
            ["宽", -1.0, "short"]]
    lines = text_table(["check", "worst", "claim"], rows, align=["left", "right", "left"], width=30)
    assert all(display_width(line) <= 30 for line in lines)
    assert lines[2].endswith("…") and lines[3].endswith("short")
    # the claim column starts at the same display column on every line
    starts = {display_width(line[: line.index(c)]) for line, c in zip(lines[2:], ("Eq.", "short"), strict=True)}
    assert len(starts) == 1
    assert lines[2].index("4.4e-16") + len("4.4e-16") == lines[3].index("-1.0") + len("-1.0") + 1  # 宽 is 2 wide


@pytest.mark.parametrize(("text", "width", "want"),
                         [("abcdef", 4, "abc…"), ("abc", 3, "abc"), ("abcd", 1, "…"), ("abcd", 0, ""),
                          ("ab   cdef", 5, "ab…")])
def test_shorten(text, width, want):
    assert shorten(text, width) == want
    assert display_width(shorten(text, width)) <= max(width, 0)


def test_markdown_to_text_renders_tables_and_keeps_the_prose():
    """A report's tables become aligned text with the escapes undone; other lines stay."""
    md = "# Title\n\nprose | with a pipe\n\n" + markdown_table(
        ["model", "ρ"], [["smart | tanh", 0.95], ["x\\y", 12.5]], align=["left", "right"]) + "\n\nend"
    text = markdown_to_text(md)
    assert "|" not in text.replace("smart | tanh", "").replace("prose | with", "")
    lines = text.splitlines()
    assert lines[:4] == ["# Title", "", "prose | with a pipe", ""]
    assert lines[4].split() == ["model", "ρ"] and lines[6].split() == ["smart", "|", "tanh", "0.95"]
    assert lines[7].split() == ["x\\y", "12.5"] and lines[-1] == "end"
    assert len(lines[6]) == len(lines[7])  # right-aligned numbers end in one column
