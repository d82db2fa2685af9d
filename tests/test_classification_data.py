"""The classification family's loaders, on small files written here in the datasets' released formats
(CIFAR python pickles, SVHN format-2 .mat, ImageNet JPEG folders). Also provides the writers the runners'
tests use (``write_cifar10`` is the registry test's "cifar10" data)."""

import pickle
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from kb.errors import BadInput, KBError
from runners.classification.augment import decode
from runners.classification.config import Config
from runners.classification.data import generate_images, load


def cifar_rows(rng, n: int) -> np.ndarray:
    return rng.integers(0, 256, (n, 3072), dtype=np.uint8)


def dump(path: Path, content: dict) -> None:
    """As the released batches: a protocol-2 pickle whose keys load as bytes (``encoding="bytes"``)."""
    path.write_bytes(pickle.dumps(content, protocol=2))


def write_cifar10(folder: Path, per_batch: int = 20, n_test: int = 50, seed: int = 0, skip: tuple = ()) -> dict:
    """``cifar-10-batches-py/`` under ``folder``: five training batches, the test batch and batches.meta.
    Each image's label is also painted as a bright bar (rows 4*label..4*label+3), so smoke runs learn."""
    rng = np.random.default_rng(seed)
    root = folder / "cifar-10-batches-py"
    root.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for name, n in [*((f"data_batch_{i}", per_batch) for i in range(1, 6)), ("test_batch", n_test)]:
        labels = rng.integers(0, 10, n).tolist()
        data = cifar_rows(rng, n)
        for row, label in zip(data, labels):
            row.reshape(3, 32, 32)[:, 3 * label:3 * label + 3, :] = 255
        arrays[name] = (data, labels)
        if name not in skip:
            dump(root / name, {b"batch_label": name.encode(), b"labels": labels, b"data": data,
                               b"filenames": [f"{name}_{i}.png".encode() for i in range(n)]})
    if "batches.meta" not in skip:
        dump(root / "batches.meta", {b"label_names": [f"class{i}".encode() for i in range(10)],
                                     b"num_cases_per_batch": per_batch, b"num_vis": 3072})
    return arrays


