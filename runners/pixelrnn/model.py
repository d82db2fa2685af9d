"""PixelCNN, Row LSTM and Diagonal BiLSTM for binary images (binarized MNIST).

Paper: Aäron van den Oord, Nal Kalchbrenner, Koray Kavukcuoglu, "Pixel Recurrent Neural Networks",
arXiv:1601.06759.

- p(x) = prod_i p(x_i | x_1..x_{i-1}) over the pixels in raster order (Sec. 2, Eq. 1); for binary MNIST
  each conditional is a Bernoulli with a sigmoid output (Sec. 2.2, Sec. 5.5).
- Masked convolutions (Sec. 3.5): mask A in the first 7x7 layer hides the pixel being predicted, mask B in
  later layers lets a position see its own features. With one (binary) channel the paper's R, G, B
  ordering inside a pixel reduces to this spatial mask.
- Row LSTM (Sec. 3.1): an input-to-state 3x1 convolution (one row, three columns) masked B over the
  current row, and a state-to-state 3x1 convolution over the previous row's hidden state; rows are
  computed one after another, all of a row at once.
- Diagonal BiLSTM (Sec. 3.2, Fig. 3): the input map is skewed (row i shifted right by i) so that the
  diagonals become columns; an input-to-state 1x1 convolution and a state-to-state 2x1 column
  convolution over the previous column; a second direction runs on the mirrored map, and its output is
  shifted down one row before the two are added, so that no position sees the future.
- Residual connections (Sec. 3.4, Fig. 5): each layer maps 2h input features to h (the LSTM's state or
  the PixelCNN block's bottleneck), a 1x1 convolution brings it back to 2h, and the input is added.
  Skip connections from every layer to the output stack (Sec. 3.4) are optional.
- Table 1's layers: 7x7 conv mask A; the recurrent or residual layers; ReLU and 1x1 conv (mask B, which
  for one channel is a plain 1x1 convolution), twice; the sigmoid.

Learned initial states (Sec. 5.2: initial recurrent states are learned) are one vector of h hidden and h
cell values per layer and direction: the state of the row above row 0 (Row LSTM), and of the positions
left of column 0 and above row 0 (Diagonal BiLSTM).
"""

import torch
import torch.nn.functional as F
from torch import nn

HEIGHT = WIDTH = 28


class MaskedConv2d(nn.Conv2d):
    """A same-size 2-D convolution whose kernel sees only positions before the centre in raster
    order: rows above, and the columns left of the centre in the centre row; mask ``"B"`` also keeps
    the centre, mask ``"A"`` does not (Sec. 3.5, Fig. 4 for one channel)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: tuple[int, int], mask: str) -> None:
        rows, cols = kernel_size
        super().__init__(in_channels, out_channels, kernel_size, padding=(rows // 2, cols // 2))
        keep = torch.zeros(rows, cols)
        keep[:rows // 2] = 1
        keep[rows // 2, :cols // 2 + (mask == "B")] = 1
        self.register_buffer("mask", keep[None, None], persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


def lstm_step(gates: torch.Tensor, cell: torch.Tensor, hidden: int, dim: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """One LSTM update from pre-activations [o, f, i, g], 4h along ``dim`` (Eq. 3): returns (h, c)."""
    o, f, i = torch.sigmoid(gates.narrow(dim, 0, 3 * hidden)).split(hidden, dim=dim)
    cell = f * cell + i * torch.tanh(gates.narrow(dim, 3 * hidden, hidden))
    return o * torch.tanh(cell), cell


def recurrent_weight(*shape: int) -> nn.Parameter:
    """A state-to-state kernel (..., out, in) initialised like a convolution's, U(-1/sqrt(in), 1/sqrt(in))."""
    bound = shape[-1] ** -0.5
    return nn.Parameter(torch.empty(shape).uniform_(-bound, bound))


