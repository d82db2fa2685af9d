"""The head tier of kb search's ranking: papers whose title or abstract holds the whole query come
first, whatever BM25 says of the others (kb.search.ranked_ids_sqlite), checked against orders worked out
by hand from where each paper has the words."""

from kb.db import session_scope
from kb.ingest.sync import sync
from kb.search import search
from tests.conftest import write_paper

_GLOSSARY = (("点群", "point cloud"),)


def _catalog(settings):
    # "cloud" many times in a note only (a strong BM25 score, no head), once in a title, once in
    # an abstract; 点群 (the glossary's other name of "point cloud") in one abstract.
    write_paper(settings.papers, "notes-only", "2001.00001", "Unrelated Words Here",
                notes={"en": "cloud cloud cloud cloud cloud " + "point cloud " * 6})
    write_paper(settings.papers, "in-title", "2001.00002", "Cloud Robotics Survey")
    write_paper(settings.papers, "in-abstract", "2001.00003", "Another Survey",
                extra="abstract: We study the cloud and point cloud maps.\n")
    write_paper(settings.papers, "japanese-abstract", "2001.00004", "Lidar Maps", extra="abstract: 点群の地図。\n")
    sync(settings)


def _slugs(settings, query, glossary=None):
    with session_scope(settings) as session:
        return [h.paper.slug for h in search(query, session=session, glossary=glossary)]


def test_one_word_ranks_title_and_abstract_matches_above_a_note_that_repeats_it(kb_env):
    _catalog(kb_env)
    found = _slugs(kb_env, "cloud")
    assert set(found[:2]) == {"in-title", "in-abstract"} and found[2:] == ["notes-only"]


def test_one_glossary_term_is_in_the_head_where_any_of_its_forms_is(kb_env):
    _catalog(kb_env)
    found = _slugs(kb_env, "point cloud", glossary=_GLOSSARY)
    # in-abstract says "point cloud", japanese-abstract 点群; the note's repetitions rank last.
    assert set(found[:2]) == {"in-abstract", "japanese-abstract"} and found[2:] == ["notes-only"]


def test_several_words_are_in_the_head_only_where_the_title_or_abstract_holds_each(kb_env):
    _catalog(kb_env)
    # in-title has "cloud" in its title but "point" nowhere: no match at all; in-abstract has both.
    assert _slugs(kb_env, "point cloud") == ["in-abstract", "notes-only"]
    assert _slugs(kb_env, "cloud survey") == ["in-title", "in-abstract"] or \
        _slugs(kb_env, "cloud survey") == ["in-abstract", "in-title"]
