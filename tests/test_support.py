"""The cell × remedy matrix: the registry tells the truth and the page is its rendering.

Every supported pair names guarantee tests that exist and trains for two steps
the way the library trains it today; every unsupported pair is refused with a
``ValueError``/``TypeError`` whose message holds the registry's reason; the
committed page ``docs/guides/remedy-matrix.md`` is the registry's rendering.
The pairs come from the registry, so a pair flipped to supported is covered
without editing this file.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import math
import re
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from rnntheory import GRU, LSTM, ElmanRNN, StackedRNN
from rnntheory.cells.generator import GeneratorRNN
from rnntheory.esn import fit, random_esn
from rnntheory.remedies import (
    GradientClipping,
    Omega,
    Penalty,
    SpectralProjection,
    TruncatedBPTT,
    l1_penalty,
    l2_penalty,
    spectral_penalty,
    support,
)
from rnntheory.tasks import make_task
from rnntheory.training import SGD, HessianFree, train

ROOT = Path(__file__).resolve().parents[1]
MATRIX = support.matrix()
SUPPORTED = [k for k, e in MATRIX.items() if e.supported]
UNSUPPORTED = [k for k, e in MATRIX.items() if not e.supported]

# Pairs that have no model to try (no generator of that form, no ESN or leaky
# unit of a gated cell by definition): checked through support.require only.
_NOTHING_TO_TRY = {support.GEN_SINGLE, support.GEN_STANDARD, support.ESN_ONLY, support.ESN_FORM, support.LEAKY_ONLY}


def _ids(pairs):
    return [f"{c}-{r}" for c, r in pairs]


def _task():
    return make_task("addition", 10)  # mse, n_in = 2, n_out = 1


_KW = dict(steps=2, batch_size=3, seed=0, eval_every=2, eval_size=3)


@cache
def _plain_loss(cell: str) -> float:
    """The loss of the first step of plain training of the row's model."""
    task = _task()
    return float(train(support.model_for(cell, task.n_in, 4, task.n_out), task, **_KW).loss[0])


def _recurrent(model):
    """The recurrent matrices of a model (one per layer of a stack)."""
    return [v for k, v in model.params().items() if k.split("_l")[0] in ("W_hh", "weight_hh")]


def _defined_tests(path: Path) -> set[str]:
    """Names of the test functions of a file (``name`` and ``Class::name``), read with ast."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test"):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            for sub in node.body:
                if isinstance(sub, ast.FunctionDef | ast.AsyncFunctionDef) and sub.name.startswith("test"):
                    names.add(f"{node.name}::{sub.name}")
    return names


# ---------------------------------------------------------------- the registry
def test_registry_has_every_pair_once():
    assert set(MATRIX) == {(c, r) for c in support.CELLS for r in support.REMEDIES}
    assert set(support._TABLE) == set(MATRIX)
    assert set(support.ROUTES) == set(support.REMEDIES)
    for (c, r), e in MATRIX.items():
        assert (e.cell, e.remedy) == (c, r)
        assert e.supported == (e.reason is None)
        assert e.supported or (e.tests == () and e.cost is None)


def test_every_supported_pair_names_guarantee_tests_that_exist():
    """Each supported pair names ≥ 1 test, and each named test is defined in its file."""
    pattern = re.compile(r"^tests/test_\w+\.py::(Test\w+::)?test\w*$")
    for (c, r) in SUPPORTED:
        tests = MATRIX[(c, r)].tests
        assert tests, f"{c} × {r} is supported but names no guarantee test"
        for node_id in tests:
            assert pattern.match(node_id), node_id
            file, _, name = node_id.partition("::")
            path = ROOT / file
            assert path.is_file(), f"{c} × {r}: {file} does not exist"
            assert name in _defined_tests(path), f"{c} × {r}: {node_id} is not defined"


def test_defined_tests_reads_functions_and_classes(tmp_path):
    f = tmp_path / "test_x.py"
    f.write_text("def test_a():\n    pass\n\nclass TestB:\n    def test_c(self):\n        pass\n\ndef helper():\n    pass\n")
    assert _defined_tests(f) == {"test_a", "TestB::test_c"}


# ---------------------------------------------------------------- supported pairs train
@pytest.mark.parametrize(("cell", "remedy"), SUPPORTED, ids=_ids(SUPPORTED))
def test_supported_pair_trains_two_steps(cell, remedy):
    """Two steps the way the library trains the pair, and the remedy's effect on them."""
    route = support.ROUTES[remedy]
    if route == "generator":
        _train_generator(cell, remedy)
    elif route == "esn":
        _fit_esn(cell)
    elif route == "hessian_free":
        _train_hessian_free(cell)
    else:
        _train_first_order(cell, remedy)


