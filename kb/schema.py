"""The catalog's schema version, in a module of its own: ``kb.reader`` checks it without importing the ORM.

History: 2: run.kind, run.overrides; 3: paper.code, note.posted, note.important; 4: paper.star,
note.star, note.mentions; 5: source_file, SQLite's search index contentless (search_fts_doc); 6: SQLite's
search index kb.textindex's instead of FTS5 (search_posting, search_tokens, search_stats).
kb/db.py migrates older catalogs.
"""

SCHEMA_VERSION = 6
