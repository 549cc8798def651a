"""Recurrent cells: the Elman RNN (standard, Pascanu and leaky forms), LSTM, GRU, and a
generator RNN whose output feeds back (teacher forcing, free running, scheduled sampling)."""

from .bidirectional import BidirectionalRNN, BidirectionalTrace
from .custom import CustomRNN, CustomTrace
from .elman import ElmanGrads, ElmanRNN, Trace
from .gated import GRU, LSTM, GatedTrace, GRUGrads, LSTMGrads
from .generator import (
    GatedGeneratorGrads,
    GeneratorGrads,
    GeneratorRNN,
    GeneratorTrace,
    StackedGeneratorGrads,
)
from .stacked import StackedGrads, StackedRNN, StackedTrace

__all__ = [
    "GRU",
    "LSTM",
    "BidirectionalRNN",
    "BidirectionalTrace",
    "CustomRNN",
    "CustomTrace",
    "ElmanGrads",
    "ElmanRNN",
    "GRUGrads",
    "GatedGeneratorGrads",
    "GatedTrace",
    "GeneratorGrads",
    "GeneratorRNN",
    "GeneratorTrace",
    "LSTMGrads",
    "StackedGeneratorGrads",
    "StackedGrads",
    "StackedRNN",
    "StackedTrace",
    "Trace",
]
