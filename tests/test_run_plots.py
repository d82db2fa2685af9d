"""A run's own figures (``run.plot``) and pictures (``run.image``): kept in the record, drawn on the site."""

import base64
import io
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from kb.runs.context import Run, gray_png
from kb.site import figures
from kb.site.pages import generate
from kb.site.paths import run_page as run_page_path
from kb.site.snapshot import PaperView, RunView, Snapshot


def test_gray_png_decodes_to_the_same_pixels_with_an_independent_decoder():
    pixels = (np.arange(7 * 12).reshape(7, 12) * 3).astype(np.uint8)
    decoded = Image.open(io.BytesIO(gray_png(pixels)))
    assert decoded.mode == "L" and decoded.size == (12, 7)
    assert np.array_equal(np.asarray(decoded), pixels)


def make_run(tmp_path) -> Run:
    return Run(id="r1", dir=tmp_path, device="cpu", data_dir=None, seed=0, config=None)


def test_plot_and_image_are_kept_in_the_record_and_a_repeat_replaces(tmp_path):
    run = make_run(tmp_path)
    run.plot("MNIST loss", {"LSTM": ([1, 2], [2.0, 1.0]), "ADAM": ([1, 2], [2.0, 1.5])}, xlabel="optimizee step")
    run.plot("MNIST loss", {"LSTM": ([1, 2, 3], [2.0, 1.0, 0.5])}, xlabel="optimizee step", log=True)
    run.image("samples", np.array([[0.0, 1.0], [0.5, 0.25]]))
    (plot,) = run.info["plots"]
    assert plot == {"title": "MNIST loss", "xlabel": "optimizee step", "ylabel": "", "log": True,
                    "series": [["LSTM", [1.0, 2.0, 3.0], [2.0, 1.0, 0.5]]]}
    (image,) = run.info["images"]
    pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(image["png"]))))
    assert pixels.tolist() == [[0, 255], [128, 64]]
    with pytest.raises(ValueError, match="3 x values and 2 y values"):
        run.plot("bad", {"a": ([1, 2, 3], [1.0, 2.0])}, xlabel="x")
    with pytest.raises(ValueError, match="shape"):
        run.image("bad", np.zeros((2, 2, 3)))
    run.close()


def test_site_draws_the_plots_and_writes_the_pictures(tmp_path):
    run = make_run(tmp_path)
    run.plot("accuracy vs shared weight", {"test": ([-2.0, -1.0, 1.0, 2.0], [0.6, 0.7, 0.8, 0.75])},
             xlabel="shared weight", ylabel="accuracy")
    run.image("samples", np.eye(4, dtype=np.uint8) * 255)
    view = RunView(id="wann-1", runner="wann", paper_key="1906.04358", preset="cpu", status="succeeded",
                   verdict="", dataset="mnist-test", plots=tuple(run.info["plots"]), images=tuple(run.info["images"]))
    run.close()
    paper = PaperView(key="1906.04358", slug="wann", title="Weight Agnostic Neural Networks", runners=("wann",))
    snapshot = Snapshot(papers=(paper,), runs=(view,))
    plan = figures.plan(snapshot)
    chart, ((title, png),) = plan.results["wann-1"], plan.images["wann-1"]
    panel = plan.specs[chart]["panels"][0]
    assert panel["xlabel"] == "shared weight" and panel["series"][0][1] == [-2.0, -1.0, 1.0, 2.0]
    assert panel["title"] == "accuracy vs shared weight · accuracy" and panel["log"] is False
    assert png.endswith(".png") and title == "samples"
    assert figures.render(plan.specs, tmp_path / "docs") == 2
    svg = (tmp_path / "docs" / chart).read_text()
    assert "shared weight" in svg and "<polyline" in svg
    assert np.array_equal(np.asarray(Image.open(tmp_path / "docs" / png)), np.eye(4, dtype=np.uint8) * 255)
    pages = generate(snapshot)
    run_page = pages[run_page_path("wann-1")]
    assert "## Results" in run_page and chart.split("/")[-1] in run_page and png.split("/")[-1] in run_page
    assert png.split("/")[-1] in pages["paper/wann.md"]
    unchanged = replace(view)
    assert figures.plan(Snapshot(papers=(paper,), runs=(unchanged,))).results["wann-1"] == chart
