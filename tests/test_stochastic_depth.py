"""Stochastic depth (arXiv 1603.09382) in the family's residual network, against the paper's formulas and
He et al.'s published parameter counts: survival probabilities, expected depth, dropped blocks as
identities, test-time scaling, seeded draws that a resumed run repeats, and the data-free verdicts."""

import copy

import pytest
import torch

from kb.paperfile import parse_paper_yaml
from kb.runs.config import to_dict
from kb.runs.execute import measure_architecture
from kb.runs.registry import load_registry
from kb.runs.verdict import applies, judge_all
from runners.classification import resnet
from runners.stochastic_depth.config import PRESETS
from tests.conftest import ROOT


def network(blocks_per_stage=2, *, rule="linear", last=0.5, kind="original", shortcut="zero-pad", seed=0,
            widths=(16, 32, 64)):
    return resnet.ResNet(blocks_per_stage=blocks_per_stage, widths=widths, num_classes=10, kind=kind,
                         shortcut=shortcut, survival_rule=rule, survival_last=last, seed=seed)


def count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_linear_decay_runs_from_one_to_p_L():
    # Eq. 4: p_l = 1 - l/L (1 - p_L); with L = 4, p_L = 0.5: 7/8, 6/8, 5/8, 4/8.
    assert resnet.survival_probabilities(4, "linear", 0.5) == [0.875, 0.75, 0.625, 0.5]
    assert resnet.survival_probabilities(3, "uniform", 0.8) == [0.8] * 3
    assert resnet.survival_probabilities(3, "constant", 0.5) == [1.0] * 3
    p = resnet.survival_probabilities(54, "linear", 0.5)
    assert p[0] == pytest.approx(1 - 1 / 108) and p[-1] == pytest.approx(0.5)


@pytest.mark.parametrize("blocks", [54, 75, 600])
def test_expected_depth_is_the_papers_closed_form(blocks):
    # Sec. 3: under linear decay with p_L = 0.5, E(L~) = (3L - 1) / 4 (40.25 for ResNet-110's 54 blocks).
    assert resnet.expected_depth(resnet.survival_probabilities(blocks, "linear", 0.5)) == pytest.approx(
        (3 * blocks - 1) / 4)


def resnet20_by_hand() -> int:
    """ResNet-20 (n = 3) counted from He et al. 2015's CIFAR layer table: 3x3 convs without bias, each
    followed by BN (2 parameters per channel), option-A shortcuts (no parameters), a 64 -> 10 classifier."""
    conv = lambda cin, cout: 9 * cin * cout + 2 * cout
    stem = conv(3, 16)
    stage1 = 6 * conv(16, 16)
    stage2 = conv(16, 32) + 5 * conv(32, 32)
    stage3 = conv(32, 64) + 5 * conv(64, 64)
    return stem + stage1 + stage2 + stage3 + 64 * 10 + 10


def test_parameter_counts_match_he_et_al_table_6():
    # He et al. 2015 (arXiv 1512.03385) Table 6: ResNet-20 0.27M, ResNet-110 1.7M, ResNet-1202 19.4M.
    assert count(network(3)) == resnet20_by_hand() == 269_722
    for blocks, millions in ((3, 0.27), (18, 1.7), (200, 19.4)):
        with torch.device("meta"):
            got = count(network(blocks)) / 1e6
        digits = len(str(millions).split(".")[1])
        assert round(got, digits) == millions, (blocks, got)


def test_a_dropped_block_is_the_identity_and_gets_no_gradient():
    torch.manual_seed(0)
    block = resnet.ResidualBlock(16, 16, 1, kind="original", shortcut="zero-pad", survival=0.5).train()
    x = torch.rand(2, 16, 8, 8, requires_grad=True)  # non-negative, as after the previous ReLU (Sec. 3)
    out = block(x, False)
    assert torch.equal(out, x)
    weights = torch.randn_like(out)
    (out * weights).sum().backward()
    assert torch.equal(x.grad, weights)  # d out / d x is the identity
    assert all(p.grad is None for p in block.parameters())


def test_a_dropped_transition_block_is_average_pooling_and_zero_channels():
    block = resnet.ResidualBlock(16, 32, 2, kind="original", shortcut="zero-pad", survival=0.5).train()
    x = torch.rand(1, 16, 8, 8)
    out = block(x, False)
    pooled = (x[:, :, 0::2, 0::2] + x[:, :, 1::2, 0::2] + x[:, :, 0::2, 1::2] + x[:, :, 1::2, 1::2]) / 4
    assert out.shape == (1, 32, 4, 4)
    assert torch.allclose(out[:, :16], pooled) and torch.equal(out[:, 16:], torch.zeros(1, 16, 4, 4))


@pytest.mark.parametrize("kind", ["original", "preact"])
def test_at_test_time_the_residual_is_scaled_by_its_survival_probability(kind):
    torch.manual_seed(0)
    scaled = resnet.ResidualBlock(16, 16, 1, kind=kind, shortcut="projection", survival=0.3).eval()
    for bn in (scaled.bn1, scaled.bn2):  # BN with running statistics, as after training
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
    full = copy.deepcopy(scaled)
    full.survival = 1.0
    x = torch.rand(2, 16, 8, 8)
    with torch.no_grad():
        if kind == "preact":  # no ReLU after the addition: out - x is the (scaled) residual itself
            assert torch.allclose(scaled(x) - x, 0.3 * (full(x) - x), atol=1e-6)
        else:                 # Eq. 5: ReLU(p_l f(x) + x)
            assert torch.allclose(scaled(x), torch.relu(0.3 * scaled.residual(x) + x), atol=1e-6)


