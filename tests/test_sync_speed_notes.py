"""``note_files`` and ``note_names`` (sync's note paths from the folder listing it already made)
name what globbing ``notes.*.md`` and ``notes/*.md`` names, in the same order."""

from pathlib import Path

from kb.paperfile import note_files


def globbed(folder: Path) -> list[Path]:
    """The reference: the two globs note_files made before it listed the folder once."""
    files = sorted(folder.glob("notes.*.md"))
    if (folder / "notes").is_dir():
        files += sorted((folder / "notes").glob("*.md"))
    return files


def test_note_files_are_the_globs(tmp_path):
    folder = tmp_path / "yolo"
    (folder / "notes" / "sub.md").mkdir(parents=True)      # a folder named like a note: globbed too
    for name in ("notes.ja.md", "notes.en.md", "notes..md", "notes.md", "Notes.de.md", ".notes.x.md", "paper.yaml",
                 "notes.ja.md.bak", "notes/b.md", "notes/a.md", "notes/.hidden.md", "notes/c.txt"):
        (folder / name).write_text("x", encoding="utf-8")
    assert note_files(folder) == globbed(folder)
    assert [p.relative_to(folder).as_posix() for p in note_files(folder)] == [
        "notes..md", "notes.en.md", "notes.ja.md", "notes/.hidden.md", "notes/a.md", "notes/b.md", "notes/sub.md"]


def test_a_folder_without_notes_or_missing(tmp_path):
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "notes").write_text("a file, not a folder", encoding="utf-8")
    assert note_files(tmp_path / "p") == globbed(tmp_path / "p") == []
    assert note_files(tmp_path / "missing") == globbed(tmp_path / "missing") == []