class RowLSTM(nn.Module):
    """(B, 2h, H, W) -> (B, h, H, W): the Row LSTM layer of Sec. 3.1.

    The state-to-state 3x1 convolution is one matrix product with the previous row's states at columns
    j - 1, j and j + 1 stacked. Inside the loop the maps are (features, B, W), so that a step is one
    plain matrix product over all columns and images.
    """

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.input_to_state = MaskedConv2d(2 * hidden, 4 * hidden, (1, 3), "B")
        self.state_to_state = recurrent_weight(4 * hidden, 3 * hidden)   # columns j - 1, j, j + 1
        self.initial = nn.Parameter(torch.zeros(2, hidden, 1, 1))  # learned h and c of the row above row 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = x.shape
        h = self.initial[0].expand(-1, batch, width)
        c = self.initial[1].expand(-1, batch, width)
        rows = []
        # Every row's input part at once, as (H, 4h, B, W).
        for gates in self.input_to_state(x).permute(2, 1, 0, 3).contiguous():
            padded = F.pad(h, (1, 1))
            stacked = torch.cat([padded[..., :width], h, padded[..., 2:]], dim=0)     # (3h, B, W)
            recurrent = torch.mm(self.state_to_state, stacked.reshape(3 * self.hidden, -1))
            h, c = lstm_step(gates + recurrent.view_as(gates), c, self.hidden, dim=0)
            rows.append(h)
        return torch.stack(rows).permute(2, 1, 0, 3)            # (H, h, B, W) -> (B, h, H, W)


def skew(x: torch.Tensor) -> torch.Tensor:
    """(H, W, ...) -> (H, W + H - 1, ...) with row i shifted right by i (Fig. 3), zeros elsewhere.

    Padding each row with H zeros and reading the flat array back in rows one shorter moves row i by i.
    """
    height, width, *rest = x.shape
    padded = torch.cat([x, x.new_zeros(height, height, *rest)], dim=1)
    return padded.reshape(height * (width + height), *rest)[:height * (width + height - 1)].reshape(
        height, width + height - 1, *rest)


def unskew(x: torch.Tensor, width: int) -> torch.Tensor:
    """The inverse of ``skew``: (H, W + H - 1, ...) -> (H, W, ...)."""
    height, skewed, *rest = x.shape
    flat = torch.cat([x.reshape(height * skewed, *rest), x.new_zeros(height, *rest)])
    return flat.reshape(height, skewed + 1, *rest)[:, :width]


class DiagonalBiLSTM(nn.Module):
    """(B, 2h, H, W) -> (B, h, H, W): the Diagonal BiLSTM layer of Sec. 3.2.

    Both directions (left to right, and right to left on the mirrored map) run in one loop over the
    skewed columns, as batched matrix products: the input-to-state 1x1 convolution (mask B is no mask
    for 1x1) for every column at once, then per column the state-to-state 2x1 convolution, a product with
    the previous column's states in rows i - 1 and i stacked. Maps are kept as (direction, ..., rows,
    images, features), features last, so that every step reads and writes contiguous blocks.
    """

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.input_to_state = recurrent_weight(2, 2 * hidden, 4 * hidden)   # per direction: 2h -> 4h
        self.input_bias = nn.Parameter(torch.zeros(2, 1, 4 * hidden))
        self.state_to_state = recurrent_weight(2, 2 * hidden, 4 * hidden)   # per direction: rows i - 1, i
        self.initial = nn.Parameter(torch.zeros(2, 2, 1, 1, hidden))        # learned h and c per direction

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, features, height, width = x.shape
        rows = x.permute(2, 3, 0, 1)                                        # (H, W, B, 2h)
        both = skew(torch.stack([rows, rows.flip(1)], dim=2))              # (H, C, 2, B, 2h), C = W + H - 1
        columns = both.shape[1]
        both = both.permute(2, 1, 0, 3, 4).reshape(2, columns * height * batch, features)
        gates = torch.baddbmm(self.input_bias, both, self.input_to_state)
        gates = gates.view(2, columns, height, batch, 4 * self.hidden)
        h0 = self.initial[0].expand(-1, height, batch, -1)                  # (2, H, B, h)
        c0 = self.initial[1].expand(-1, height, batch, -1)
        h, c = h0, c0
        # Row r's first pixel is in skewed column r: left of it (and above row 0) the state is the learned one.
        before = torch.arange(height, device=x.device)[:, None, None]
        states = []
        for column in range(columns):
            above = torch.cat([h0[:, :1], h[:, :-1]], dim=1)
            stacked = torch.cat([above, h], dim=3).reshape(2, height * batch, 2 * self.hidden)
            pre = torch.baddbmm(gates[:, column].reshape(2, height * batch, -1), stacked, self.state_to_state)
            h, c = lstm_step(pre.view(2, height, batch, -1), c, self.hidden, dim=3)
            if column < height - 1:
                h, c = torch.where(before > column, h0, h), torch.where(before > column, c0, c)
            states.append(h)
        left, right = (unskew(out, width) for out in torch.stack(states, dim=2).unbind(0))   # (H, W, B, h)
        # The mirrored direction at row i has seen row i to the right of each position: use row i - 1's.
        right = right.flip(1)
        right = torch.cat([torch.zeros_like(right[:1]), right[:-1]])
        return (left + right).permute(2, 3, 0, 1)                          # (B, h, H, W)