def _train_first_order(cell, remedy):
    task = _task()
    model = support.model_for(cell, task.n_in, 4, task.n_out, remedy=remedy)
    assert support.cell_of(model) == (cell if remedy != "leaky_units" or cell.startswith("stacked") else
                                      "elman-leaky")
    records = support.records_for(remedy)
    for r in records:
        assert support.remedy_of(r) == remedy
    h = train(model, task, remedies=records, **_KW)
    assert h.steps == 2 and h.stopped is None and not h.count("fallback")
    assert np.all(np.isfinite(h.loss))
    before, after = model.params(), h.model.params()
    assert any(not np.array_equal(before[k], after[k]) for k in before), "the parameters did not move"
    plain = _plain_loss(cell)
    if remedy in ("train", "clip_norm", "clip_value", "tbptt_window", "tbptt_chunked", "tbptt_k1_k2",
                  "spectral_projection"):
        # the remedy acts on the gradient or after the update: the first loss is the plain one
        assert h.loss[0] == plain
    if remedy == "clip_norm":
        assert np.all(h.grad_norm_clipped <= 1.0 * (1 + 1e-12))
    if remedy in ("l1", "l2", "spectral_penalty"):
        value = {"l1": lambda: l1_penalty(model, 1e-3), "l2": lambda: l2_penalty(model, 1e-3),
                 "spectral_penalty": lambda: spectral_penalty(model, 1e-3, c=1.0)}[remedy]()[0]
        assert h.loss[0] == pytest.approx(plain + value, rel=1e-12, abs=1e-15)
    if remedy == "spectral_projection":
        assert np.all(h.gamma_w <= 1.0 * (1 + 1e-12))
    if remedy == "omega":
        assert np.all(np.isfinite(h.omega)) and np.all(h.omega >= 0)
        assert h.loss[0] == pytest.approx(plain + h.omega[0], rel=1e-12)
    if remedy == "orthogonal_init":
        for W in _recurrent(model):  # each layer
            n = W.shape[1]
            for j in range(W.shape[0] // n):  # each gate block (one block for Elman)
                block = W[j * n:(j + 1) * n]
                np.testing.assert_allclose(block.T @ block, np.eye(n), atol=1e-13)
    if remedy == "leaky_units":
        for layer in getattr(model, "layers", (model,)):
            np.testing.assert_array_equal(np.broadcast_to(layer.alpha, (4,)), np.full(4, 0.5))


def _train_hessian_free(cell):
    task = _task()
    model = support.model_for(cell, task.n_in, 4, task.n_out, remedy="hessian_free")
    h = train(model, task, optimizer=HessianFree(max_cg=5), **_KW)
    assert h.steps == 2 and h.count("hf") == 2 and h.stopped is None
    assert np.all(np.isfinite(h.loss))
    assert h.loss[0] == _plain_loss(cell)
    for _, _, detail in (e for e in h.events if e[1] == "hf"):  # an HF step never raises the batch loss
        before, after = (float(v) for v in re.search(r"loss=(\S+)->(\S+)", detail).groups())
        assert after <= before


def _train_generator(cell, remedy):
    """``train`` with the column's Feedback record: the first step's loss is the
    generator's own summed loss in that mode on ``train``'s first batch over B
    (scheduled: the coins are the first draws of the record's seed)."""
    task = _task()
    model = support.model_for(cell, task.n_in, 4, task.n_out, remedy=remedy)
    assert isinstance(model, GeneratorRNN)
    (fb,) = support.records_for(remedy)
    assert support.remedy_of(fb) == remedy
    h = train(model, task, remedies=(fb,), **_KW)
    assert h.steps == 2 and h.stopped is None and np.all(np.isfinite(h.loss))
    B = _KW["batch_size"]
    batch = task.sample(B, np.random.default_rng(_KW.get("seed", 0)))
    kw = {"p": fb.p, "seed": np.random.default_rng(fb.seed)} if fb.mode == "scheduled" else {}
    E, _ = model.value_and_grad(batch.x, batch.y, mode=fb.mode, loss=task.loss, mask=batch.mask, **kw)
    assert h.loss[0] == pytest.approx(E / B, rel=1e-12)
    before, after = model.params(), h.model.params()
    assert any(not np.array_equal(before[k], after[k]) for k in before), "the parameters did not move"


def _fit_esn(cell):
    """A reservoir (leaky for the leaky row) fitted to predict a sine one step ahead."""
    esn = random_esn(30, n_in=1, n_out=1, spectral_radius=0.9, leak_rate=0.5 if cell == "elman-leaky" else 1.0,
                     seed=0)
    t = np.arange(300) * 0.2
    res = fit(esn, np.sin(t)[:, None], np.sin(t + 0.2)[:, None], washout=50, ridge=1e-8)
    assert res.esn.W_out is not None and res.train_nrmse < 1e-2


# ---------------------------------------------------------------- unsupported pairs are refused
@pytest.mark.parametrize(("cell", "remedy"), UNSUPPORTED, ids=_ids(UNSUPPORTED))
def test_unsupported_pair_is_refused_with_its_reason(cell, remedy):
    """support.require refuses the pair with its reason, and trying it (where a model
    exists to try) raises ValueError/TypeError with that same sentence."""
    e = MATRIX[(cell, remedy)]
    task = _task()
    model = support.model_for(cell, task.n_in, 4, task.n_out,
                              remedy="train" if support.ROUTES[remedy] == "generator" else remedy)
    with pytest.raises(ValueError, match=r"`remedies`: .* `model` .*: " + re.escape(e.reason)):
        support.require(model, remedy)
    if e.reason in _NOTHING_TO_TRY:
        return
    try:
        if support.ROUTES[remedy] == "hessian_free":
            train(model, task, optimizer=HessianFree(max_cg=3), **_KW)
        else:
            train(model, task, remedies=support.records_for(remedy), **_KW)
    except (ValueError, TypeError) as err:
        assert e.reason in str(err), f"{cell} × {remedy} is refused with another message: {err}"
    else:
        pytest.fail(
            f"{cell} × {remedy} is marked unsupported but trains: flip it to supported in "
            "rnntheory/remedies/support.py (_TABLE) with the tests that check its guarantee"
        )


# ---------------------------------------------------------------- the API
def test_cell_of_maps_every_model_to_its_row():
    cases = [
        (ElmanRNN.init(2, 3, 1), "elman"),
        (ElmanRNN.init(2, 3, 1, form="pascanu"), "elman-pascanu"),
        (ElmanRNN.init(2, 3, 1, form="pascanu", alpha=0.2), "elman-leaky"),
        (ElmanRNN.init(2, 3, 1, alpha=np.array([0.0, 0.5, 1.0])), "elman-leaky"),
        (LSTM.init(2, 3, 1), "lstm"),
        (GRU.init(2, 3, None), "gru"),
        (StackedRNN.init(2, 3, 1, cell="elman", n_layers=3), "stacked-elman"),
        (StackedRNN.init(2, 3, 1, cell="lstm", n_layers=1), "stacked-lstm"),
        (StackedRNN.init(2, 3, 1, cell="gru"), "stacked-gru"),
        (GeneratorRNN.init(2, 3, 2), "elman"),
        (GeneratorRNN.init(2, 3, 2, cell="lstm"), "lstm"),
        (GeneratorRNN.init(2, 3, 2, cell="gru"), "gru"),
        (GeneratorRNN.init(2, 3, 2, cell="gru", n_layers=2), "stacked-gru"),
        (GeneratorRNN.init(2, 3, 2, n_layers=3), "stacked-elman"),
    ]
    for model, row in cases:
        assert support.cell_of(model) == row
    for c in support.CELLS:
        assert support.cell_of(support.model_for(c, 2, 3, 1)) == c


@pytest.mark.parametrize("bad", [ElmanRNN, np.zeros((3, 3)), None, "elman"])
def test_cell_of_refuses_what_is_not_a_model(bad):
    with pytest.raises(TypeError, match=r"`model` must be an ElmanRNN, LSTM, GRU, StackedRNN or GeneratorRNN"):
        support.cell_of(bad)


def test_remedy_of_maps_records_to_columns():
    assert support.remedy_of(GradientClipping(2.0)) == "clip_norm"
    assert support.remedy_of(GradientClipping(2.0, kind="value")) == "clip_value"
    assert support.remedy_of(TruncatedBPTT(7)) == "tbptt_window"
    assert support.remedy_of(TruncatedBPTT(7, k1=7)) == "tbptt_chunked"
    assert support.remedy_of(TruncatedBPTT(7, k1=2)) == "tbptt_k1_k2"
    assert support.remedy_of(Penalty("l1", 0.1)) == "l1"
    assert support.remedy_of(Penalty("l2", 0.1)) == "l2"
    assert support.remedy_of(Penalty("spectral", 0.1)) == "spectral_penalty"
    assert support.remedy_of(SpectralProjection(1.0)) == "spectral_projection"
    assert support.remedy_of(Omega(1.0)) == "omega"
    for r in support.REMEDIES:
        assert support.remedy_of(r) == r
    for r in support.REMEDIES:
        if support.ROUTES[r] == "train":
            assert all(support.remedy_of(rec) == r for rec in support.records_for(r))


@pytest.mark.parametrize(("call", "exc", "match"), [
    (lambda: support.remedy_of(SGD(0.1)), TypeError, r"`remedy` must be a remedy record"),
    (lambda: support.remedy_of("gradient clipping"), ValueError, r"`remedy`"),
    (lambda: support.remedy_of(None), TypeError, r"`remedy` must be"),
    (lambda: support.entry("lstm", "l2", costs=3), TypeError, r"`costs` must be a path"),
    (lambda: support.entry("rnn", "omega"), ValueError, r"`cell`"),
    (lambda: support.entry("lstm", "dropout"), ValueError, r"`remedy`"),
    (lambda: support.model_for("tree", 2, 3, 1), ValueError, r"`cell`"),
    (lambda: support.model_for("elman-pascanu", 2, 3, 1, remedy="free_running"), ValueError,
     r"`cell` 'elman-pascanu' has no generator"),
    (lambda: support.model_for("gru", 2, 3, None, remedy="teacher_forcing"), ValueError,
     r"`n_out` must be an integer for a generator"),
    (lambda: support.records_for("hessian_free"), ValueError, r"`remedy` 'hessian_free' is trained by the route"),
    (lambda: support.require(StackedRNN.init(2, 3, 1, cell="lstm"), "leaky_units"), ValueError,
     r"`remedies`: leaky_units is not supported for `model` \(stacked-lstm\): Elman-specific"),
    (lambda: support.require(StackedRNN.init(2, 3, 1, cell="gru"), "teacher_forcing"), ValueError,
     r"teacher_forcing is not supported for `model` \(stacked-gru\): generators"),
    (lambda: support.require(np.eye(2), "omega"), TypeError, r"`model` must be"),
])
def test_bad_inputs_name_the_argument(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_require_returns_the_entry_of_a_supported_pair():
    e = support.require(ElmanRNN.init(2, 3, 1, form="pascanu"), Omega(2.0))
    # the matrix's entry but for the cost, which require never reads
    assert e == dataclasses.replace(MATRIX[("elman-pascanu", "omega")], cost=None) and e.supported
    assert support.require(LSTM.init(2, 3, 1), "clip_value").cell == "lstm"
    assert support.require(StackedRNN.init(2, 3, 1, cell="gru"), TruncatedBPTT(4)).remedy == "tbptt_window"


# ---------------------------------------------------------------- costs
def test_costs_are_read_from_the_results_file(tmp_path):
    f = tmp_path / "r.json"
    f.write_text(json.dumps({"ratios": {"lstm|clip_norm": 1.25, "elman|omega": float("nan"),
                                        "gru|l1": float("inf"), "gru|l2": "fast", "stacked-lstm|leaky_units": 2.0}}))
    m = support.matrix(costs=f)
    assert m[("lstm", "clip_norm")].cost == 1.25
    assert m[("elman", "omega")].cost is None  # non-finite: not a cost
    assert m[("gru", "l1")].cost is None and m[("gru", "l2")].cost is None
    assert m[("stacked-lstm", "leaky_units")].cost is None  # unsupported: never a cost
    assert support.entry("lstm", "clip_norm", costs=f).cost == 1.25
    assert support.matrix(costs=tmp_path / "absent.json")[("lstm", "clip_norm")].cost is None
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match=r"`costs` file .* is not readable JSON"):
        support.matrix(costs=bad)
    bad.write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"`costs` file .* must hold a JSON object, got list"):
        support.matrix(costs=bad)