def test_training_draws_each_block_with_its_survival_probability():
    model = network(6, seed=3).train()
    kept = torch.tensor([model.gates() for _ in range(4000)], dtype=torch.float64).mean(0)
    expected = torch.tensor(model.survival, dtype=torch.float64)
    # 4000 Bernoulli draws: standard error at most 0.008, so 0.04 is five of them.
    assert (kept - expected).abs().max() < 0.04


def test_dropped_blocks_are_not_computed_in_training():
    model = network(2).train()
    model.gates = lambda: [False] * len(model.survival)
    ran = []
    for block in model.blocks():
        block.conv1.register_forward_hook(lambda *_: ran.append(1))
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    assert ran == []
    assert model.fc.weight.grad is not None


def test_sgd_still_decays_and_carries_momentum_for_a_dropped_block():
    """As the authors' Torch optim.sgd does: a dropped block's gradient is zero, not absent, so weight decay
    and Nesterov momentum still move its weights (w <- w - lr (wd w + m v) with v = wd w on a first step)."""
    torch.manual_seed(0)
    model = network(1).train()
    model.gates = lambda: [True, True, False]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4)
    dropped = model.blocks()[2].conv2.weight
    before = dropped.detach().clone()
    optimizer.zero_grad(set_to_none=True)
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    assert torch.equal(dropped.grad, torch.zeros_like(dropped))
    optimizer.step()
    decay = 1e-4 * before
    assert torch.allclose(dropped.detach(), before - 0.1 * (decay + 0.9 * decay))


def test_survival_draws_come_from_the_seed_and_resume_from_the_state_dict():
    a, b, other = network(seed=7).train(), network(seed=7).train(), network(seed=8).train()
    first = [a.gates() for _ in range(5)]
    assert first == [b.gates() for _ in range(5)]
    assert first != [other.gates() for _ in range(5)]
    state = a.state_dict()
    resumed = network(seed=0).train()
    resumed.load_state_dict(state)               # seed and step travel in the checkpoint
    assert [resumed.gates() for _ in range(5)] == [a.gates() for _ in range(5)]


def test_the_presets_build_the_papers_networks():
    for name, blocks in (("c10-110", 54), ("svhn-152", 75), ("c10-1202", 600)):
        config = PRESETS[name]
        assert 3 * config.blocks_per_stage == blocks and 6 * config.blocks_per_stage + 2 == int(name.split("-")[1])
    assert PRESETS["c10-110"].survival_rule == "linear" and PRESETS["c10-110-constant"].survival_rule == "constant"
    # Sec. 4: 500 epochs, lr /10 after epochs 250 and 375, 45k/5k; SVHN 50 epochs, /10 after 30 and 35.
    assert [m * PRESETS["c10-110"].epochs for m in PRESETS["c10-110"].lr_milestones] == [250, 375]
    assert [round(m * PRESETS["svhn-152"].epochs) for m in PRESETS["svhn-152"].lr_milestones] == [30, 35]
    assert PRESETS["c10-110"].validation_size == 5000 and PRESETS["svhn-152"].validation_size == 6000


def test_architecture_only_judges_the_expected_depth_claims_reproduced():
    spec = load_registry().get("stochastic-depth")
    claims = claims_of("stochastic-depth")
    config = PRESETS["c10-110"]
    final, _ = measure_architecture(spec, config)
    assert final["expected_blocks"] == pytest.approx(40.25)
    assert final["training_time_saving"] == pytest.approx(100 * (54 - 40.25) / 54)
    verdicts = judge_all(claims, config=to_dict(config), final=final, dataset=None, synthetic=False,
                         device_name="cpu", kind="architecture")
    assert {v["metric"]: v["verdict"] for v in verdicts} == {"expected_blocks": "reproduced",
                                                             "training_time_saving": "reproduced"}


def claims_of(slug: str) -> list[dict]:
    text = (ROOT / "papers" / slug / "paper.yaml").read_text(encoding="utf-8")
    return parse_paper_yaml(text, where=slug, folder_slug=slug).fields["claims"]


@pytest.mark.parametrize("preset, value", [("c10-110", 5.25), ("c10-110-constant", 6.41), ("c100-110", 24.98),
                                           ("c100-110-constant", 27.76), ("svhn-152", 1.75),
                                           ("svhn-152-constant", 1.80), ("c10-1202", 4.91)])
def test_each_preset_meets_the_setting_of_its_table_1_claim(preset, value):
    config = to_dict(PRESETS[preset])
    fields = set(config)
    claims = [c for c in claims_of("stochastic-depth") if c["metric"] == "test_error"]
    assert all(set(c["when"]) <= fields for c in claims)  # no misspelt field that would never match
    assert [c["value"] for c in claims if applies(c, config)] == [value]
