"""The QRNN language model and its LSTM baseline.

Paper: James Bradbury, Stephen Merity, Caiming Xiong, Richard Socher, "Quasi-Recurrent Neural Networks",
ICLR 2017, arXiv:1611.01576.

A QRNN layer (Sec. 2) is a masked convolution over time followed by a recurrent pooling without weights:

    Z = tanh(W_z * X),  F = sigmoid(W_f * X),  O = sigmoid(W_o * X)        (Eq. 1; * is a convolution of
                                                                            width k over x_{t-k+1..t} only)
    c_t = f_t . c_{t-1} + (1 - f_t) . z_t,   h_t = o_t . c_t               (Eq. 4, fo-pooling)

Zoneout (Sec. 2.1) sets forget gates to 1 with probability p while training, F = 1 - dropout(1 - F),
unscaled. The PTB model (Sec. 3.2): embedding, two QRNN layers, softmax, dropout between them. The
baseline is the same network with LSTM layers (``runners.language_model.models.LSTMLanguageModel``).
"""

import torch
from torch import nn

from runners.language_model.models import LSTMLanguageModel, NextTokenLogits, check_tying, init_and_tie_
from runners.language_model.regularizers import zoneout


def fo_pool_loop(f: torch.Tensor, z: torch.Tensor, c0: torch.Tensor) -> torch.Tensor:
    """fo-pooling's cell states by the recurrence, one step at a time: f, z (B, T, H), c0 (B, H) ->
    c (B, T, H). The faster way on a CPU, where a step is a few small vector operations."""
    cells, c = [], c0
    for t in range(f.shape[1]):
        c = f[:, t] * c + (1 - f[:, t]) * z[:, t]
        cells.append(c)
    return torch.stack(cells, dim=1)


def fo_pool_chunked(f: torch.Tensor, z: torch.Tensor, c0: torch.Tensor, chunk: int) -> torch.Tensor:
    """The same cell states as ``fo_pool_loop``, computed ``chunk`` steps at a time in parallel.

    Unrolled, c_t = sum_{s<=t} (prod_{s<r<=t} f_r) (1 - f_s) z_s + (prod_{r<=t} f_r) c_0. Within a chunk the
    products are exp(L_t - L_s) with L the cumulative sum of log f, all <= 1 (no overflow, unlike dividing
    by a running product), so a chunk is one batched (T_c x T_c) lower-triangular matrix product; chunks
    follow each other through their last cell state. The time loop runs T / chunk times, not T.
    """
    log_f = f.clamp_min(1e-30).log()          # the clamp keeps log 0 (and its infinite gradient) away
    inputs = (1 - f) * z
    cells, c = [], c0
    for start in range(0, f.shape[1], chunk):
        cum = log_f[:, start:start + chunk].cumsum(dim=1)                  # (B, Tc, H)
        exponent = cum.unsqueeze(2) - cum.unsqueeze(1)                     # (B, t, s, H): L_t - L_s
        steps = cum.shape[1]
        causal = torch.ones(steps, steps, dtype=torch.bool, device=f.device).tril()
        weights = torch.where(causal[None, :, :, None], exponent, float("-inf")).exp()
        block = torch.einsum("btsh,bsh->bth", weights, inputs[:, start:start + chunk]) + cum.exp() * c[:, None]
        cells.append(block)
        c = block[:, -1]
    return torch.cat(cells, dim=1)


class QRNNLayer(nn.Module):
    """One QRNN layer with fo-pooling: (B, T, input) -> (B, T, hidden).

    The masked convolution is one linear map of the window [x_{t-k+1}, ..., x_t] to the three gates; the
    state carried to the next segment is (c_T, the last k - 1 inputs), so a segment continues the stream
    exactly as if the text were read in one piece.
    """

    def __init__(self, input_size: int, hidden_size: int, window: int, zoneout: float, scan_chunk: int) -> None:
        super().__init__()
        self.hidden_size, self.window, self.zoneout, self.scan_chunk = hidden_size, window, zoneout, scan_chunk
        self.gates = nn.Linear(window * input_size, 3 * hidden_size)

    def forward(self, x: torch.Tensor, state=None):
        batch = x.shape[0]
        if state is None:
            c0 = x.new_zeros(batch, self.hidden_size)
            previous = x.new_zeros(batch, self.window - 1, x.shape[2])
        else:
            c0, previous = state
        padded = torch.cat([previous, x], dim=1)                             # (B, k-1+T, input)
        windows = torch.cat([padded[:, i:i + x.shape[1]] for i in range(self.window)], dim=2)
        z, f, o = self.gates(windows).chunk(3, dim=2)
        z, f, o = torch.tanh(z), zoneout(torch.sigmoid(f), self.zoneout, self.training), torch.sigmoid(o)
        if x.is_cuda:
            c = fo_pool_chunked(f, z, c0, self.scan_chunk)
        else:
            c = fo_pool_loop(f, z, c0)
        return o * c, (c[:, -1], padded[:, padded.shape[1] - (self.window - 1):])


class QRNNLanguageModel(nn.Module):
    """Embedding -> dropout -> QRNN layers with dropout after each -> softmax layer (Sec. 3.2).

    ``forward(tokens (B, T), state) -> (logits (B, T, V), per-layer states)``; ``state`` None is the zero state.
    """

    def __init__(self, vocab_size: int, embedding_size: int, hidden_size: int, layers: int, dropout: float,
                 window: int, zoneout: float, scan_chunk: int, tie_weights: bool = False,
                 init_range: float = 0.05) -> None:
        super().__init__()
        check_tying(tie_weights, embedding_size, hidden_size)
        self.embedding = nn.Embedding(vocab_size, embedding_size)
        self.layers = nn.ModuleList(
            QRNNLayer(embedding_size if i == 0 else hidden_size, hidden_size, window, zoneout, scan_chunk)
            for i in range(layers))
        self.drop = nn.Dropout(dropout)
        self.decoder = nn.Linear(hidden_size, vocab_size)
        init_and_tie_(self, self.embedding, self.decoder, init_range=init_range, tie_weights=tie_weights)

    def forward(self, tokens: torch.Tensor, state=None):
        x = self.drop(self.embedding(tokens))
        states = []
        for i, layer in enumerate(self.layers):
            x, layer_state = layer(x, None if state is None else state[i])
            x = self.drop(x)
            states.append(layer_state)
        return self.decoder(x), tuple(states)


def build(config) -> nn.Module:
    """The preset's network: the QRNN or, with ``model="lstm"``, the LSTM baseline of the same sizes."""
    if config.model == "lstm":
        return LSTMLanguageModel.from_config(config)
    return QRNNLanguageModel(config.vocab_size, config.embedding_size, config.hidden_size, config.layers,
                             config.dropout, config.window, config.zoneout, config.scan_chunk, config.tie_weights,
                             config.init_range)


def architecture(config) -> tuple[nn.Module, torch.Tensor]:
    """The preset's network (eval mode) and one stream of ``bptt`` tokens, for parameters and FLOPs."""
    return NextTokenLogits(build(config)).eval(), torch.zeros(1, config.bptt, dtype=torch.long)
