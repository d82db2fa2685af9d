"""The pointer sentinel-LSTM language model.

Paper: Stephen Merity, Caiming Xiong, James Bradbury, Richard Socher, "Pointer Sentinel Mixture Models",
ICLR 2017, arXiv:1609.07843.

An LSTM reads the words; at each position its output h_t gives two distributions over the next word:

    p_vocab = softmax(U h_t)                                              (Sec. 2.1, the softmax-RNN)
    q = tanh(W h_t + b)                                                   (Sec. 2.2, Eq. 3: the query)
    z_i = q . h_i for the L most recent positions i (t - L < i <= t)      (Eq. 4)
    a = softmax([z; q . s])                                               (Sec. 2.3: s is the sentinel)
    g = a[L + 1],  p_ptr(w) = sum of a_i over the positions i whose word x_i is w, divided by 1 - g
    p(w) = g p_vocab(w) + (1 - g) p_ptr(w)                                (Eq. 2)

so the mixture is g p_vocab plus the window's attention scattered onto the vocabulary, and it sums to one.
The window continues across BPTT segments: the last L - 1 outputs and their words are part of the state
(detached, as the family's loop detaches every state), so only the start of a stream has a shorter window.
Dropout (Sec. 5.1): variational (locked) dropout on the input of each LSTM layer and on the last layer's
output; the pointer attends over those dropped outputs, the same vectors the softmax reads.
"""

import torch
from torch import nn

from runners.language_model.models import NextTokenLogits, check_tying, init_and_tie_
from runners.language_model.regularizers import LockedDropout


class PointerSentinel(nn.Module):
    """The mixture of Eq. 2 over a window of ``window`` words: RNN outputs -> next-word log-probabilities.

    ``forward(outputs (B, T, H), tokens (B, T), memory (B, M, H), memory_tokens (B, M)) -> (B, T, V)``, where
    ``memory`` holds the outputs of the M (< window) positions before this segment and ``tokens`` are the
    words read at each position (the words the pointer copies).
    """

    def __init__(self, hidden_size: int, vocab_size: int, window: int) -> None:
        super().__init__()
        self.window = window
        self.decoder = nn.Linear(hidden_size, vocab_size)
        self.query = nn.Linear(hidden_size, hidden_size)
        self.sentinel = nn.Parameter(torch.zeros(hidden_size))

    def forward(self, outputs: torch.Tensor, tokens: torch.Tensor, memory: torch.Tensor,
                memory_tokens: torch.Tensor) -> torch.Tensor:
        batch, steps, _ = outputs.shape
        remembered = memory.shape[1]
        keys = torch.cat([memory, outputs], dim=1)                              # (B, M + T, H)
        key_tokens = torch.cat([memory_tokens, tokens], dim=1)                  # (B, M + T)
        query = torch.tanh(self.query(outputs))                                 # (B, T, H), Eq. 3
        scores = query @ keys.transpose(1, 2)                                   # (B, T, M + T), Eq. 4
        # Position t (index M + t of the keys) sees the keys M + t - L < j <= M + t: its own word and the
        # L - 1 before it, never a later one.
        now = torch.arange(steps, device=outputs.device)[:, None] + remembered
        key = torch.arange(remembered + steps, device=outputs.device)[None, :]
        scores = scores.masked_fill((key > now) | (key <= now - self.window), float("-inf"))
        attention = torch.softmax(torch.cat([scores, query @ self.sentinel[:, None]], dim=2), dim=2)
        gate = attention[..., -1:]                                              # g, (B, T, 1)
        # g p_vocab + (1 - g) p_ptr, with (1 - g) p_ptr the window's attention summed per word (Eq. 2).
        mixture = (gate * torch.softmax(self.decoder(outputs), dim=2)).scatter_add(
            2, key_tokens[:, None, :].expand(batch, steps, -1), attention[..., :-1])
        # g p_vocab > 0 for every word; the floor only guards float underflow when g is almost 0.
        return mixture.clamp_min(torch.finfo(mixture.dtype).tiny).log()


class PointerSentinelLSTM(nn.Module):
    """Embedding -> (locked dropout -> LSTM layer) x layers -> locked dropout -> pointer sentinel mixture.

    ``forward(tokens (B, T), state) -> (log-probabilities (B, T, V), state)``; the state is (per-layer LSTM
    states, the last ``window - 1`` outputs (B, M, H), their words (B, M)), None at the start of a stream.
    With ``pointer`` False the head is the plain softmax (logits out), the paper's LSTM baseline.
    """

    def __init__(self, vocab_size: int, embedding_size: int, hidden_size: int, layers: int, dropout: float,
                 window: int, pointer: bool = True, tie_weights: bool = False, init_range: float = 0.05) -> None:
        super().__init__()
        check_tying(tie_weights, embedding_size, hidden_size)
        self.window = window
        self.embedding = nn.Embedding(vocab_size, embedding_size)
        self.rnns = nn.ModuleList(nn.LSTM(embedding_size if i == 0 else hidden_size, hidden_size, batch_first=True)
                                  for i in range(layers))
        self.drop = LockedDropout(dropout)
        self.head = PointerSentinel(hidden_size, vocab_size, window) if pointer else nn.Linear(hidden_size,
                                                                                               vocab_size)
        init_and_tie_(self, self.embedding, self.head.decoder if pointer else self.head, init_range=init_range,
                      tie_weights=tie_weights)

    def forward(self, tokens: torch.Tensor, state=None):
        x = self.embedding(tokens)
        layer_states = []
        for i, rnn in enumerate(self.rnns):
            x, layer_state = rnn(self.drop(x), None if state is None else state[0][i])
            layer_states.append(layer_state)
        outputs = self.drop(x)
        if isinstance(self.head, nn.Linear):
            return self.head(outputs), (tuple(layer_states), None, None)
        if state is None:
            memory, memory_tokens = outputs[:, :0], tokens[:, :0]
        else:
            memory, memory_tokens = state[1], state[2]
        scores = self.head(outputs, tokens, memory, memory_tokens)
        # The next segment's first position needs the window - 1 positions before it.
        seen = memory.shape[1] + outputs.shape[1]
        start = max(0, seen - (self.window - 1))
        memory = torch.cat([memory, outputs], dim=1)[:, start:]
        memory_tokens = torch.cat([memory_tokens, tokens], dim=1)[:, start:]
        return scores, (tuple(layer_states), memory, memory_tokens)


def build(config) -> PointerSentinelLSTM:
    return PointerSentinelLSTM(config.vocab_size, config.embedding_size, config.hidden_size, config.layers,
                               config.dropout, config.window, config.pointer, config.tie_weights, config.init_range)


def architecture(config) -> tuple[nn.Module, torch.Tensor]:
    """The preset's network (eval mode) and one stream of ``bptt`` tokens, for parameters and FLOPs."""
    return NextTokenLogits(build(config)).eval(), torch.zeros(1, config.bptt, dtype=torch.long)
