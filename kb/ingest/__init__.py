"""The write side: sources (arXiv metadata, note files, ``papers/``, run files) into the catalog.

``add`` (arXiv -> ``paper.yaml`` + catalog), ``notes`` (``kb import``, ``kb note --edit``),
``sync`` (the whole catalog rebuilt from files), ``edits`` (``kb tag``, ``kb remove``). Nothing on
the read side (``kb.queries``, ``kb.search``, ``kb/site``, CLI listings) imports this package.
"""
