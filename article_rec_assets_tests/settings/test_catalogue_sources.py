"""Catalogue sources against a real HTTP server on 127.0.0.1 that answers like WordPress's REST API
and like a texas-tribune style JSON articles API; and against catalogue files."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from article_rec_assets.settings.catalogue_sources import (
    CatalogueSource,
    FileSource,
    JsonApiSource,
    WordPressSource,
)

# Settings


def test_source_settings_are_a_union_on_source_defaulting_to_file() -> None:
    adapter = TypeAdapter(CatalogueSource)
    assert adapter.validate_python({"path": "demo-city-paper/catalogue.jsonl"}) == FileSource(
        path="demo-city-paper/catalogue.jsonl"
    )
    wordpress = adapter.validate_python(
        {"source": "wordpress", "base_url": "https://democitypaper.example/", "exclude_tags": [77]}
    )
    assert isinstance(wordpress, WordPressSource)
    assert wordpress.base_url == "https://democitypaper.example"
    assert wordpress.exclude_tags == (77,)
    api = adapter.validate_python({"source": "json_api", "base_url": "https://api.demotribune.example"})
    assert isinstance(api, JsonApiSource) and api.article_path == "/api/v2/articles/{id}"

    class Holder(BaseModel):
        catalogue: CatalogueSource

    assert isinstance(
        Holder.model_validate({"catalogue": {"source": "file", "path": "x.csv"}}).catalogue, FileSource
    )
    with pytest.raises(ValidationError):
        adapter.validate_python({"source": "wordpress", "base_url": "https://x.example", "exclude_tag": [1]})
    with pytest.raises(ValidationError):
        adapter.validate_python({"source": "rss", "base_url": "https://x.example"})
    with pytest.raises(ValidationError, match="http"):
        WordPressSource(base_url="democitypaper.example")
    with pytest.raises(ValidationError, match=r"\{id\}"):
        JsonApiSource(base_url="https://x.example", article_path="/api/v2/articles/")
    with pytest.raises(ValidationError):
        WordPressSource(base_url="https://x.example", requests_per_second=0)
    with pytest.raises(ValidationError, match="frozen"):
        wordpress.concurrency = 8


def test_the_settings_import_nothing_of_the_project_but_settings() -> None:
    """A fresh interpreter that loads the site files holds no other module of the project."""
    code = (
        "import sys; from article_rec_assets.settings.sites import load_sites; load_sites();"
        "mods = sorted(m for m in sys.modules if m.startswith('article_rec_assets'));"
        "assert all(m.startswith('article_rec_assets.settings') for m in mods[1:]), mods;"
        "print(len(mods))"
    )
    run = subprocess.run([sys.executable, "-c", code], check=True, timeout=60, capture_output=True, text=True)
    assert int(run.stdout) >= 3  # the package, settings and its modules: the check saw them
