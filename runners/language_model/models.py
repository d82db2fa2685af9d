"""The language models the family's runners share: the plain LSTM language model their papers'
baselines are, and the wrapper kb's architecture measurement calls.

- ``LSTMLanguageModel``: embedding, stacked ``nn.LSTM`` (cuDNN on CUDA), dropout between layers
  (Zaremba et al. 2014, arXiv 1409.2329, Sec. 3: dropout on the non-recurrent connections only), a linear
  softmax layer, optionally tied to the embedding (Press & Wolf 2016; Inan et al. 2016).
- ``NextTokenLogits``: any family model read from a zero state, returning only its scores.
- ``check_tying`` and ``init_and_tie_``: the uniform initialisation and weight tying every family model
  shares.
"""

import torch
from torch import nn


def check_tying(tie_weights: bool, embedding_size: int, hidden_size: int) -> None:
    """Tied weights share one matrix: the embedding and the softmax layer need the same width."""
    if tie_weights and embedding_size != hidden_size:
        raise ValueError(f"tied weights need embedding_size = hidden_size, got {embedding_size} and {hidden_size}")


def init_and_tie_(model: nn.Module, embedding: nn.Embedding, decoder: nn.Linear, *, init_range: float,
                  tie_weights: bool) -> None:
    """Every parameter of ``model`` drawn from U(-init_range, init_range) (Zaremba et al. Sec. 4; 0 keeps
    PyTorch's), then, with ``tie_weights``, the softmax layer's weight made the embedding's."""
    if init_range:
        for weight in model.parameters():
            nn.init.uniform_(weight, -init_range, init_range)
    if tie_weights:
        decoder.weight = embedding.weight


class LSTMLanguageModel(nn.Module):
    """Embedding -> dropout -> ``layers`` LSTM layers with dropout between them -> dropout -> softmax layer.

    ``forward(tokens (B, T), state) -> (logits (B, T, V), (h, c))``, each (layers, B, hidden); ``state``
    None is the zero state.
    """

    def __init__(self, vocab_size: int, embedding_size: int, hidden_size: int, layers: int, dropout: float,
                 tie_weights: bool = False, init_range: float = 0.05) -> None:
        super().__init__()
        check_tying(tie_weights, embedding_size, hidden_size)
        self.embedding = nn.Embedding(vocab_size, embedding_size)
        self.rnn = nn.LSTM(embedding_size, hidden_size, layers, dropout=dropout if layers > 1 else 0.0,
                           batch_first=True)
        self.drop = nn.Dropout(dropout)
        self.decoder = nn.Linear(hidden_size, vocab_size)
        init_and_tie_(self, self.embedding, self.decoder, init_range=init_range, tie_weights=tie_weights)

    @classmethod
    def from_config(cls, config) -> "LSTMLanguageModel":
        return cls(config.vocab_size, config.embedding_size, config.hidden_size, config.layers, config.dropout,
                   config.tie_weights, config.init_range)

    def forward(self, tokens: torch.Tensor, state=None):
        output, state = self.rnn(self.drop(self.embedding(tokens)), state)
        return self.decoder(self.drop(output)), state


class NextTokenLogits(nn.Module):
    """A language model read from a zero state, returning only its scores (B, T, V): the form kb's
    architecture measurement calls (one input, one tensor out).

    oneDNN's fused CPU LSTM kernel is one operation that torch's FLOP counter does not see into; with it
    off, a CPU forward counts the LSTM's matrix products as the meta-device measurement does.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        enabled = torch.backends.mkldnn.enabled
        torch.backends.mkldnn.enabled = False
        try:
            return self.model(tokens)[0]
        finally:
            torch.backends.mkldnn.enabled = enabled
