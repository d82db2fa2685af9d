"""The curated papers/ that ships with kb: complete, well-formed, and buildable offline."""

import re

import pytest
import yaml

from kb.ids import parse_id
from kb.paperfile import parse_paper_yaml
from tests.conftest import ROOT, SHARED

PAPERS = ROOT / "papers"
FOLDERS = sorted(p for p in PAPERS.iterdir() if p.is_dir())
TAGS = {"detection", "segmentation", "classification", "architecture", "compression", "generative", "video", "audio",
        "language-model", "translation", "reinforcement-learning", "nas", "optimization", "distillation", "3d",
        "real-time", "gan", "rnn", "self-supervised", "calibration", "planning", "quantization", "inpainting", "multi-task"}


def _seed_ids() -> set[str]:
    """Every id listed in ../shared/seed-papers.md (the papers our users' notes discuss)."""
    text = (SHARED / "seed-papers.md").read_text(encoding="utf-8")
    ids = set()
    for row in text.splitlines():
        cells = [c.strip() for c in row.split("|")]
        if len(cells) > 3 and re.match(r"^(doi:|\d{4}\.\d{4,5})", cells[2]):
            ids.add(parse_id(cells[2].split()[0]).key)
    return ids


def test_every_seed_paper_has_a_folder():
    shipped = {parse_paper_yaml((f / "paper.yaml").read_text(encoding="utf-8"), where=f.name, folder_slug=f.name).key
               for f in FOLDERS}
    seeds = _seed_ids()
    assert len(seeds) == 52
    assert seeds <= shipped, sorted(seeds - shipped)


@pytest.mark.parametrize("folder", FOLDERS, ids=[f.name for f in FOLDERS])
def test_paper_folder_is_complete_and_valid(folder):
    paper = parse_paper_yaml((folder / "paper.yaml").read_text(encoding="utf-8"), where=folder.name, folder_slug=folder.name)
    assert paper.fields["authors"] and paper.fields["year"]
    assert set(paper.fields["tags"]) <= TAGS, set(paper.fields["tags"]) - TAGS
    for claim in paper.fields["claims"]:
        assert claim["source"].strip(), claim
    for lang, first_section in (("ja", "## 概要"), ("en", "## Summary")):
        text = (folder / f"notes.{lang}.md").read_text(encoding="utf-8")
        front = yaml.safe_load(text.split("---")[1])
        assert front["lang"] == lang and parse_id(str(front["paper"])).key == paper.key
        assert first_section in text


def test_ids_and_slugs_are_unique():
    parsed = [parse_paper_yaml((f / "paper.yaml").read_text(encoding="utf-8"), where=f.name, folder_slug=f.name) for f in FOLDERS]
    assert len({p.key for p in parsed}) == len(parsed)
    assert len({p.slug for p in parsed}) == len(parsed)


def test_the_shipped_catalog_syncs_offline_without_problems(kb_env, monkeypatch):
    from kb.ingest.sync import sync
    from kb.settings import load_settings

    monkeypatch.setenv("KB_PAPERS", str(PAPERS))
    report = sync(load_settings())
    assert report.problems == [] and report.papers == len(FOLDERS) and report.notes >= 2 * len(FOLDERS)


def test_shipped_runners_list_exactly_their_presets_and_claims_select_on_config_fields():
    import importlib

    from kb.runs.registry import load_registry

    registry = load_registry()
    claims = {}
    for folder in FOLDERS:
        paper = parse_paper_yaml((folder / "paper.yaml").read_text(encoding="utf-8"), where=folder.name,
                                 folder_slug=folder.name)
        claims[paper.key] = paper.fields["claims"]
    for spec in registry.specs():
        presets = importlib.import_module(spec.config).PRESETS
        # The first preset is what `kb reproduce NAME` runs (a runner may call it "default" or by its network).
        assert list(spec.presets) == list(presets), spec.name
        assert set(spec.cpu_presets) <= set(spec.presets), spec.name
        assert spec.cpu_default is None or spec.cpu_default in spec.cpu_presets, spec.name
        config_fields = set(vars(presets[spec.presets[0]]))
        for claim in claims.get(spec.paper, []):
            assert set(claim.get("when") or {}) <= config_fields, (spec.name, claim)
