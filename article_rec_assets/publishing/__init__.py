"""Publishing: the serving database of docs/contract.md, section 1, on PostgreSQL or SQLite.

`schema` (tables, connections, UTC at the boundary), `swap` (a model written pending, then made
current in one transaction), `articles` and `catalogue_cache` (the catalogue's rows), `api` (what
the recommendation API reads).
"""