def write_cifar100(folder: Path, n_train: int = 40, n_test: int = 20, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    root = folder / "cifar-100-python"
    root.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for name, n in (("train", n_train), ("test", n_test)):
        fine = rng.integers(0, 100, n).tolist()
        coarse = [f // 5 for f in fine]
        data = cifar_rows(rng, n)
        arrays[name] = (data, fine, coarse)
        dump(root / name, {b"filenames": [b"x.png"] * n, b"batch_label": name.encode(), b"fine_labels": fine,
                           b"coarse_labels": coarse, b"data": data})
    dump(root / "meta", {b"fine_label_names": [f"fine{i}".encode() for i in range(100)],
                         b"coarse_label_names": [f"coarse{i}".encode() for i in range(20)]})
    return arrays


def write_svhn(folder: Path, n_train: int = 30, n_test: int = 20, n_extra: int = 0, seed: int = 0) -> dict:
    """SVHN format 2: X (32, 32, 3, N) uint8 and y (N, 1) in 1..10, 10 meaning the digit 0."""
    import scipy.io

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for name, n in (("train", n_train), ("test", n_test), ("extra", n_extra)):
        if not n:
            continue
        x = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
        y = rng.integers(1, 11, (n, 1)).astype(np.uint8)
        scipy.io.savemat(folder / f"{name}_32x32.mat", {"X": x, "y": y})
        arrays[name] = (x, y)
    return arrays


def write_imagenet(folder: Path, classes=("n01440764", "n01443537", "n02102040"), per_class: int = 3) -> None:
    """train/<wnid>/*.JPEG and val/<wnid>/*.JPEG, images of different sizes in a colour per class."""
    from PIL import Image

    for split, count in (("train", per_class), ("val", 2)):
        for c, wnid in enumerate(classes):
            (folder / split / wnid).mkdir(parents=True, exist_ok=True)
            for i in range(count):
                size = (40 + 7 * i, 36 + 5 * c)
                Image.new("RGB", size, (80 * c, 255 - 80 * c, 30 * i)).save(
                    folder / split / wnid / f"{wnid}_{i}.JPEG", quality=95)


def cifar_config(**changes) -> Config:
    return replace(Config(dataset="cifar10"), **changes)


def test_cifar10_pixels_labels_and_names_read_exactly(tmp_path):
    arrays = write_cifar10(tmp_path, per_batch=6, n_test=5)
    data = load(cifar_config(), tmp_path)
    # Rows are the R, G, B planes of 32x32, row-major (the dataset's page): pixel (c, y, x) is c*1024 + y*32 + x.
    first = arrays["data_batch_1"][0][2]
    assert data.train_images.dtype == torch.uint8 and data.train_images.shape == (30, 3, 32, 32)
    assert int(data.train_images[2, 1, 5, 7]) == first[1024 + 5 * 32 + 7]
    assert int(data.train_images[2, 2, 31, 0]) == first[2048 + 31 * 32]
    expected = np.concatenate([np.asarray(arrays[f"data_batch_{i}"][1]) for i in range(1, 6)])
    assert data.train_labels.dtype == torch.int64 and data.train_labels.tolist() == expected.tolist()
    assert data.test_labels.tolist() == arrays["test_batch"][1]
    assert np.array_equal(data.test_images.reshape(5, -1).numpy(), arrays["test_batch"][0])
    assert data.label_names == tuple(f"class{i}" for i in range(10)) and data.num_classes == 10
    assert data.name == "cifar10-test-subset" and not data.synthetic and data.val_images is None


def test_normalisation_is_the_training_images_channel_statistics(tmp_path):
    arrays = write_cifar10(tmp_path, per_batch=4, n_test=3)
    data = load(cifar_config(), tmp_path)
    train = np.concatenate([arrays[f"data_batch_{i}"][0] for i in range(1, 6)]).reshape(-1, 3, 1024)
    assert np.allclose(data.mean, train.transpose(1, 0, 2).reshape(3, -1).mean(1))
    assert np.allclose(data.std, train.transpose(1, 0, 2).reshape(3, -1).std(1, ddof=1))


def test_the_full_test_set_is_named_cifar10_test_and_limits_and_validation_cut_the_training_set(tmp_path):
    write_cifar10(tmp_path, per_batch=8, n_test=10_000)
    data = load(cifar_config(validation_size=10, train_limit=12), tmp_path / "cifar-10-batches-py")
    assert data.name == "cifar10-test"
    whole = load(cifar_config(), tmp_path)
    # The validation images are the last 10 training images; training keeps the first 12 of the rest.
    assert torch.equal(data.val_images, whole.train_images[-10:]) and torch.equal(data.val_labels, whole.train_labels[-10:])
    assert torch.equal(data.train_images, whole.train_images[:12])
    limited = load(cifar_config(test_limit=100), tmp_path)
    assert limited.name == "cifar10-test-subset" and len(limited.test_labels) == 100
    assert limited.fingerprint != whole.fingerprint


def test_generated_dataset_with_data_reads_what_the_folder_holds(tmp_path):
    write_cifar10(tmp_path / "c10", per_batch=2, n_test=2)
    write_cifar100(tmp_path / "c100")
    write_svhn(tmp_path / "svhn")
    write_imagenet(tmp_path / "imagenet")
    generated = Config(dataset="generated")
    assert load(generated, tmp_path / "c10").name == "cifar10-test-subset"
    assert load(generated, tmp_path / "c100").num_classes == 100
    assert load(generated, tmp_path / "svhn").name == "svhn-test-subset"
    assert load(generated, tmp_path / "imagenet").name == "imagenet-val-subset"
    (tmp_path / "none").mkdir()
    with pytest.raises(BadInput, match="no dataset found.*cifar-10-batches-py"):
        load(generated, tmp_path / "none")


def test_a_cifar10_folder_missing_test_batch_names_it(tmp_path):
    write_cifar10(tmp_path, per_batch=2, n_test=2, skip=("test_batch",))
    for config in (cifar_config(), Config(dataset="generated")):
        with pytest.raises(BadInput, match="lacks test_batch") as error:
            load(config, tmp_path)
        assert error.value.exit_code == 2 and "\n" not in str(error.value)


def test_a_real_dataset_without_data_says_which_folder_to_pass(tmp_path, monkeypatch):
    monkeypatch.delenv("KB_DATA", raising=False)
    with pytest.raises(BadInput, match="--data DIR.*cifar-100-python"):
        load(Config(dataset="cifar100"), None)


def test_a_pickle_naming_other_code_is_refused(tmp_path):
    write_cifar10(tmp_path, per_batch=2, n_test=2)

    class Exploit:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(pickle.dumps({b"data": Exploit()}, protocol=2))
    with pytest.raises(KBError, match="not a CIFAR python batch.*print is not part of a CIFAR batch"):
        load(cifar_config(), tmp_path)


def test_cifar100_fine_and_coarse_labels(tmp_path):
    arrays = write_cifar100(tmp_path)
    fine = load(Config(dataset="cifar100"), tmp_path)
    coarse = load(Config(dataset="cifar100", coarse=True), tmp_path)
    assert fine.train_labels.tolist() == arrays["train"][1] and fine.num_classes == 100
    assert coarse.test_labels.tolist() == arrays["test"][2] and coarse.num_classes == 20
    assert coarse.label_names[3] == "coarse3" and fine.label_names[99] == "fine99"
    assert np.array_equal(fine.train_images.reshape(40, -1).numpy(), arrays["train"][0])


def test_svhn_transposes_x_maps_label_10_to_digit_0_and_adds_extra(tmp_path):
    arrays = write_svhn(tmp_path, n_extra=7)
    data = load(Config(dataset="svhn", svhn_extra=True), tmp_path)
    x, y = arrays["train"]
    assert data.train_images.shape == (37, 3, 32, 32)
    assert int(data.train_images[4, 2, 10, 20]) == x[10, 20, 2, 4]  # X is (row, column, channel, image)
    assert data.train_labels[:30].tolist() == [0 if v == 10 else int(v) for v in y[:, 0]]
    assert int(data.train_images[30, 0, 1, 2]) == arrays["extra"][0][1, 2, 0, 0]
    # SVHN is divided by 255 (DenseNet Sec. 4.1), not standardised.
    assert data.mean == (0.0, 0.0, 0.0) and data.std == (255.0, 255.0, 255.0)
    with pytest.raises(BadInput, match="lacks test_32x32.mat"):
        (tmp_path / "test_32x32.mat").unlink()
        load(Config(dataset="svhn"), tmp_path)


def test_imagenet_folders_classes_decode_and_crops(tmp_path):
    write_imagenet(tmp_path)
    data = load(Config(dataset="imagenet", image_size=32), tmp_path)
    assert data.label_names == ("n01440764", "n01443537", "n02102040") and data.num_classes == 3
    assert len(data.train_images) == 9 and data.test_labels.tolist() == [0, 0, 1, 1, 2, 2]
    path = data.test_images.paths[2]
    # Evaluation: short side to 32 * 256 / 224 = 37 then a centre 32x32 crop: a flat colour stays exact-ish.
    image = decode(path, 32, None)
    assert image.shape == (3, 32, 32) and image.dtype == torch.uint8
    assert abs(int(image[0, 16, 16]) - 80) <= 3 and abs(int(image[1, 16, 16]) - 175) <= 3
    a = decode(data.train_images.paths[0], 24, torch.Generator().manual_seed(3))
    b = decode(data.train_images.paths[0], 24, torch.Generator().manual_seed(3))
    assert a.shape == (3, 24, 24) and torch.equal(a, b)
    (tmp_path / "val").rename(tmp_path / "valid")
    with pytest.raises(BadInput, match="lacks val/"):
        load(Config(dataset="imagenet"), tmp_path)


def test_generated_images_are_deterministic_and_labelled_in_range():
    a_images, a_labels = generate_images(50, 7, 16, seed=3)
    b_images, b_labels = generate_images(50, 7, 16, seed=3)
    assert torch.equal(a_images, b_images) and torch.equal(a_labels, b_labels)
    assert a_images.shape == (50, 3, 16, 16) and a_images.dtype == torch.uint8
    assert 0 <= a_labels.min() and a_labels.max() < 7
    assert not torch.equal(generate_images(50, 7, 16, seed=4)[0], a_images)
    data = load(Config(dataset="generated", generated_train=20, generated_test=10), None)
    assert data.synthetic and data.name == "generated-test" and len(data.test_labels) == 10
