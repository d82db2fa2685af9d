"""FileChanges resolves its root once (a sync reads thousands of files): what escapes the root is
still refused, by ``..``, by an absolute path, and by a link."""

import os

import pytest

from kb.errors import BadInput
from kb.files import FileChanges


def test_reads_inside_and_refuses_what_escapes(tmp_path):
    root, outside = tmp_path / "papers", tmp_path / "secret"
    (root / "yolo").mkdir(parents=True)
    outside.mkdir()
    (root / "yolo" / "paper.yaml").write_text("id: x\n", encoding="utf-8")
    (outside / "paper.yaml").write_text("no\n", encoding="utf-8")
    os.symlink(outside, root / "linked")
    files = FileChanges(root)
    assert files.read("yolo/paper.yaml") == "id: x\n" and files.read("yolo/notes.ja.md") is None
    for escaping in ("../secret/paper.yaml", str(outside / "paper.yaml"), "linked/paper.yaml"):
        with pytest.raises(BadInput, match="is outside"):
            files.read(escaping)
        with pytest.raises(BadInput, match="is outside"):
            files.write(escaping, "changed\n")
    assert (outside / "paper.yaml").read_text(encoding="utf-8") == "no\n"
