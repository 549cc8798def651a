"""from_state_dict: the same model from a module, a .pt, a .safetensors and a .npz file,
clear refusals of broken files, and ``rnntheory bounds`` on checkpoints."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnntheory import GRU, LSTM, BidirectionalRNN, ElmanRNN, StackedRNN, from_state_dict
from rnntheory.checkpoints import is_state_dict, read_state_dict
from rnntheory.cli import main

# --------------------------------------------------------------------------- an independent writer

_ST = {np.dtype("<f8"): "F64", np.dtype("<f4"): "F32", np.dtype("<f2"): "F16"}


def write_safetensors(path: Path, tensors: dict, *, dtypes: dict | None = None, metadata: dict | None = None) -> Path:
    """A .safetensors file written by hand from the format's definition: 8-byte
    little-endian header length, JSON header, then the tensors' bytes in order.
    ``dtypes`` overrides the label of a key (its bytes are written as given)."""
    header: dict = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    blobs, offset = [], 0
    for name, arr in tensors.items():
        if isinstance(arr, tuple):  # ("BF16", raw uint16 array)
            label, arr = arr
        else:
            arr = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<"))
            label = _ST[arr.dtype]
        if dtypes and name in dtypes:
            label = dtypes[name]
        data = np.ascontiguousarray(arr).tobytes()
        header[name] = {"dtype": label, "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    return path


def _header(path: Path) -> tuple[int, dict]:
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    return n, json.loads(raw[8:8 + n])


def _rewrite_header(path: Path, header: dict) -> None:
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    h = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(h)) + h + raw[8 + n:])


def _gru_sd(n=3, n_in=2, seed=0, prefix="rnn.", layers=1):
    rng = np.random.default_rng(seed)
    sd = {}
    for k in range(layers):
        sd[f"{prefix}weight_ih_l{k}"] = rng.normal(size=(3 * n, n_in if k == 0 else n))
        sd[f"{prefix}weight_hh_l{k}"] = rng.normal(size=(3 * n, n))
        sd[f"{prefix}bias_ih_l{k}"] = rng.normal(size=3 * n)
        sd[f"{prefix}bias_hh_l{k}"] = rng.normal(size=3 * n)
    return sd


# --------------------------------------------------------------------------- torch-free


def test_a_mapping_of_numpy_arrays_loads_without_torch():
    """A GRU state dict of NumPy arrays: the model's parameters are the arrays, and
    its forward pass is the GRU recurrence written out here in NumPy."""
    sd = _gru_sd(n=3, n_in=2, seed=1)
    m = from_state_dict(sd)
    p = m.params()
    for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        np.testing.assert_array_equal(p[k], sd[f"rnn.{k}_l0"])
    x = np.random.default_rng(2).normal(size=(4, 2))
    h = np.zeros(3)
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    W, U, b, c = sd["rnn.weight_ih_l0"], sd["rnn.weight_hh_l0"], sd["rnn.bias_ih_l0"], sd["rnn.bias_hh_l0"]
    for t in range(4):
        gi, gh = W @ x[t] + b, U @ h + c
        r, z = sig(gi[:3] + gh[:3]), sig(gi[3:6] + gh[3:6])
        nn = np.tanh(gi[6:] + r * gh[6:])
        h = (1 - z) * nn + z * h
    np.testing.assert_allclose(m.forward(x).h[-1], h, rtol=1e-13, atol=1e-15)


def test_elman_bias_is_the_sum_and_nonlinearity_is_passed():
    """An Elman state dict: b_h = bias_ih + bias_hh, and nonlinearity='relu' makes a
    ReLU cell (h_1 = max(0, W_ih x + b) for h_0 = 0, computed here)."""
    rng = np.random.default_rng(3)
    sd = {"weight_ih_l0": rng.normal(size=(4, 2)), "weight_hh_l0": rng.normal(size=(4, 4)),
          "bias_ih_l0": rng.normal(size=4), "bias_hh_l0": rng.normal(size=4)}
    m = from_state_dict(sd, nonlinearity="relu")
    assert isinstance(m, ElmanRNN) and m.activation.name == "relu"
    np.testing.assert_array_equal(m.b_h, sd["bias_ih_l0"] + sd["bias_hh_l0"])
    x = rng.normal(size=(1, 2))
    np.testing.assert_allclose(m.forward(x).h[1], np.maximum(0, sd["weight_ih_l0"] @ x[0] + m.b_h), rtol=1e-15)


def test_nested_lists_are_arrays():
    """A mapping of nested lists loads like the arrays they spell."""
    sd = _gru_sd(seed=16)
    m = from_state_dict({k: v.tolist() for k, v in sd.items()})
    np.testing.assert_array_equal(m.weight_hh, sd["rnn.weight_hh_l0"])


def test_no_bias_keys_load_as_zero_biases():
    """A bias=False module has no bias keys: the biases are zero."""
    sd = {k: v for k, v in _gru_sd().items() if "bias" not in k}
    m = from_state_dict(sd)
    assert not m.bias_ih.any() and not m.bias_hh.any()


def test_readout_auto_string_and_none():
    """'auto' attaches the one Linear of the right width; a prefix picks it; None leaves it out;
    two fitting Linears under 'auto' are an error listing both."""
    sd = _gru_sd()
    rng = np.random.default_rng(4)
    sd["fc.weight"], sd["fc.bias"] = rng.normal(size=(2, 3)), rng.normal(size=2)
    sd["emb.weight"] = rng.normal(size=(7, 2))  # width 2: not a readout of 3 units
    m = from_state_dict(sd)
    np.testing.assert_array_equal(m.W_yh, sd["fc.weight"])
    np.testing.assert_array_equal(m.b_y, sd["fc.bias"])
    assert from_state_dict(sd, readout=None).W_yh is None
    assert from_state_dict(sd, readout="fc").W_yh.shape == (2, 3)
    sd["head.weight"] = rng.normal(size=(5, 3))
    with pytest.raises(ValueError, match=r"several linear layers .*\['fc\.weight', 'head\.weight'\]"):
        from_state_dict(sd)
    m = from_state_dict(sd, readout="head.")
    np.testing.assert_array_equal(m.W_yh, sd["head.weight"])
    assert not m.b_y.any()
    with pytest.raises(ValueError, match=r"`readout` 'emb\.' names no linear readout .* shape \(7, 2\)"):
        from_state_dict(sd, readout="emb.")


def test_nested_checkpoint_and_prefix():
    """A checkpoint {"model": state_dict, "epoch": 3} is searched one level down; with
    two modules, prefix picks one (with or without the trailing dot)."""
    a, b = _gru_sd(prefix="enc.rnn.", seed=5), _gru_sd(prefix="dec.rnn.", seed=6, n_in=3)
    ckpt = {"model": {**a, **b}, "epoch": 3, "optimizer": {"lr": 0.1}}
    with pytest.raises(ValueError, match=r"several recurrent modules, with prefixes \['dec\.rnn\.', 'enc\.rnn\.'\]"):
        from_state_dict(ckpt)
    m = from_state_dict(ckpt, prefix="enc.rnn")
    np.testing.assert_array_equal(m.weight_hh, a["enc.rnn.weight_hh_l0"])
    assert from_state_dict(ckpt, prefix="dec.rnn.").n_in == 3
    with pytest.raises(ValueError, match=r"`prefix` 'x\.' names no recurrent module"):
        from_state_dict(ckpt, prefix="x.")


def test_npz_round_trip_is_exact(tmp_path):
    """numpy.savez of a state dict gives back the same parameters bit for bit."""
    sd = _gru_sd(seed=7)
    np.savez(tmp_path / "m.npz", **sd)
    m = from_state_dict(tmp_path / "m.npz")
    for k, v in m.params().items():
        np.testing.assert_array_equal(v, sd[f"rnn.{k}_l0"])


@pytest.mark.parametrize("value", [1e300, -1e-300, 5e-324, 0.0])
def test_safetensors_float64_extremes_read_exactly(tmp_path, value):
    """F64 tensors are read bit for bit, 1e±300 and the smallest subnormal included."""
    sd = _gru_sd(seed=8)
    sd["rnn.bias_hh_l0"] = np.full(9, value)
    m = from_state_dict(write_safetensors(tmp_path / "m.safetensors", sd, metadata={"format": "pt"}))
    assert np.all(m.bias_hh == value)
    np.testing.assert_array_equal(m.weight_ih, sd["rnn.weight_ih_l0"])


def test_half_precision_is_converted_exactly_to_float32(tmp_path):
    """F16 and BF16 tensors become float32 without rounding: values exactly representable in
    each format (products of small integers and powers of two) come back equal, and the
    model is float32."""
    rng = np.random.default_rng(9)
    vals = lambda shape: (rng.integers(-8, 9, size=shape) * 2.0 ** rng.integers(-6, 3, size=shape)).astype(np.float32)  # noqa: E731
    sd32 = {k: vals(v.shape) for k, v in _gru_sd().items()}
    f16 = {k: v.astype(np.float16) for k, v in sd32.items()}
    m = from_state_dict(write_safetensors(tmp_path / "h.safetensors", f16))
    assert m.dtype == np.float32
    np.testing.assert_array_equal(m.weight_hh, sd32["rnn.weight_hh_l0"])
    bf = {k: ("BF16", (v.view(np.uint32) >> 16).astype("<u2")) for k, v in sd32.items()}
    m = from_state_dict(write_safetensors(tmp_path / "b.safetensors", bf))
    assert m.dtype == np.float32
    for k, v in m.params().items():
        np.testing.assert_array_equal(v, sd32[f"rnn.{k}_l0"])


def test_only_the_needed_tensors_are_read(tmp_path):
    """A tensor of an unread dtype (I64, as a BatchNorm counter) elsewhere in the file does not
    stop the load; the same dtype on a recurrent weight is refused naming the key."""
    sd = _gru_sd(seed=10)
    sd["bn.num_batches_tracked"] = np.array([3.0])
    p = write_safetensors(tmp_path / "m.safetensors", sd, dtypes={"bn.num_batches_tracked": "I64"})
    assert from_state_dict(p).n_hidden == 3
    p = write_safetensors(tmp_path / "bad.safetensors", sd, dtypes={"rnn.weight_hh_l0": "I64"})
    with pytest.raises(TypeError, match=r"tensor 'rnn\.weight_hh_l0' has dtype I64"):
        from_state_dict(p)


def _valid(tmp_path) -> Path:
    return write_safetensors(tmp_path / "m.safetensors", _gru_sd(seed=11))


def _corrupt_header(tmp_path):
    p = _valid(tmp_path)
    raw = bytearray(p.read_bytes())
    raw[9] = ord("#")
    p.write_bytes(bytes(raw))
    return p


def _truncated(tmp_path):
    p = _valid(tmp_path)
    p.write_bytes(p.read_bytes()[:-5])
    return p


def _huge_header_length(tmp_path):
    p = tmp_path / "m.safetensors"
    p.write_bytes(struct.pack("<Q", 2**63) + b"{}")
    return p


def _short_file(tmp_path):
    p = tmp_path / "m.safetensors"
    p.write_bytes(b"\x05\x00")
    return p


def _offsets(tmp_path, offsets):
    p = _valid(tmp_path)
    _, h = _header(p)
    h["rnn.weight_hh_l0"]["data_offsets"] = offsets
    _rewrite_header(p, h)
    return p


def _header_edit(tmp_path, **edit):
    p = _valid(tmp_path)
    _, h = _header(p)
    h["rnn.weight_hh_l0"].update(edit)
    _rewrite_header(p, h)
    return p


def _not_object(tmp_path):
    p = tmp_path / "m.safetensors"
    h = b"[1, 2]"
    p.write_bytes(struct.pack("<Q", len(h)) + h)
    return p


BAD_FILES = [
    (_corrupt_header, r"header is not UTF-8 JSON"),
    (_truncated, r"data_offsets \[\d+, \d+\] outside the \d+ data bytes"),
    (_huge_header_length, r"header length 9223372036854775808 does not fit the 2 bytes after it"),
    (_short_file, r"2 bytes, shorter than the 8-byte header length"),
    (lambda t: _offsets(t, [0, 10**12]), r"data_offsets \[0, 1000000000000\] outside"),
    (lambda t: _offsets(t, [-8, 64]), r"data_offsets \[-8, 64\] outside"),
    (lambda t: _offsets(t, [0, 8]), r"spans 8 bytes, but dtype F64 and shape \[9, 3\] need 216"),
    (lambda t: _offsets(t, "0-8"), r"data_offsets '0-8', not \[begin, end\]"),
    (lambda t: _header_edit(t, shape=[9, -3]), r"shape \[9, -3\], not a list of sizes"),
    (lambda t: _header_edit(t, dtype=7), r"dtype 7, not a string"),
    (_not_object, r"header is a JSON list, not an object"),
]


@pytest.mark.parametrize(("make", "match"), BAD_FILES)
def test_broken_safetensors_files_are_value_errors_naming_the_file(tmp_path, make, match):
    """Corrupt headers, truncated data, offsets outside the file or not matching the shape:
    a ValueError naming the file, never a json/struct error or a read past the end."""
    p = make(tmp_path)
    with pytest.raises(ValueError, match=match) as info:
        from_state_dict(p)
    assert repr(str(p)) in str(info.value)


def _sd_without(key):
    sd = _gru_sd(layers=2)
    del sd[key]
    return sd


BAD_DICTS = [
    ({"W_hh": np.eye(2), "emb.weight": np.eye(2)},
     r"holds no recurrent module: looked for keys ending in weight_ih_l<k>, weight_hh_l<k> .* its keys are \['W_hh', 'emb\.weight'\]"),
    (_sd_without("rnn.weight_ih_l1"), r"has no rnn\.weight_ih_l1: each of its 2 layer\(s\)"),
    (_sd_without("rnn.bias_hh_l0"), r"has no rnn\.bias_hh_l0"),
    ({**_gru_sd(), "rnn.weight_hh_l0_reverse": np.zeros((9, 3))}, r"has no rnn\.weight_ih_l0_reverse"),
    ({**_gru_sd(), "rnn.bias_ih_l0": np.zeros(9, np.float32)}, r"mixes dtypes: .*'rnn\.bias_ih_l0': float32"),
    ({**_gru_sd(), **_gru_sd(prefix="other.")}, r"several recurrent modules, with prefixes \['other\.', 'rnn\.'\]"),
    ({**_gru_sd(), "rnn.weight_hr_l0": np.zeros((2, 3))}, r"projection weights \['rnn\.weight_hr_l0'\] \(PyTorch's proj_size\): the projection changes the recurrence"),
    ({**_gru_sd(), "rnn.weight_hh_l0": np.zeros((5, 3))}, r"'rnn\.weight_hh_l0' has shape \(5, 3\); expected \(n, n\) \(Elman\), \(3n, n\) \(GRU\) or \(4n, n\) \(LSTM\)"),
    ({**_gru_sd(), "rnn.bias_ih_l0": np.zeros(8)}, r"'rnn\.bias_ih_l0' has shape \(8,\); expected \(9,\)"),
    ({**_gru_sd(layers=2), "rnn.weight_ih_l1": np.zeros((9, 2))}, r"'rnn\.weight_ih_l1' has shape \(9, 2\); expected \(9, 3\) \(the previous layer's output\)"),
    ({**_gru_sd(), "rnn.weight_hh_l0": np.full((9, 3), np.nan)}, r"tensor 'rnn\.weight_hh_l0' must be finite, got 27 NaN/inf"),
    ({**_gru_sd(), "rnn.weight_hh_l0": np.ones((9, 3), np.int64)}, r"tensor 'rnn\.weight_hh_l0' has dtype int64"),
    ({"weight_ih_l0": np.zeros((0, 0)), "weight_hh_l0": np.zeros((0, 0))}, r"'weight_hh_l0' has shape \(0, 0\); expected .* with n >= 1"),
    ({"weight_ih_l0": np.zeros((3, 0)), "weight_hh_l0": np.zeros((3, 3))}, r"'weight_ih_l0' has shape \(3, 0\); expected \(3, n_in\) with n_in >= 1"),
    ({"weight_ih_l0": [[1.0], [2.0, 3.0]], "weight_hh_l0": np.zeros((2, 2))}, r"'weight_ih_l0' is not an array"),
    ({"weight_ih_l0": np.zeros((1, 1)), "weight_hh_l0": np.array([[np.inf]])}, r"'weight_hh_l0' must be finite, got 1 NaN/inf entry"),
]


@pytest.mark.parametrize(("sd", "match"), BAD_DICTS)
def test_what_cannot_be_matched_is_explained(sd, match):
    """Every mismatch names the keys involved and what was expected."""
    with pytest.raises((ValueError, TypeError), match=match):
        from_state_dict(sd)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"source": 3}, TypeError, r"`source` must be a mapping .* got int"),
        ({"source": {}, "nonlinearity": "sigmoid"}, ValueError, r"`nonlinearity`"),
        ({"source": _gru_sd(), "readout": 3}, TypeError, r"`readout` must be 'auto', a key prefix or None"),
        ({"source": _gru_sd(), "prefix": 3}, TypeError, r"`prefix` must be a str or None"),
    ],
)
def test_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        from_state_dict(**kwargs)


def test_files_that_are_not_checkpoints(tmp_path):
    """Missing, empty, a folder, a single .npy array, text: each a clear error."""
    with pytest.raises(FileNotFoundError, match=r"`source` file not found"):
        from_state_dict(tmp_path / "missing.pt")
    (tmp_path / "empty.npz").write_bytes(b"")
    with pytest.raises(ValueError, match=r"is an empty file"):
        from_state_dict(tmp_path / "empty.npz")
    with pytest.raises(ValueError, match=r"is a folder"):
        from_state_dict(tmp_path)
    np.save(tmp_path / "a.npy", np.eye(2))
    with pytest.raises(ValueError, match=r"a single \.npy array, not a state dict"):
        from_state_dict(tmp_path / "a.npy")
    (tmp_path / "notes.txt").write_text("weight_hh_l0 = 1\n")
    with pytest.raises(ValueError, match=r"is not a \.npz, \.safetensors or \.pt checkpoint"):
        from_state_dict(tmp_path / "notes.txt")
    np.savez(tmp_path / "obj.npz", w=np.array([None], dtype=object))
    with pytest.raises(ValueError, match=r"holds Python objects, which are never loaded"):
        from_state_dict(tmp_path / "obj.npz")


def test_read_state_dict_and_is_state_dict(tmp_path):
    """read_state_dict returns the stored arrays (non-arrays left out); is_state_dict needs
    a weight_hh with its weight_ih."""
    sd = _gru_sd(seed=12)
    p = write_safetensors(tmp_path / "m.safetensors", sd)
    back = read_state_dict(p)
    assert sorted(back) == sorted(sd)
    for k in sd:
        np.testing.assert_array_equal(back[k], sd[k])
    assert is_state_dict(sd) and not is_state_dict(["rnn.weight_hh_l0", "W_hh"])


# --------------------------------------------------------------------------- the CLI on checkpoints


def test_cli_bounds_on_a_gru_checkpoint_per_gate_block(tmp_path, capsys):
    """``bounds`` on a .safetensors GRU: γ_W of each gate block (r, z, n) and of the whole
    weight_hh, each the largest singular value computed here by NumPy; Pascanu's
    conditions are not claimed for a gated cell."""
    sd = _gru_sd(n=4, seed=13, layers=2)
    p = write_safetensors(tmp_path / "g.safetensors", sd)
    assert main(["bounds", str(p), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["cell"] == "gru" and d["n_layers"] == 2 and d["bidirectional"] is False
    assert [r["label"] for r in d["recurrences"]] == ["layer 1", "layer 2"]
    for k, r in enumerate(d["recurrences"]):
        W = sd[f"rnn.weight_hh_l{k}"]
        assert r["gamma_w"] == pytest.approx(np.linalg.norm(W, 2), rel=1e-12)
        for j, gate in enumerate("rzn"):
            block = r["blocks"][gate]
            assert block["gamma_w"] == pytest.approx(np.linalg.norm(W[4 * j:4 * j + 4], 2), rel=1e-12)
            assert block["spectral_radius"] == pytest.approx(max(abs(np.linalg.eigvals(W[4 * j:4 * j + 4]))), rel=1e-10)
        assert r["vanishing_guaranteed"] is None and r["explosion_possible"] is None
    assert main(["bounds", str(p)]) == 0
    out = capsys.readouterr().out
    assert "layer 2" in out and "Pascanu's conditions apply to Elman cells only" in out


def test_cli_bounds_on_a_bidirectional_elman_npz(tmp_path, capsys):
    """An Elman checkpoint with both directions: per layer and direction, γ_W = σ_max(W_hh)
    and Pascanu's conditions (γ_W γ_h < 1 sufficient for vanishing, > 1 necessary for
    explosion) with the activation given."""
    rng = np.random.default_rng(14)
    sd = {}
    for tag, scale in (("_l0", 0.2), ("_l0_reverse", 3.0)):
        sd[f"weight_ih{tag}"] = rng.normal(size=(3, 2))
        sd[f"weight_hh{tag}"] = scale * np.linalg.qr(rng.normal(size=(3, 3)))[0]
        sd[f"bias_ih{tag}"] = rng.normal(size=3)
        sd[f"bias_hh{tag}"] = rng.normal(size=3)
    np.savez(tmp_path / "e.npz", **sd)
    assert main(["bounds", str(tmp_path / "e.npz"), "--activation", "relu", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    fwd, bwd = d["recurrences"]
    assert (fwd["label"], bwd["label"]) == ("layer 1", "layer 1 (backward)")
    assert fwd["gamma_w"] == pytest.approx(0.2, rel=1e-12) and bwd["gamma_w"] == pytest.approx(3.0, rel=1e-12)
    assert fwd["gamma_h"] == 1.0
    assert fwd["vanishing_guaranteed"] is True and fwd["explosion_possible"] is False
    assert bwd["vanishing_guaranteed"] is False and bwd["explosion_possible"] is True


def test_cli_bounds_checkpoint_errors_are_one_line(tmp_path, capsys):
    """A broken checkpoint: status 2 and one line naming the problem."""
    p = _truncated(tmp_path)
    assert main(["bounds", str(p)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "outside the" in err and err.startswith("rnntheory bounds: error: ")


def test_cli_bounds_old_npz_with_w_hh_is_unchanged(tmp_path, capsys):
    """The plain .npz holding W_hh keeps its output (γ_W at top level)."""
    W = np.diag([0.5, 2.0])
    np.savez(tmp_path / "w.npz", W_hh=W)
    assert main(["bounds", str(tmp_path / "w.npz"), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["gamma_w"] == 2.0 and "recurrences" not in d


def test_cli_bounds_one_square_weight_hh_l0_reads_as_before(tmp_path, capsys):
    """An .npz of a one-layer Elman module (bare weight_hh_l0, square) keeps the W_hh output;
    the same keys under a prefix, or with a second layer, are read as a checkpoint."""
    rng = np.random.default_rng(15)
    W = rng.normal(size=(3, 3))
    sd = {"weight_hh_l0": W, "weight_ih_l0": rng.normal(size=(3, 2))}
    np.savez(tmp_path / "a.npz", **sd)
    assert main(["bounds", str(tmp_path / "a.npz"), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["shape"] == [3, 3] and d["gamma_w"] == pytest.approx(np.linalg.norm(W, 2), rel=1e-12)
    np.savez(tmp_path / "b.npz", **{"rnn." + k: v for k, v in sd.items()})
    assert main(["bounds", str(tmp_path / "b.npz"), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["cell"] == "elman" and d["recurrences"][0]["gamma_w"] == pytest.approx(np.linalg.norm(W, 2), rel=1e-12)


def test_cli_bounds_reads_the_format_not_the_extension(tmp_path, capsys):
    """A W_hh archive named .pt reads as that W_hh; a GRU .safetensors named .npz reads as
    the checkpoint it is; a damaged .pt is an error naming the file (status 2)."""
    W = np.diag([0.25, 3.0])
    np.savez(tmp_path / "w.npz", W_hh=W)
    (tmp_path / "w.pt").write_bytes((tmp_path / "w.npz").read_bytes())
    assert main(["bounds", str(tmp_path / "w.pt"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["gamma_w"] == 3.0
    p = write_safetensors(tmp_path / "g.npz", _gru_sd(seed=17))
    assert main(["bounds", str(p), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["recurrences"][0]["gamma_w"] == pytest.approx(np.linalg.norm(_gru_sd(seed=17)["rnn.weight_hh_l0"], 2), rel=1e-12)
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    assert main(["bounds", str(tmp_path / "bad.pt")]) == 2
    err = capsys.readouterr().err
    assert "bad.pt" in err and err.count("\n") == 1


def test_bidirectional_from_a_mapping(tmp_path):
    """Both directions present: a BidirectionalRNN whose backward cell holds the _reverse keys."""
    sd = _gru_sd()
    sd.update({k + "_reverse": v + 1.0 for k, v in _gru_sd().items()})
    m = from_state_dict(sd)
    assert isinstance(m, BidirectionalRNN)
    np.testing.assert_array_equal(m.layers[0][1].weight_hh, sd["rnn.weight_hh_l0_reverse"])


# --------------------------------------------------------------------------- module -> file -> model (oracle)

MODULES = [
    (kind, layers, bidir)
    for kind in ("rnn_tanh", "rnn_relu", "lstm", "gru")
    for layers in (1, 2)
    for bidir in (False, True)
]


def _module(torch, kind, layers, bidir):
    torch.manual_seed(layers * 10 + bidir)
    if kind.startswith("rnn"):
        return torch.nn.RNN(3, 4, num_layers=layers, bidirectional=bidir, nonlinearity=kind[4:], dtype=torch.float64)
    cls = torch.nn.LSTM if kind == "lstm" else torch.nn.GRU
    return cls(3, 4, num_layers=layers, bidirectional=bidir, dtype=torch.float64)


def _save(torch, route, sd, tmp_path):
    """The state dict written through one route: a .pt (a checkpoint holding it), a
    .safetensors (the independent writer above), a .npz, or the mapping itself."""
    arrays = {k: v.detach().numpy() for k, v in sd.items()}
    if route == "pt":
        p = tmp_path / "m.pt"
        torch.save({"model_state_dict": sd, "epoch": 7}, p)
        return p
    if route == "safetensors":
        return write_safetensors(tmp_path / "m.safetensors", arrays)
    if route == "npz":
        np.savez(tmp_path / "m.npz", **arrays)
        return tmp_path / "m.npz"
    return sd


@pytest.mark.oracle
@pytest.mark.parametrize(("kind", "layers", "bidir"), MODULES)
def test_every_route_gives_the_module(tmp_path, kind, layers, bidir):
    """A torch module saved as .pt, .safetensors and .npz (and its state dict as a mapping)
    loads as the model from_torch gives, parameters equal bit for bit, and its forward pass
    equals the module's output and final states (float64, 1e-12)."""
    from oracle import torch_or_skip

    torch = torch_or_skip()
    from rnntheory import from_torch

    mod = _module(torch, kind, layers, bidir).eval()
    lin = torch.nn.Linear(8 if bidir else 4, 2, dtype=torch.float64)
    ref = from_torch(mod, readout=lin)
    x = np.random.default_rng(0).normal(size=(6, 2, 3))
    h0 = np.random.default_rng(1).normal(size=((2 if bidir else 1) * layers, 2, 4))
    with torch.no_grad():
        out, hn = mod(torch.tensor(x), torch.tensor(h0) if kind != "lstm" else (torch.tensor(h0), torch.tensor(h0 / 2)))
        hn = hn[0] if kind == "lstm" else hn
        y = lin(out)
    sd = {**{f"rnn.{k}": v for k, v in mod.state_dict().items()}, "fc.weight": lin.weight.detach(),
          "fc.bias": lin.bias.detach()}
    for route in ("mapping", "pt", "safetensors", "npz"):
        m = from_state_dict(_save(torch, route, sd, tmp_path), nonlinearity="relu" if kind == "rnn_relu" else "tanh")
        assert type(m) is type(ref) and repr(m) == repr(ref), route
        assert m.params().keys() == ref.params().keys()
        for k, v in ref.params().items():
            np.testing.assert_array_equal(m.params()[k], v, err_msg=f"{route}: {k}")
        kw = {"h0": h0[0] if m is not None and layers == 1 and not bidir else h0}
        if kind == "lstm":
            kw["c0"] = kw["h0"] / 2
        tr = m.forward(x, **kw)
        mine = tr.output if bidir else tr.h[1:]
        np.testing.assert_allclose(mine, out.numpy(), rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(tr.y, y.numpy(), rtol=1e-12, atol=1e-13)
        if bidir:
            np.testing.assert_allclose(tr.h_n, hn.numpy(), rtol=1e-12, atol=1e-13)


class _Boobytrap:
    """Unpickling this would create the file named by ``target``."""

    target = ""

    def __reduce__(self):
        return (Path.touch, (Path(self.target),))


@pytest.mark.oracle
def test_a_pt_file_with_code_is_refused_and_runs_nothing(tmp_path):
    """torch.load(weights_only=True) refuses a pickled custom object: ValueError naming the
    file, and the object's __reduce__ (which would create a file) never runs."""
    from oracle import torch_or_skip

    torch = torch_or_skip()
    target = tmp_path / "pwned"
    trap = _Boobytrap()
    trap.target = str(target)
    torch.save({"rnn.weight_hh_l0": torch.zeros(3, 3), "payload": trap}, tmp_path / "evil.pt")
    assert not target.exists()
    with pytest.raises(ValueError, match=r"cannot be read by torch\.load\(weights_only=True\)"):
        from_state_dict(tmp_path / "evil.pt")
    assert not target.exists()
    torch.save(torch.nn.GRU(2, 3), tmp_path / "module.pt")  # a whole module is code too
    with pytest.raises(ValueError, match=r"module\.pt"):
        from_state_dict(tmp_path / "module.pt")


@pytest.mark.oracle
def test_a_pt_file_without_torch_gives_the_install_hint(tmp_path, monkeypatch):
    """Reading a .pt needs torch; without it, ImportError with the pip command."""
    from oracle import torch_or_skip

    torch = torch_or_skip()
    torch.save(torch.nn.GRU(2, 3).state_dict(), tmp_path / "m.pt")
    import sys

    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match=r'pip install "rnntheory\[oracle\]"'):
        from_state_dict(tmp_path / "m.pt")