def test_every_supported_pair_has_a_measured_cost():
    """The committed benchmark results cover every supported pair stepped by an
    optimizer (an ESN is fitted in one ridge regression: no step to time)."""
    data = json.loads(support.costs_path().read_text(encoding="utf-8"))
    for (c, r) in SUPPORTED:
        if support.ROUTES[r] == "esn":
            continue
        cost = MATRIX[(c, r)].cost
        assert cost is not None and math.isfinite(cost) and cost > 0, f"{c} × {r} has no measured cost"
    assert MATRIX[("elman", "train")].cost == 1.0
    assert {"date", "cores", "sizes"} <= set(data["run"])


# ---------------------------------------------------------------- the page
_SPLIT = re.compile(r"(?<!\\)\|")


def _table_rows(text: str) -> list[list[str]]:
    return [_SPLIT.split(line.strip())[1:-1] for line in text.splitlines() if line.startswith("|")]


def test_committed_page_is_the_rendering():
    """docs/guides/remedy-matrix.md is generated: regenerate it with
    `python -m rnntheory.remedies.support` when this fails."""
    page = ROOT / "docs" / "guides" / "remedy-matrix.md"
    assert support.page_path() == page
    assert page.read_text(encoding="utf-8") == support.render_markdown()
    assert support.main(["--check"]) == 0