class PixelCNNBlock(nn.Module):
    """(B, 2h, H, W) -> (B, h, H, W): the PixelCNN residual block's inner part (Fig. 5, right): ReLU and
    1x1 down to h, ReLU and 3x3 mask B, ReLU (the block's last 1x1 back to 2h is ``PixelRNN.upsample``)."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(2 * hidden, hidden, 1)
        self.conv = MaskedConv2d(hidden, hidden, (3, 3), "B")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv(F.relu(self.reduce(F.relu(x)))))


LAYERS = {"pixelcnn": PixelCNNBlock, "row_lstm": RowLSTM, "diagonal_bilstm": DiagonalBiLSTM}


class PixelRNN(nn.Module):
    """Binary images (B, 1, H, W) in {0, 1} -> Bernoulli logits (B, 1, H, W), logit (i, j) a function of the
    pixels before (i, j) in raster order only.

    Args:
        model: ``pixelcnn``, ``row_lstm`` or ``diagonal_bilstm``.
        layers: recurrent layers or PixelCNN residual blocks.
        hidden: h; the maps between layers have 2h features (Sec. 3.4).
        output_hidden: features of the first ReLU-1x1 output layer (Table 1 does not print it).
        skip: add each layer's output to the output stack through its own 1x1 convolution (Sec. 3.4).
    """

    def __init__(self, *, model: str = "diagonal_bilstm", layers: int = 7, hidden: int = 16,
                 output_hidden: int = 32, skip: bool = True) -> None:
        super().__init__()
        self.input = MaskedConv2d(1, 2 * hidden, (7, 7), "A")
        self.layers = nn.ModuleList(LAYERS[model](hidden) for _ in range(layers))
        self.upsample = nn.ModuleList(nn.Conv2d(hidden, 2 * hidden, 1) for _ in range(layers))
        self.skips = nn.ModuleList(nn.Conv2d(2 * hidden, 2 * hidden, 1) for _ in range(layers if skip else 0))
        self.output = nn.Sequential(nn.ReLU(), nn.Conv2d(2 * hidden, output_hidden, 1),
                                    nn.ReLU(), nn.Conv2d(output_hidden, 1, 1))

    @classmethod
    def from_config(cls, config) -> "PixelRNN":
        return cls(model=config.model, layers=config.layers, hidden=config.hidden,
                   output_hidden=config.output_hidden, skip=config.skip_connections)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.input(2 * x - 1)                        # pixels scaled and centred to {-1, 1} (Sec. 5.2)
        skipped = 0
        for index, (layer, upsample) in enumerate(zip(self.layers, self.upsample)):
            x = x + upsample(layer(x))                   # residual connection (Fig. 5)
            if self.skips:
                skipped = skipped + self.skips[index](x)
        return self.output(skipped if self.skips else x)


def nll_nats(logits: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """-log p(x) in nats of each image (B,): the Bernoulli cross-entropy summed over its pixels (Sec. 5.1)."""
    return F.binary_cross_entropy_with_logits(logits, images, reduction="none").flatten(1).sum(1)


@torch.no_grad()
def sample(model: PixelRNN, count: int, generator: torch.Generator, *, height: int = HEIGHT,
           width: int = WIDTH) -> torch.Tensor:
    """``count`` images drawn pixel by pixel in raster order (ancestral sampling, Sec. 2): pixel (i, j) is
    1 when ``torch.rand(count, generator=generator)`` falls below the model's p(x_ij = 1 | earlier pixels).

    Row i's probabilities depend on rows 0..i only, so the model runs on those rows alone.
    Returns a float tensor (count, 1, height, width) of zeros and ones.
    """
    device = next(model.parameters()).device
    images = torch.zeros(count, 1, height, width, device=device)
    for i in range(height):
        for j in range(width):
            p = torch.sigmoid(model(images[:, :, :i + 1])[:, 0, i, j])
            images[:, 0, i, j] = (torch.rand(count, generator=generator).to(device) < p).float()
    return images


def architecture(config) -> tuple[nn.Module, torch.Tensor]:
    """The preset's network and one 28x28 binary image (all zeros) as its input, for counting parameters
    and operations without data."""
    return PixelRNN.from_config(config).eval(), torch.zeros(1, 1, HEIGHT, WIDTH)
