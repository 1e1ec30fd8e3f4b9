"""The article catalogue as of a time: which articles exist and which can be recommended."""

import pandas as pd
import pytest

from article_rec_assets.catalogue.file import read_catalogue_file
from article_rec_assets.catalogue.snapshot import CATALOGUE_COLUMNS, catalogue_as_of, recommendable
from article_rec_assets.settings.sites import SiteConfig, load_sites

AS_OF = pd.Timestamp("2024-05-10T00:00:00Z")


@pytest.fixture(scope="module")
def city() -> SiteConfig:
    return load_sites()["demo-city-paper"]


def raw(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["external_id", "path", "title", "published_at"])


def reasons(catalogue: pd.DataFrame) -> dict[str, object]:
    return {
        row.external_id: (None if pd.isna(row.exclude_reason) else row.exclude_reason)
        for row in catalogue.itertuples()
    }


def test_as_of_leaves_out_articles_published_at_or_after_it(city):
    catalogue = catalogue_as_of(
        raw(
            [
                ("1", "/article/1/a/", "Before", "2024-05-09T23:59:59Z"),
                ("2", "/article/2/b/", "Exactly at", "2024-05-10T00:00:00Z"),
                ("3", "/article/3/c/", "After", "2024-05-11T08:00:00Z"),
                ("4", "/article/4/d/", "Other zone, before", "2024-05-10T01:00:00+02:00"),
            ]
        ),
        city,
        AS_OF,
    )
    assert catalogue["external_id"].tolist() == ["1", "4"]
    assert catalogue["exclude_reason"].isna().all()
    assert catalogue["published_at"].tolist() == [
        pd.Timestamp("2024-05-09T23:59:59Z"),
        pd.Timestamp("2024-05-09T23:00:00Z"),
    ]
    assert list(catalogue.columns) == list(CATALOGUE_COLUMNS)


def test_the_same_raw_catalogue_seen_from_a_later_time(city):
    frame = raw(
        [
            ("1", "/article/1/a/", "A", "2024-05-09T12:00:00Z"),
            ("2", "/article/2/b/", "B", "2024-05-11T12:00:00Z"),
        ]
    )
    assert catalogue_as_of(frame, city, AS_OF)["external_id"].tolist() == ["1"]
    assert catalogue_as_of(frame, city, pd.Timestamp("2024-05-12T00:00:00Z"))["external_id"].tolist() == [
        "1",
        "2",
    ]


def test_exclude_reasons(city):
    catalogue = catalogue_as_of(
        raw(
            [
                ("10", "/article/10/fine/", "Fine", "2024-05-01T08:00:00Z"),
                ("11", "/article/11/no-date/", "No date", ""),
                ("12", "/article/12/null-date/", "Null date", None),
                ("13", "/article/13/garbled/", "Garbled date", "last tuesday"),
                ("14", "/sponsored/14/", "Wrong path", "2024-05-01T08:00:00Z"),
                # 3650 days is the limit: 3651 days old is too old, exactly 3650 is not.
                ("15", "/article/15/ancient/", "Too old", str(AS_OF - pd.Timedelta(days=3651))),
                ("16", "/article/16/just-in/", "At the limit", str(AS_OF - pd.Timedelta(days=3650))),
            ]
        ),
        city,
        AS_OF,
    )
    assert reasons(catalogue) == {
        "10": None,
        "11": "no_publish_date",
        "12": "no_publish_date",
        "13": "no_publish_date",
        "14": "failed_site_validation",
        "15": "too_old",
        "16": None,
    }
    assert recommendable(catalogue)["external_id"].tolist() == ["10", "16"]


def test_age_limit_comes_from_the_site(city):
    site = city.model_copy(
        update={"training": city.training.model_copy(update={"article_age_limit_days": 2})}
    )
    catalogue = catalogue_as_of(
        raw(
            [
                ("1", "/article/1/a/", "3 days", "2024-05-07T00:00:00Z"),
                ("2", "/article/2/b/", "2 days", "2024-05-08T00:00:00Z"),
                ("3", "/article/3/c/", "1 day", "2024-05-09T00:00:00Z"),
            ]
        ),
        site,
        AS_OF,
    )
    assert reasons(catalogue) == {"1": "too_old", "2": None, "3": None}


def test_duplicate_external_ids_keep_the_last_row(city):
    catalogue = catalogue_as_of(
        raw(
            [
                ("7", "/article/7/old-title/", "Old title", "2024-05-01T08:00:00Z"),
                ("7", "/article/7/new-title/", "New title", "2024-05-01T09:00:00Z"),
            ]
        ),
        city,
        AS_OF,
    )
    assert catalogue["exclude_reason"].tolist()[0] == "duplicate_external_id"
    kept = recommendable(catalogue)
    assert kept["title"].tolist() == ["New title"]
    assert kept["path"].tolist() == ["/article/7/new-title/"]


def test_sorted_by_external_id_and_typed(city):
    catalogue = catalogue_as_of(
        raw(
            [
                ("9", "/article/9/a/", None, "2024-05-01T08:00:00Z"),
                ("10", "/article/10/b/", "Ten", "2024-05-01T08:00:00Z"),
                ("1", "/article/1/c/", "One", "2024-05-01T08:00:00Z"),
            ]
        ),
        city,
        AS_OF,
    )
    assert catalogue["external_id"].tolist() == ["1", "10", "9"]  # text order
    assert catalogue["title"].tolist() == ["One", "Ten", ""]  # a missing title becomes ""
    for name in ("external_id", "path", "title", "exclude_reason"):
        assert str(catalogue[name].dtype) == "string"
    assert str(catalogue["published_at"].dtype).startswith("datetime64[")
    assert str(catalogue["published_at"].dt.tz) == "UTC"


def test_read_catalogue_file_json_lines_and_csv(tmp_path, city):
    jsonl = tmp_path / "catalogue.jsonl"
    jsonl.write_text(
        '{"external_id": 510000, "path": "/article/510000/a/", "title": "A", '
        '"published_at": "2024-05-01T08:00:00Z"}\n'
        '{"external_id": "510001", "path": "/article/510001/b/", "title": "B", "published_at": ""}\n'
    )
    csv = tmp_path / "catalogue.csv"
    csv.write_text(
        "external_id,path,title,published_at\n"
        "510000,/article/510000/a/,A,2024-05-01T08:00:00Z\n"
        "510001,/article/510001/b/,B,\n"
    )
    for path in (jsonl, csv):
        catalogue = catalogue_as_of(read_catalogue_file(path), city, AS_OF)
        assert reasons(catalogue) == {"510000": None, "510001": "no_publish_date"}, path


def test_read_catalogue_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_catalogue_file(tmp_path / "missing.jsonl")
    bad = tmp_path / "bad.csv"
    bad.write_text("external_id,path\n1,/article/1/a/\n")
    with pytest.raises(ValueError, match=r"\['published_at', 'title'\]"):
        read_catalogue_file(bad)