@pytest.mark.oracle
def test_torch_tensors_of_half_precision_in_a_mapping(tmp_path):
    """bfloat16 and float16 torch tensors in a mapping are widened exactly to float32."""
    from oracle import torch_or_skip

    torch = torch_or_skip()
    torch.manual_seed(3)
    for dt in (torch.bfloat16, torch.float16):
        mod = torch.nn.GRU(2, 3).to(dt)
        m = from_state_dict(mod.state_dict())
        assert m.dtype == np.float32
        np.testing.assert_array_equal(m.weight_hh, mod.weight_hh_l0.detach().float().numpy())


@pytest.mark.oracle
def test_cli_bounds_reads_a_pt_lstm(tmp_path, capsys):
    """``bounds`` on a torch.save'd LSTM: four gate blocks (i, f, g, o) per recurrence,
    each γ_W equal to NumPy's 2-norm of that block of the module's weight_hh."""
    from oracle import torch_or_skip

    torch = torch_or_skip()
    torch.manual_seed(4)
    mod = torch.nn.LSTM(2, 3, bidirectional=True, dtype=torch.float64)
    torch.save(mod.state_dict(), tmp_path / "m.pt")
    assert main(["bounds", str(tmp_path / "m.pt"), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["cell"] == "lstm" and d["bidirectional"] is True
    for r, key in zip(d["recurrences"], ("weight_hh_l0", "weight_hh_l0_reverse"), strict=True):
        W = getattr(mod, key).detach().numpy()
        for j, g in enumerate("ifgo"):
            assert r["blocks"][g]["gamma_w"] == pytest.approx(np.linalg.norm(W[3 * j:3 * j + 3], 2), rel=1e-12)


# --------------------------------------------------------------------------- property: write, read back


def _torch_names(model) -> dict:
    """The state dict PyTorch would hold for ``model``, built from the model's cells by
    PyTorch's naming rule (Elman: bias_ih = b_h, bias_hh = 0)."""
    if isinstance(model, BidirectionalRNN):
        grid = [list(p) for p in model.layers]
    elif isinstance(model, StackedRNN):
        grid = [[c] for c in model.layers]
    else:
        grid = [[model]]
    sd = {}
    for i, row in enumerate(grid):
        for d, c in enumerate(row):
            tag = f"_l{i}" + ("_reverse" if d else "")
            if isinstance(c, LSTM | GRU):
                vals = (c.weight_ih, c.weight_hh, c.bias_ih, c.bias_hh)
            else:
                vals = (c.W_hx, c.W_hh, c.b_h, np.zeros_like(c.b_h))
            for name, v in zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"), vals, strict=True):
                sd[f"net.rnn.{name}{tag}"] = np.array(v)
    return sd


@settings(max_examples=12)
@given(
    cell=st.sampled_from(["elman", "lstm", "gru"]),
    layers=st.integers(1, 3),
    bidir=st.booleans(),
    n=st.integers(1, 4),
    n_in=st.integers(1, 3),
    dtype=st.sampled_from([np.float32, np.float64]),
    route=st.sampled_from(["mapping", "npz", "safetensors"]),
    seed=st.integers(0, 2**16),
)
def test_any_model_written_as_a_state_dict_reads_back_exactly(cell, layers, bidir, n, n_in, dtype, route, seed):
    """Without torch: any Elman/LSTM/GRU model, stacked or bidirectional, float32 or
    float64, written under PyTorch's names through any route, reads back as a model of
    the same class whose parameters are the written ones bit for bit."""
    import tempfile

    klass = {"elman": ElmanRNN, "lstm": LSTM, "gru": GRU}[cell]
    if bidir:
        model = BidirectionalRNN.init(n_in, n, None, cell=cell, n_layers=layers, seed=seed, dtype=dtype)
    elif layers > 1:
        model = StackedRNN.init(n_in, n, None, cell=cell, n_layers=layers, seed=seed, dtype=dtype)
    else:
        model = klass.init(n_in, n, None, seed=seed, dtype=dtype)
    sd = _torch_names(model)
    with tempfile.TemporaryDirectory() as tmp:
        if route == "npz":
            np.savez(Path(tmp) / "m.npz", **sd)
            source = Path(tmp) / "m.npz"
        elif route == "safetensors":
            source = write_safetensors(Path(tmp) / "m.safetensors", sd)
        else:
            source = sd
        back = from_state_dict(source)
    assert type(back) is type(model) and back.dtype == model.dtype
    assert back.params().keys() == model.params().keys()
    for k, v in model.params().items():
        np.testing.assert_array_equal(back.params()[k], v, err_msg=k)
