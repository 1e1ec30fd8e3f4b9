"""Ingestion: a window's objects from the bucket to reading sessions.

`bucket` (the hour folders), `compression` (gzip, damaged objects), `formats` (Snowplow's JSON and
TSV lines), `parsing` (one typed row per event, bad lines quarantined), `cleaning` (duplicates,
readers, sessions, pages), `engaged_time` (Snowplow's page-ping rules), `sessions` (bots, filters,
one row per reader and article) and `window_checks` (volume and freshness verdicts).
"""
