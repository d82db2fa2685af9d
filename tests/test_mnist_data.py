"""The MNIST family's loader: IDX parsing, layouts, errors. Also provides the MNIST runners' tests
with ``write_mnist`` (small MNIST folders in the real IDX format) and ``smoke_through_cli``."""

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from kb.errors import KBError
from runners.common.epochs import epoch_order
from runners.mnist.data import load_mnist

REAL_MNIST = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "mnist"
NAMES = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
         "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}


def write_idx(path: Path, array: np.ndarray, magic: int, compress: bool) -> None:
    """IDX by hand: big-endian magic, big-endian sizes, uint8 payload (optionally gzipped)."""
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)


def write_mnist(folder: Path, n_train: int = 300, n_test: int = 100, compress: bool = True, seed: int = 0) -> dict:
    """Four MNIST files with random digits whose label is also drawn as a bright square, so the
    smoke runs have something learnable."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for split, n in (("train", n_train), ("test", n_test)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
        for i, label in enumerate(labels):
            row, col = divmod(int(label), 5)
            images[i, 4 + 10 * row: 12 + 10 * row, 2 + 5 * col: 6 + 5 * col] = 255
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = images, labels
    suffix = ".gz" if compress else ""
    for key, name in NAMES.items():
        write_idx(folder / f"{name}{suffix}", arrays[key], 2051 if key.endswith("images") else 2049, compress)
    return arrays


def test_reads_gzipped_flat_folder_exactly(tmp_path):
    arrays = write_mnist(tmp_path, n_train=30, n_test=20)
    data = load_mnist(tmp_path)
    for key in NAMES:
        tensor = getattr(data, key)
        assert tensor.dtype == torch.uint8
        assert np.array_equal(tensor.numpy(), arrays[key])
    assert data.train_images.shape == (30, 28, 28) and data.test_labels.shape == (20,)
    assert data.dataset_name == "mnist-test-subset"


def test_torchvision_layout_uncompressed_and_kb_data(tmp_path, monkeypatch):
    arrays = write_mnist(tmp_path / "MNIST" / "raw", n_train=12, n_test=10000, compress=False)
    monkeypatch.setenv("KB_DATA", str(tmp_path))
    data = load_mnist(None)
    assert data.folder == tmp_path / "MNIST" / "raw"
    assert np.array_equal(data.test_labels.numpy(), arrays["test_labels"])
    assert data.dataset_name == "mnist-test"
    assert data.subset(5, 100).dataset_name == "mnist-test-subset"


def test_fingerprint_follows_the_data(tmp_path):
    write_mnist(tmp_path / "a", n_train=20, n_test=10, seed=1)
    write_mnist(tmp_path / "b", n_train=20, n_test=10, seed=1, compress=False)
    write_mnist(tmp_path / "c", n_train=20, n_test=10, seed=2)
    a, b, c = (load_mnist(tmp_path / name) for name in "abc")
    assert a.fingerprint() == b.fingerprint()  # same pixels, gzipped or not
    assert a.fingerprint() != c.fingerprint()
    assert a.fingerprint() != a.subset(10, 0).fingerprint()
    assert len(a.fingerprint()) == 16


def test_missing_files_name_what_and_where(tmp_path, monkeypatch):
    monkeypatch.delenv("KB_DATA", raising=False)
    with pytest.raises(KBError) as missing:
        load_mnist(tmp_path)
    message = str(missing.value)
    for name in NAMES.values():
        assert name in message
    assert str(tmp_path) in message and str(tmp_path / "MNIST" / "raw") in message
    assert "--set download=true" in message and "torchvision" in message
    with pytest.raises(KBError, match="--data"):
        load_mnist(None)
    write_mnist(tmp_path, n_train=5, n_test=5)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(KBError, match="lacks t10k-labels-idx1-ubyte"):
        load_mnist(tmp_path)


@pytest.mark.parametrize("damage, expected", [
    ("magic", "magic number 2049, expected 2051"),
    ("truncate", "truncated or corrupt"),
    ("gzip", "not a readable gzip"),
])
def test_corrupt_files_are_reported(tmp_path, damage, expected):
    write_mnist(tmp_path, n_train=5, n_test=5)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    raw = gzip.decompress(path.read_bytes())
    if damage == "magic":
        path.write_bytes(gzip.compress((2049).to_bytes(4, "big") + raw[4:]))
    elif damage == "truncate":
        path.write_bytes(gzip.compress(raw[:-100]))
    else:
        path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(KBError, match=expected) as error:
        load_mnist(tmp_path)
    assert str(path) in str(error.value)


def test_labels_must_match_images(tmp_path):
    write_mnist(tmp_path, n_train=5, n_test=5)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(4, np.uint8), 2049, compress=True)
    with pytest.raises(KBError, match="5 train images but 4 labels"):
        load_mnist(tmp_path)


def test_epoch_order_depends_only_on_seed_and_epoch():
    assert torch.equal(epoch_order(100, 3, 7), epoch_order(100, 3, 7))
    assert not torch.equal(epoch_order(100, 3, 7), epoch_order(100, 3, 8))
    assert sorted(epoch_order(100, 3, 7).tolist()) == list(range(100))


def test_real_mnist_matches_its_published_facts():
    assert REAL_MNIST.is_dir(), f"{REAL_MNIST}: the shared MNIST copy must sit beside the checkout (../shared)"
    data = load_mnist(REAL_MNIST)
    # /work/shared/datasets/mnist/SOURCE.md, "Decoded checks"
    assert data.train_images.shape == (60000, 28, 28) and data.test_images.shape == (10000, 28, 28)
    assert data.train_labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert data.test_labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    counts = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert torch.bincount(data.train_labels.long()).tolist() == counts
    assert round(data.train_images.double().mean().item() / 255, 6) == 0.130660
    assert data.dataset_name == "mnist-test"


def _fake_torchvision(monkeypatch, mnist_class):
    import sys
    import types

    package = types.ModuleType("torchvision")
    datasets = types.ModuleType("torchvision.datasets")
    datasets.MNIST = mnist_class
    package.datasets = datasets
    monkeypatch.setitem(sys.modules, "torchvision", package)
    monkeypatch.setitem(sys.modules, "torchvision.datasets", datasets)


def test_download_fetches_into_the_data_folder_only_when_asked(tmp_path, monkeypatch):
    calls = []

    class FakeMNIST:            # torchvision's MNIST(root, train, download) writes ROOT/MNIST/raw/
        def __init__(self, root, train=True, download=False):
            calls.append((root, train, download))
            write_mnist(Path(root) / "MNIST" / "raw", n_train=20, n_test=10, compress=False)

    _fake_torchvision(monkeypatch, FakeMNIST)
    with pytest.raises(KBError, match="download=true"):
        load_mnist(tmp_path / "data")
    assert calls == []
    data = load_mnist(tmp_path / "data", fetch=True)
    assert len(data.train_labels) == 20 and data.folder == tmp_path / "data" / "MNIST" / "raw"
    assert calls == [(str(tmp_path / "data"), True, True), (str(tmp_path / "data"), False, True)]
    load_mnist(tmp_path / "data", fetch=True)                       # already there: nothing fetched
    assert len(calls) == 2


def test_download_without_torchvision_or_network_is_one_clear_line(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "torchvision", None)            # import fails
    monkeypatch.setitem(sys.modules, "torchvision.datasets", None)
    with pytest.raises(KBError, match="needs torchvision: pip install torchvision"):
        load_mnist(tmp_path, fetch=True)

    class Offline:
        def __init__(self, root, train=True, download=False):
            raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")

    _fake_torchvision(monkeypatch, Offline)
    with pytest.raises(KBError, match="could not download MNIST into .*check the network"):
        load_mnist(tmp_path, fetch=True)


def smoke_through_cli(kb, settings, tmp_path, runner: str, slug: str) -> dict:
    """``kb reproduce RUNNER --config smoke --data`` on a small MNIST in the IDX format, with the
    shipped paper entry (and its claims) in the catalog; returns the run as ``kb runs --json`` shows it."""
    import json
    import shutil

    from tests.conftest import ROOT

    (settings.papers / slug).mkdir()
    shutil.copy(ROOT / "papers" / slug / "paper.yaml", settings.papers / slug / "paper.yaml")
    assert kb("sync").code == 0
    missing = kb("reproduce", runner, "--config", "smoke")
    assert missing.code != 0 and "--data" in missing.err and "train-images-idx3-ubyte" in missing.err
    assert "Traceback" not in missing.err
    write_mnist(tmp_path / "mnist")
    result = kb("reproduce", runner, "--config", "smoke", "--data", str(tmp_path / "mnist"))
    assert result.code == 0, result.err
    runs = json.loads(kb("runs", "--runner", runner, "--json").out)
    succeeded = [r for r in runs if r["status"] == "succeeded"]
    assert len(succeeded) == 1
    return succeeded[0]


@pytest.mark.parametrize("runner", ["bnn", "kervolution", "learning-to-learn", "pixelrnn", "wann"])
def test_a_run_without_mnist_is_refused_as_bad_input_and_leaves_no_run(kb, tmp_path, runner):
    empty = tmp_path / "empty"
    empty.mkdir()
    before = kb("runs", "--json").out.count(f'"runner": "{runner}"')
    failed = kb("reproduce", runner, "--config", "smoke", "--device", "cpu", "--data", empty)
    (error,) = [line for line in failed.err.splitlines() if line.startswith("kb: error:")]
    assert failed.code == 2 and error.startswith("kb: error: MNIST not found: expected train-images-idx3-ubyte")
    assert "failed and is recorded" not in failed.err and "Traceback" not in failed.err
    assert kb("runs", "--json").out.count(f'"runner": "{runner}"') == before


def test_keep_best_takes_the_lowest_validation_score_and_ties_go_to_the_later_epoch():
    from runners.common.epochs import keep_best

    model = torch.nn.Linear(1, 1, bias=False)
    best = {"val": float("inf"), "epoch": 0, "test": float("nan"), "model": None}
    for epoch, (val, test, weight) in enumerate([(3.0, 30.0, 1.0), (2.0, 20.0, 2.0), (2.5, 25.0, 3.0),
                                                 (2.0, 21.0, 4.0)], 1):
        with torch.no_grad():
            model.weight.fill_(weight)
        best = keep_best(best, model, epoch=epoch, on="val", val=val, test=test)
    with torch.no_grad():
        model.weight.fill_(9.0)          # the kept weights are a copy, not the live tensor
    assert (best["epoch"], best["val"], best["test"]) == (4, 2.0, 21.0)
    assert best["model"]["weight"].item() == 4.0
