"""The language-model family's loop: perplexity against hand-computed cases, BPTT segments, the learning
rate rules, divergence, and a short fit on a PTB-format folder that learns."""

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from kb.errors import KBError
from kb.runs.context import Run
from runners.language_model.config import Config
from runners.language_model.models import LSTMLanguageModel
from runners.language_model.regularizers import LockedDropout, zoneout
from runners.language_model.train import fit, learning_rate, perplexity, segment_lengths
from tests.test_language_model_data import write_ptb


class FixedDistribution(nn.Module):
    """The same next-token log-probabilities at every position (a model with known probabilities);
    ``weight`` only gives the optimiser something to hold."""

    def __init__(self, log_probs: torch.Tensor) -> None:
        super().__init__()
        self.log_probs = log_probs
        self.weight = nn.Parameter(torch.zeros(()))

    def forward(self, tokens, state):
        steps = 0 if state is None else state
        scores = self.log_probs.expand(*tokens.shape, -1) + 0 * self.weight
        return scores, steps + tokens.shape[1]


def test_perplexity_of_known_probabilities_is_exp_of_the_mean_nll():
    probs = torch.tensor([0.5, 0.25, 0.125, 0.125])
    model = FixedDistribution(probs.log())
    streams = torch.tensor([[0, 1, 2, 3, 0], [1, 1, 0, 2, 3]])
    # next tokens: row 0 -> 1,2,3,0 ; row 1 -> 1,0,2,3 ; NLL = -log p summed by hand
    nll = -(math.log(0.25) + math.log(0.125) + math.log(0.125) + math.log(0.5)
            + math.log(0.25) + math.log(0.5) + math.log(0.125) + math.log(0.125))
    for bptt in (1, 2, 3, 10):  # segmenting with the state carried changes nothing for this model
        assert perplexity(model, streams, bptt) == pytest.approx(math.exp(nll / 8))
    uniform = FixedDistribution(torch.zeros(7))  # logits, not normalised: ppl = V
    assert perplexity(uniform, streams, 3) == pytest.approx(7.0)


def test_fixed_segments_cover_the_stream_and_variable_ones_repeat_per_seed_and_epoch():
    assert segment_lengths(Config(bptt=4), 10, seed=0, epoch=0) == [4, 4, 2]
    config = Config(bptt=35, variable_bptt=True)
    a = segment_lengths(config, 5000, seed=1, epoch=3)
    assert sum(a) == 5000 and min(a[:-1]) >= 5 and a == segment_lengths(config, 5000, seed=1, epoch=3)
    assert a != segment_lengths(config, 5000, seed=1, epoch=4)
    assert 25 < sum(a) / len(a) < 36  # mean about 0.95 * 35 + 0.05 * 17.5 = 34.1


def test_epoch_schedule_decays_after_decay_start_and_plateau_uses_its_own_rate():
    config = Config(lr=1.0, lr_decay=0.5, decay_start=2)
    assert [learning_rate(config, e, plateau_lr=9.0) for e in range(4)] == [1.0, 1.0, 0.5, 0.25]
    assert learning_rate(Config(schedule="plateau"), 5, plateau_lr=0.25) == 0.25


def new_run(tmp_path: Path, data: Path, config) -> Run:
    torch.manual_seed(0)
    (tmp_path / "run").mkdir()
    return Run(id="r", dir=tmp_path / "run", device="cpu", data_dir=data, seed=0, config=config)


def test_plateau_divides_the_rate_after_an_epoch_without_improvement(tmp_path):
    # A model whose output does not depend on its weight: validation never improves after epoch 1.
    config = Config(schedule="plateau", lr=1.0, lr_decay=0.25, epochs=3, train_limit=200, eval_limit=60,
                    batch_size=2, bptt=20)
    run = new_run(tmp_path, write_ptb(tmp_path / "ptb"), config)
    final = fit(config, run, FixedDistribution(torch.zeros(10000)))
    assert [m["lr"] for m in run.epoch_metrics] == [1.0, 1.0, 0.25]
    assert final["val_perplexity"] == pytest.approx(10000) and final["best_epoch"] == 1


def test_a_non_finite_loss_stops_training_with_the_step(tmp_path):
    config = Config(epochs=1, train_limit=200, eval_limit=60, batch_size=2, bptt=20)
    run = new_run(tmp_path, write_ptb(tmp_path / "ptb"), config)
    with pytest.raises(KBError, match="diverged at step 1"):
        fit(config, run, FixedDistribution(torch.full((10000,), float("nan"))))


def test_a_small_lstm_learns_the_repeated_sentences(tmp_path):
    config = Config(embedding_size=32, hidden_size=32, layers=1, dropout=0.0, epochs=3, train_limit=1500,
                    eval_limit=200, batch_size=5, bptt=10, lr=5.0, decay_start=3, init_range=0.1)
    run = new_run(tmp_path, write_ptb(tmp_path / "ptb"), config)
    final = fit(config, run, LSTMLanguageModel.from_config(config))
    # 10k-way uniform is 10000; the text repeats 3 sentences of 5-6 words: a model that learned it is far below
    assert final["val_perplexity"] < 20 and final["test_perplexity"] < 40
    vals = [m["val_perplexity"] for m in run.epoch_metrics]
    assert vals[-1] < vals[0] and run.dataset.name == "ptb-test-subset"


def test_locked_dropout_shares_one_mask_over_time_and_zoneout_only_raises_gates_to_one():
    torch.manual_seed(0)
    x = torch.ones(4, 6, 8)
    dropped = LockedDropout(0.5).train()(x)
    assert torch.equal(dropped, dropped[:, :1].expand_as(dropped)) and set(dropped.unique().tolist()) == {0.0, 2.0}
    gate = torch.full((1000,), 0.3)
    zoned = zoneout(gate, 0.1, training=True)
    kept = zoned != 1
    assert torch.allclose(zoned[kept], gate[kept]) and 50 < (~kept).sum() < 150
    assert torch.equal(zoneout(gate, 0.1, training=False), gate)
