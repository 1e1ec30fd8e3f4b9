"""Catalogue: which paths are articles, with their titles and publish times.

`http` (the polite client), one module per source kind (`wordpress`, `json_api`, `file`),
`articles` (what a source answers, and the reasons a path is not an article), `resolver` (paths
to articles through the cache) and `snapshot` (the catalogue as of a window).
"""
