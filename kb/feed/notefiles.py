"""What only a paper's note files hold: the ★ (``important``), the post date, the language of each note."""

from kb.errors import KBError
from kb.notes import ParsedNote, parse_file
from kb.paperfile import note_files
from kb.settings import Settings


def paper_notes(settings: Settings, slug: str) -> list[ParsedNote]:
    """The parsed notes of ``papers/<slug>/``; a broken file is skipped (``kb sync`` names it)."""
    notes = []
    for path in note_files(settings.papers / slug):
        try:
            notes += parse_file(path)[0]
        except KBError:
            continue
    return notes
