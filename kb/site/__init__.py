"""The static site: pages generated from the catalog at build time, rendered by MkDocs Material.

``snapshot`` reads the catalog into plain records; ``pages`` (with ``paths`` and ``claims``),
``figures`` and ``search_index`` turn them into Markdown pages, figure files and the search index
without touching the catalog; ``safe_markdown`` keeps user content inert when MkDocs renders it;
``build`` writes everything out and runs MkDocs (design.md, Site).
"""