def test_page_table_rows_have_the_header_column_count(monkeypatch):
    rows = _table_rows(support.render_markdown())
    assert len(rows) == 2 + len(support.REMEDIES)
    assert all(len(r) == len(rows[0]) == 1 + len(support.CELLS) for r in rows)
    # a title holding a `|` is escaped, so its row (and the header) keep their columns
    monkeypatch.setitem(support.REMEDY_TITLES, "omega", "Ω | its gradient")
    monkeypatch.setitem(support.CELL_TITLES, "gru", "GRU | cell")
    text = support.render_markdown()
    assert "Ω \\| its gradient" in text and "GRU \\| cell" in text
    rows = _table_rows(text)
    assert all(len(r) == 1 + len(support.CELLS) for r in rows)


def test_page_shows_each_entry():
    rows = {r[0].strip(): [x.strip() for x in r[1:]] for r in _table_rows(support.render_markdown())[2:]}
    for r in support.REMEDIES:
        row = rows[support.REMEDY_TITLES[r]]
        for c, text in zip(support.CELLS, row, strict=True):
            e = MATRIX[(c, r)]
            assert text.startswith("✓" if e.supported else "✗")
            if e.supported and e.cost is not None:
                assert f"{e.cost:.2f}×" in text


def test_page_is_in_the_nav_and_linked_from_the_remedies_guide():
    assert "guides/remedy-matrix.md" in (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    assert "remedy-matrix.md" in (ROOT / "docs" / "guides" / "remedies.md").read_text(encoding="utf-8")


def test_train_never_reads_the_benchmark_results(monkeypatch, tmp_path):
    """require (and so train) decides from the table alone: an unreadable costs
    file (one being rewritten, or absent from an installed package) cannot stop
    a training run. The page and entry() still refuse it by name."""
    broken = tmp_path / "remedy_matrix.json"
    broken.write_text("", encoding="utf-8")  # a file caught mid-write
    monkeypatch.setattr(support, "costs_path", lambda: broken)
    task = _task()
    model = support.model_for("lstm", task.n_in, 4, task.n_out)
    assert support.require(model, "clip_norm").cost is None
    h = train(model, task, remedies=support.records_for("clip_norm"), **_KW)
    assert h.steps == 2
    with pytest.raises(ValueError, match=r"`costs` file .* is not readable JSON"):
        support.entry("lstm", "clip_norm")
