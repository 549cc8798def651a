"""Tables, written once: aligned plain text for a terminal, Markdown for files.

Every Markdown table the library generates (``rnntheory verify --report``, the
experiments' and sweeps' reports, the claims ledger page, the cell × remedy
matrix page) goes through :func:`markdown_table`, which escapes each cell so
that the table keeps its shape: a ``|`` inside a cell is written ``\\|``, a
backslash that would escape the next character is doubled, and a line break
becomes a space (a table row is one line). Cells are otherwise Markdown source:
links, code spans and emphasis in them are kept.

What the command line prints on a terminal is plain text: :func:`text_table`
pads columns to a common display width and shortens one column with an
ellipsis to fit a width; :func:`markdown_to_text` turns the tables of a
Markdown report into such text tables for printing.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Any

__all__ = [
    "ALIGNS",
    "display_width",
    "markdown_cell",
    "markdown_table",
    "markdown_to_text",
    "pad",
    "shorten",
    "text_table",
]

#: The column alignments the writers accept.
ALIGNS = ("left", "right", "center")

_RULE = {"left": "---", "right": "---:", "center": ":---:"}
_LINE_BREAK = re.compile(r"\r\n|\r|\n|\u2028|\u2029")
_PUNCT = r"""!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~"""
# a backslash before ASCII punctuation escapes it in Markdown: double it to keep it literal
_ESCAPING_BACKSLASH = re.compile(rf"\\(?=[{_PUNCT}])")
_UNESCAPE = re.compile(rf"\\([{_PUNCT}])")
_DELIM_ROW = re.compile(r"^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def markdown_cell(value: Any) -> str:
    """``value`` as the text of one Markdown table cell.

    Line breaks become spaces, a backslash before ASCII punctuation is doubled
    (it stays a literal backslash), and ``|`` is written ``\\|``; surrounding
    whitespace is dropped. Other Markdown (links, code spans, emphasis) is kept.

    Parameters
    ----------
    value : object
        A string, or anything ``str()`` turns into one.

    Returns
    -------
    str

    Examples
    --------
    >>> from rnntheory._tables import markdown_cell
    >>> markdown_cell("|λ1| > |λ2|")
    '\\\\|λ1\\\\| > \\\\|λ2\\\\|'
    >>> markdown_cell("two\\nlines")
    'two lines'
    """
    text = _LINE_BREAK.sub(" ", _text(value))
    text = _ESCAPING_BACKSLASH.sub(r"\\\\", text)
    return text.replace("|", "\\|").strip()


def _aligns(align: Sequence[str] | str | None, n: int) -> list[str]:
    if align is None:
        return ["left"] * n
    if isinstance(align, str):
        align = [align] * n
    aligns = list(align)
    if len(aligns) != n:
        raise ValueError(f"`align` must give one alignment per column ({n}), got {len(aligns)}")
    for a in aligns:
        if a not in ALIGNS:
            raise ValueError(f"`align` entries must be one of {ALIGNS}, got {a!r}")
    return aligns


def _rows(headers: Sequence[Any], rows: Sequence[Sequence[Any]]) -> tuple[list[str], list[list[Any]]]:
    if isinstance(headers, str | bytes) or not isinstance(headers, Sequence) or not headers:
        raise TypeError(f"`headers` must be a non-empty sequence of column names, got {headers!r}")
    if isinstance(rows, str | bytes) or not isinstance(rows, Sequence):
        raise TypeError(f"`rows` must be a sequence of rows, got {type(rows).__name__}")
    out = []
    for i, r in enumerate(rows):
        if isinstance(r, str | bytes) or not isinstance(r, Sequence):
            raise TypeError(f"`rows` must hold sequences of cells, got {type(r).__name__} at row {i}")
        if len(r) != len(headers):
            raise ValueError(f"`rows` must have {len(headers)} cells each (one per header), "
                             f"got {len(r)} in row {i}")
        out.append(list(r))
    return [_text(h) for h in headers], out


def markdown_table(
    headers: Sequence[Any],
    rows: Sequence[Sequence[Any]],
    *,
    align: Sequence[str] | str | None = None,
) -> str:
    """A GitHub-flavoured Markdown table, every cell escaped by :func:`markdown_cell`.

    Parameters
    ----------
    headers : sequence
        The column names.
    rows : sequence of sequences
        The cells, one sequence per row, each as long as ``headers``;
        non-strings are written with ``str()``.
    align : str or sequence of str, optional
        ``"left"`` (default), ``"right"`` or ``"center"``, for all columns or one per column.

    Returns
    -------
    str
        The table's lines joined by newlines (no trailing newline).

    Raises
    ------
    TypeError, ValueError
        On a row whose length differs from the header's, or an unknown alignment.

    Examples
    --------
    >>> from rnntheory._tables import markdown_table
    >>> print(markdown_table(["x", "|x|"], [[-2, 2]], align=["left", "right"]))
    | x | \\|x\\| |
    |---|---:|
    | -2 | 2 |
    """
    head, body = _rows(headers, rows)
    aligns = _aligns(align, len(head))

    def line(cells: Sequence[Any]) -> str:
        return "| " + " | ".join(markdown_cell(c) for c in cells) + " |"

    lines = [line(head), "|" + "|".join(_RULE[a] for a in aligns) + "|"]
    lines += [line(r) for r in body]
    return "\n".join(lines)


def display_width(text: str) -> int:
    """Columns ``text`` takes on a terminal: wide East Asian characters count 2,
    combining marks and zero-width characters 0."""
    w = 0
    for ch in text:
        if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
            continue
        w += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return w


def shorten(text: str, width: int, placeholder: str = "…") -> str:
    """``text`` cut to at most ``width`` columns, ending in ``placeholder`` when cut.

    Examples
    --------
    >>> from rnntheory._tables import shorten
    >>> shorten("Eq. 12 bounds every pair", 10)
    'Eq. 12 bo…'
    >>> shorten("short", 10)
    'short'
    """
    if width <= 0:
        return ""
    if display_width(text) <= width:
        return text
    room = width - display_width(placeholder)
    if room < 0:
        return placeholder[:width]
    out, used = [], 0
    for ch in text:
        w = display_width(ch)
        if used + w > room:
            break
        out.append(ch)
        used += w
    return "".join(out).rstrip() + placeholder


def pad(text: str, width: int, align: str = "left") -> str:
    """``text`` padded with spaces to ``width`` display columns (never cut)."""
    gap = max(0, width - display_width(text))
    if align == "right":
        return " " * gap + text
    if align == "center":
        return " " * (gap // 2) + text + " " * (gap - gap // 2)
    return text + " " * gap


def _plain(value: Any) -> str:
    return " ".join(_LINE_BREAK.sub(" ", _text(value)).split())


def text_table(
    headers: Sequence[Any],
    rows: Sequence[Sequence[Any]],
    *,
    align: Sequence[str] | str | None = None,
    width: int | None = None,
    shrink: int | None = None,
    gap: int = 2,
) -> list[str]:
    """An aligned plain-text table for a terminal: a header, a rule, and the rows.

    Parameters
    ----------
    headers, rows, align
        As for :func:`markdown_table`.
    width : int, optional
        The widest a line may be; the column ``shrink`` (default: the last) is
        shortened with an ellipsis to fit. Columns are never cut below their
        header's width.
    shrink : int, optional
        Index of the column to shorten.
    gap : int
        Spaces between columns.

    Returns
    -------
    list of str
        The lines, without trailing spaces.

    Examples
    --------
    >>> from rnntheory._tables import text_table
    >>> for line in text_table(["check", "worst"], [["eq12", "4.4e-16"], ["bptt", "3.5e-09"]],
    ...                        align=["left", "right"]):
    ...     print(line)
    check    worst
    -----  -------
    eq12   4.4e-16
    bptt   3.5e-09
    """
    head, body = _rows(headers, rows)
    aligns = _aligns(align, len(head))
    cells = [[_plain(c) for c in r] for r in body]
    widths = [max([display_width(h)] + [display_width(r[j]) for r in cells]) for j, h in enumerate(head)]
    if width is not None:
        k = len(head) - 1 if shrink is None else shrink
        if not -len(head) <= k < len(head):
            raise ValueError(f"`shrink` must index a column (0 to {len(head) - 1}), got {shrink}")
        k %= len(head)
        total = sum(widths) + gap * (len(head) - 1)
        if total > width:
            widths[k] = max(display_width(head[k]), widths[k] - (total - width))
            cells = [[shorten(c, widths[k]) if j == k else c for j, c in enumerate(r)] for r in cells]
    sep = " " * gap

    def line(r: Sequence[str]) -> str:
        return sep.join(pad(c, widths[j], aligns[j]) for j, c in enumerate(r)).rstrip()

    return [line(head), sep.join("-" * w for w in widths), *(line(r) for r in cells)]


def _split_row(line: str) -> list[str]:
    """The cells of one Markdown table row, split at unescaped ``|``."""
    s = line.strip()
    if s.startswith("|"):
        s = s[1:]
    cells, cur, i = [], [], 0
    while i < len(s):
        ch = s[i]
        if ch == "\\" and i + 1 < len(s):
            cur.append(s[i:i + 2])
            i += 2
            continue
        if ch == "|":
            cells.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    if "".join(cur).strip() or not line.rstrip().endswith("|"):
        cells.append("".join(cur))
    return [_UNESCAPE.sub(r"\1", c.strip()) for c in cells]


def markdown_to_text(markdown: str, *, width: int | None = None) -> str:
    """``markdown`` with each of its tables rendered by :func:`text_table`.

    A table is a header row followed by a delimiter row (``|---|---:|``); its
    cells are unescaped (``\\|`` is ``|``) and aligned as the delimiter says.
    Every other line is kept as it is.

    Parameters
    ----------
    markdown : str
    width : int, optional
        Passed to :func:`text_table` (the last column is shortened to fit).

    Examples
    --------
    >>> from rnntheory._tables import markdown_to_text
    >>> print(markdown_to_text("Spectra:\\n\\n| init | ρ |\\n|---|---:|\\n| smart \\\\| tanh | 0.95 |"))
    Spectra:
    <BLANKLINE>
    init             ρ
    ------------  ----
    smart | tanh  0.95
    """
    if not isinstance(markdown, str):
        raise TypeError(f"`markdown` must be a str, got {type(markdown).__name__}")
    lines = markdown.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if ("|" in line and i + 1 < len(lines) and "-" in lines[i + 1]
                and _DELIM_ROW.match(lines[i + 1]) and "|" in lines[i + 1]):
            head = _split_row(line)
            rules = [c.strip() for c in _split_row(lines[i + 1])]
            if len(rules) == len(head):
                aligns = ["center" if r.startswith(":") and r.endswith(":") else
                          "right" if r.endswith(":") else "left" for r in rules]
                body = []
                j = i + 2
                while j < len(lines) and lines[j].strip().startswith("|"):
                    cells = _split_row(lines[j])
                    body.append((cells + [""] * len(head))[:len(head)])
                    j += 1
                out += text_table(head, body, align=aligns, width=width)
                i = j
                continue
        out.append(line)
        i += 1
    return "\n".join(out)
