"""A short run of each remedy on temporal order (Pascanu et al. 2013), length 20.

Run from the repository root: ``python benchmarks/remedy_runs.py`` (about 20 s).
Prints the final error on 1000 fresh sequences (chance: 75 %), loss, clip and
fallback counts. Not a test: a record of what the training loop does.
"""

import time

from rnntheory import GRU, LSTM, ElmanRNN
from rnntheory.tasks import TemporalOrder
from rnntheory.training import (
    SGD,
    Adam,
    GradientClipping,
    Penalty,
    SpectralProjection,
    TruncatedBPTT,
    train,
)

task = TemporalOrder(20)
runs = [
    ("none (SGD 0.1)", lambda: ElmanRNN.init(6, 50, 4, scheme="smart_tanh", seed=0), SGD(0.1, momentum=0.9), ()),
    ("clipping τ=1", lambda: ElmanRNN.init(6, 50, 4, scheme="smart_tanh", seed=0), SGD(0.1, momentum=0.9), (GradientClipping(1.0),)),
    ("TBPTT k2=10 + clip", lambda: ElmanRNN.init(6, 50, 4, scheme="smart_tanh", seed=0), SGD(0.1, momentum=0.9), (TruncatedBPTT(10), GradientClipping(1.0))),
    ("L2 1e-3 + clip", lambda: ElmanRNN.init(6, 50, 4, scheme="smart_tanh", seed=0), SGD(0.1, momentum=0.9), (Penalty("l2", 1e-3), GradientClipping(1.0))),
    ("projection σ≤1 + clip", lambda: ElmanRNN.init(6, 50, 4, scheme="smart_tanh", seed=0), SGD(0.1, momentum=0.9), (SpectralProjection(1.0), GradientClipping(1.0))),
    ("LSTM Adam + clip", lambda: LSTM.init(6, 50, 4, seed=0, forget_bias=1.0), Adam(0.01), (GradientClipping(1.0),)),
    ("GRU Adam + clip", lambda: GRU.init(6, 50, 4, seed=0), Adam(0.01), (GradientClipping(1.0),)),
    # truncation at 10 cuts the path from the loss at step 20 to the symbols in the first half
    ("TBPTT (10, 10) + clip", lambda: ElmanRNN.init(6, 50, 4, scheme="smart_tanh", seed=0), SGD(0.1, momentum=0.9), (TruncatedBPTT(10, k1=10), GradientClipping(1.0))),
    ("LSTM TBPTT (10, 10)", lambda: LSTM.init(6, 50, 4, seed=0, forget_bias=1.0), Adam(0.01), (TruncatedBPTT(10, k1=10), GradientClipping(1.0))),
    ("LSTM TBPTT (20, 20)", lambda: LSTM.init(6, 50, 4, seed=0, forget_bias=1.0), Adam(0.01), (TruncatedBPTT(20, k1=20), GradientClipping(1.0))),
]
for name, mk, opt, rem in runs:
    t0 = time.perf_counter()
    h = train(mk(), task, optimizer=opt, remedies=rem, steps=1500, batch_size=20, seed=0, eval_every=1500, eval_size=1000)
    print(f"{name:<24} steps {h.steps}  error {h.eval_error[-1]:.3f}  loss {h.eval_loss[-1]:.3f}  clips {h.count('clip')}  fallbacks {h.count('fallback')}  {time.perf_counter()-t0:.1f}s")
