"""Recurrent cells: the Elman RNN (standard, Pascanu and leaky forms), LSTM and GRU."""

from .elman import ElmanGrads, ElmanRNN, Trace
from .gated import GRU, LSTM, GatedTrace, GRUGrads, LSTMGrads

__all__ = ["GRU", "LSTM", "ElmanGrads", "ElmanRNN", "GRUGrads", "GatedTrace", "LSTMGrads", "Trace"]
