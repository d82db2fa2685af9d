"""RoR (arXiv 1608.02908) as the family's residual network with extra shortcut levels: the parameters the
root and middle-level shortcuts add (computed by hand), the Wide ResNet underneath against the WRN paper's
published counts, where the shortcuts join, and stochastic depth shared with the Stochastic Depth runner."""

import pytest
import torch
import torch.nn.functional as F

from kb.paperfile import parse_paper_yaml
from kb.runs.config import to_dict
from kb.runs.verdict import applies
from runners.classification import resnet
from runners.ror.config import PRESETS
from runners.ror.model import architecture
from runners.stochastic_depth import model as stochastic_depth_model
from tests.conftest import ROOT


def count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def wrn(blocks_per_stage: int, k: int, levels: int = 1, classes: int = 10) -> resnet.ResNet:
    with torch.device("meta"):
        return resnet.ResNet(blocks_per_stage=blocks_per_stage, widths=(16 * k, 32 * k, 64 * k), num_classes=classes,
                             kind="preact", shortcut="projection", survival_rule="linear", survival_last=0.5,
                             ror_levels=levels)


def projection_by_hand(cin: int, cout: int) -> int:
    return cin * cout + 2 * cout  # a 1x1 conv without bias and its BN


def wrn_by_hand(n: int, k: int, classes: int = 10) -> int:
    """WRN-(6n+4)-k from Zagoruyko & Komodakis' layer table: a 3x3 stem conv of 16, three stages of n
    pre-activation blocks (BN, 3x3 conv, BN, 3x3 conv) of 16k, 32k, 64k channels, a 1x1 conv on each
    stage's first block where the channels change, a final BN and the classifier."""
    total, cin = 9 * 3 * 16, 16
    for width in (16 * k, 32 * k, 64 * k):
        for b in range(n):
            inp = cin if b == 0 else width
            total += 2 * inp + 9 * inp * width + 2 * width + 9 * width * width + (inp * width if inp != width else 0)
        cin = width
    return total + 2 * cin + cin * classes + classes


def test_the_wide_resnet_underneath_matches_the_wrn_papers_counts():
    # Zagoruyko & Komodakis (arXiv 1605.07146): WRN-40-4 8.9M, WRN-28-10 36.5M (Table of CIFAR results).
    assert round(count(wrn(6, 4)) / 1e6, 1) == 8.9
    assert round(count(wrn(4, 10)) / 1e6, 1) == 36.5
    assert count(wrn(9, 4)) == wrn_by_hand(9, 4) == 13_599_450


def test_ror_shortcuts_add_the_hand_counted_projections():
    # RoR-3-WRN58-4: root 16 -> 256 (stride 4), stage shortcuts 16 -> 64, 64 -> 128, 128 -> 256.
    stages = projection_by_hand(16, 64) + projection_by_hand(64, 128) + projection_by_hand(128, 256)
    root = projection_by_hand(16, 256)
    assert count(wrn(9, 4, levels=2)) - count(wrn(9, 4)) == root == 4_608
    assert count(wrn(9, 4, levels=3)) - count(wrn(9, 4)) == root + stages == 47_488
    # On the original ResNet-110 the first stage keeps 16 channels: its middle-level shortcut is an identity.
    with torch.device("meta"):
        plain, ror3 = (resnet.ResNet(blocks_per_stage=18, widths=(16, 32, 64), num_classes=10, kind="original",
                                     shortcut="zero-pad", survival_rule="linear", survival_last=0.5, ror_levels=levels)
                       for levels in (1, 3))
    assert count(ror3) - count(plain) == projection_by_hand(16, 32) + projection_by_hand(32, 64) + \
        projection_by_hand(16, 64) == 3_904


@pytest.mark.parametrize("levels, joined", [(1, []), (2, [(2, 1)]), (3, [(0, 1), (1, 1), (2, 1)])])
def test_root_and_middle_shortcuts_join_at_the_last_block_of_their_stage(levels, joined):
    torch.manual_seed(0)
    model = resnet.ResNet(blocks_per_stage=2, widths=(8, 16, 32), num_classes=10, kind="preact",
                          shortcut="projection", survival_rule="constant", survival_last=1.0, ror_levels=levels).eval()
    seen = []
    for s, stage in enumerate(model.stages):
        for b, block in enumerate(stage):
            block.register_forward_pre_hook(
                lambda module, args, s=s, b=b: seen.append((s, b)) if args[2] is not None else None)
    with torch.no_grad():
        model(torch.randn(1, 3, 32, 32))
    assert seen == joined


def test_the_root_shortcut_carries_the_stem_to_the_end_when_every_block_is_dropped():
    """With every block dropped in training (RoR-2 on pre-activation blocks of 16 channels throughout, so a
    dropped transition block is 2x2 average pooling), the body is the stem's features pooled to 8x8 plus
    their root projection: the shortcut levels still carry the signal."""
    torch.manual_seed(0)
    model = resnet.ResNet(blocks_per_stage=2, widths=(16, 16, 16), num_classes=10, kind="preact",
                          shortcut="zero-pad", survival_rule="linear", survival_last=0.5, ror_levels=2).train()
    model.gates = lambda: [False] * len(model.survival)
    stem = model.stem(torch.randn(2, 3, 32, 32))
    model.root.eval()  # its BN in eval mode, so the reference below sees the same normalisation
    expected = F.avg_pool2d(stem, 4) + model.root(stem)
    assert torch.allclose(model.body(stem), expected, atol=1e-6)


def test_stochastic_depth_is_the_same_code_in_both_runners():
    ror_model = architecture(PRESETS["wrn58-4-sd"])[0]
    assert type(ror_model) is resnet.ResNet and stochastic_depth_model.resnet is resnet
    assert ror_model.survival == resnet.survival_probabilities(27, "linear", 0.5)


def test_the_headline_preset_is_ror3_wrn58_4_with_stochastic_depth():
    config = PRESETS["wrn58-4-sd"]
    assert 6 * config.blocks_per_stage + 4 == 58 and config.widths == (64, 128, 256)
    assert (config.block, config.ror_levels, config.survival_rule, config.survival_last) == ("preact", 3, "linear", 0.5)
    assert {PRESETS[p].dataset for p in ("wrn58-4-sd", "wrn58-4-sd-c100", "wrn58-4-sd-svhn")} == \
        {"cifar10", "cifar100", "svhn"}


@pytest.mark.parametrize("preset, value", [("wrn58-4-sd", 3.77), ("wrn58-4-sd-c100", 19.73), ("wrn58-4-sd-svhn", 1.59),
                                           ("pre-110-sd", None)])
def test_each_preset_meets_the_setting_of_its_abstract_claim(preset, value):
    config = to_dict(PRESETS[preset])
    text = (ROOT / "papers/ror/paper.yaml").read_text(encoding="utf-8")
    claims = parse_paper_yaml(text, where="ror", folder_slug="ror").fields["claims"]
    assert all(set(c["when"]) <= set(config) for c in claims)  # no misspelt field that would never match
    errors = [c["value"] for c in claims if c["metric"] == "test_error" and applies(c, config)]
    assert errors == ([value] if value else [])
