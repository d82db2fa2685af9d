"""The DenseNet runner (arXiv 1608.06993): parameter counts of every preset against Table 2, torchvision's
published counts and a count computed here from the paper's layer rules; the network's structure; and the
runner through the CLI (the data-free verdict, a CIFAR-10 folder, a folder missing test_batch)."""

import json
import shutil

import pytest
import torch
from torch import nn

from kb.errors import BadInput
from runners.densenet.config import PRESETS, Config
from runners.densenet.model import architecture, from_config
from tests.conftest import ROOT
from tests.test_classification_data import write_cifar10

# Table 2's "Params" column (the 10-class networks; see papers/densenet/paper.yaml), in millions.
TABLE_2 = {"40-12": 1.0, "100-12": 7.0, "100-24": 27.2, "bc-100-12": 0.8, "bc-250-24": 15.3, "bc-190-40": 25.6}
# torchvision.models documentation (DenseNet121/169/201_Weights.IMAGENET1K_V1, "num_params"): the same networks.
TORCHVISION = {"imagenet-121": 7_978_856, "imagenet-169": 14_149_480, "imagenet-201": 20_013_928}


def paper_count(blocks, growth: int, *, bottleneck: bool, theta: float, stem: int, classes: int, imagenet: bool) -> int:
    """Parameters of a DenseNet from the rules of Sec. 3, written out layer by layer: BN has 2 per channel, convs
    have no bias, a layer sees c0 + i k maps, a bottleneck makes 4k, a transition keeps floor(theta m)."""
    count = 3 * stem * (49 if imagenet else 9) + (2 * stem if imagenet else 0)
    channels = stem
    for index, layers in enumerate(blocks):
        for i in range(layers):
            c = channels + i * growth
            if bottleneck:
                count += 2 * c + c * 4 * growth + 2 * 4 * growth + 4 * growth * growth * 9
            else:
                count += 2 * c + c * growth * 9
        channels += layers * growth
        if index < len(blocks) - 1:
            out = int(theta * channels)
            count += 2 * channels + channels * out
            channels = out
    return count + 2 * channels + channels * classes + classes


def count(config, classes: int | None = None) -> int:
    with torch.device("meta"):
        return sum(p.numel() for p in from_config(config, classes or config.num_classes).parameters())


@pytest.mark.parametrize("preset", sorted(TABLE_2))
def test_table_2_networks_have_the_papers_parameter_counts(preset):
    config = PRESETS[preset]
    n = (config.depth - 4) // (6 if config.bottleneck else 3)
    stem = 2 * config.growth if config.bottleneck else 16
    ours = count(config)
    assert ours == paper_count((n, n, n), config.growth, bottleneck=config.bottleneck, theta=config.compression,
                               stem=stem, classes=10, imagenet=False)
    assert round(ours / 1e6, 1) == TABLE_2[preset]


def test_densenet_bc_100_12_by_hand():
    # Block b (input c_b, 16 layers of 50 c + 5280: BN 2c, 1x1 48c, BN 96, 3x3 48*12*9), transitions BN + 1x1 to half:
    # 648 (stem 3*24*9) + 175680 + (432 + 216*108) + 242880 + (600 + 300*150) + 276480 + 684 (BN 342) + 3430 (FC).
    assert count(PRESETS["bc-100-12"]) == 769_162
    assert count(PRESETS["bc-100-12"], classes=100) == 769_162 + 342 * 90 + 90


@pytest.mark.parametrize("preset", ["imagenet-121", "imagenet-169", "imagenet-201", "imagenet-264"])
def test_imagenet_networks_match_torchvision_and_the_layer_rules(preset):
    config = PRESETS[preset]
    ours = count(config)
    assert ours == paper_count(config.blocks, 32, bottleneck=True, theta=0.5, stem=64, classes=1000, imagenet=True)
    if preset in TORCHVISION:
        assert ours == TORCHVISION[preset]


def test_structure_channels_and_dropout_after_every_conv_but_the_first():
    model = from_config(Config(dropout=0.2), 10)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    drops = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    assert len(convs) == 1 + 3 * 16 * 2 + 2 and len(drops) == len(convs) - 1 and all(d.p == 0.2 for d in drops)
    assert convs[0].out_channels == 24 and model.classifier.in_features == 342
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert model.eval()(x).shape == (1, 10)
        # After the first dense block: 24 + 16 * 12 maps at 32x32.
        assert model.features[:2](x).shape == (1, 216, 32, 32)
    with torch.device("meta"):  # shapes only: 8M weights need no initialising here
        model, example = architecture(PRESETS["imagenet-121"])
    assert example.shape == (1, 3, 224, 224) and isinstance(model.features[3], nn.MaxPool2d)


def test_depths_that_do_not_divide_into_three_blocks_are_refused():
    with pytest.raises(BadInput, match="6n \\+ 4"):
        Config(depth=101)
    with pytest.raises(BadInput, match="3n \\+ 4"):
        Config(depth=41, bottleneck=False, compression=1.0)


def test_architecture_only_reproduces_the_parameter_claim(kb, kb_env):
    shutil.copytree(ROOT / "papers" / "densenet", kb_env.papers / "densenet", ignore=shutil.ignore_patterns("runs"))
    assert kb("sync").code == 0
    result = kb("reproduce", "densenet", "--config", "bc-100-12", "--architecture-only", "--json")
    assert result.code == 0, result.err
    (verdict,) = [v for v in json.loads(result.out)["verdicts"] if v["metric"] == "parameters"]
    assert verdict["verdict"] == "reproduced" and verdict["claimed"] == 0.8


def test_smoke_trains_on_a_cifar10_folder_and_a_missing_test_batch_is_one_line(kb, kb_env, tmp_path):
    write_cifar10(tmp_path / "c10", per_batch=10, n_test=20)
    result = kb("reproduce", "densenet", "--config", "smoke", "--device", "cpu", "--data", tmp_path / "c10", "--json")
    assert result.code == 0, result.err
    record = json.loads(result.out)
    assert record["dataset"] == "cifar10-test-subset" and 0 <= record["final"]["test_error"] <= 100
    write_cifar10(tmp_path / "broken", per_batch=2, n_test=2, skip=("test_batch",))
    failed = kb("reproduce", "densenet", "--config", "smoke", "--device", "cpu", "--data", tmp_path / "broken")
    # Refused before training: bad input (exit 2), the loader's one line, and no run left behind.
    (error,) = [line for line in failed.err.splitlines() if line.startswith("kb: error:")]
    assert failed.code == 2 and error.startswith("kb: error: CIFAR-10 folder") and "lacks test_batch" in error
    assert "failed and is recorded" not in failed.err and "Traceback" not in failed.err
