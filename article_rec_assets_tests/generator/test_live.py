"""The live demo's hours after the generated history (generator/live.py): the history's articles
and readers carried on, each hour the same whenever it is written, volumes like the history's,
nothing of the history touched."""

import gzip
import shutil
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from article_rec_assets.ingestion.bucket import hour_folder, site_bucket_dir
from article_rec_assets.settings.sites import SiteConfig
from article_rec_demo.generator.clickstream import draw_readership, generate_site
from article_rec_demo.generator.live import (
    MAX_CATCH_UP,
    PIECE,
    hours_due,
    live_readership,
    pieces,
    write_live_hours,
)
from article_rec_demo.sites import load_demo_sites

END = datetime(2024, 5, 3, 6, tzinfo=UTC)  # a window boundary in the morning, as `make demo` ends
HISTORY = (END - timedelta(days=2), END)
HOUR = timedelta(hours=1)


@pytest.fixture(scope="module")
def small_site() -> SiteConfig:
    """demo-tribune (a bucket prefix, slug ids) with a smaller audience and backlist."""
    site = load_demo_sites()["demo-tribune"]
    demo = site.demo.model_copy(
        update={"readers": 300, "sessions_per_day": 600, "backlist_days": 2, "articles_per_day": 12}
    )
    return site.model_copy(update={"demo": demo})


@pytest.fixture(scope="module")
def history(small_site, tmp_path_factory) -> Path:
    """Two days of the small site, as `make demo` writes them."""
    data_dir = tmp_path_factory.mktemp("history")
    generate_site(small_site, data_dir, *HISTORY)
    return data_dir


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def catalogue_rows(data: bytes) -> list[dict]:
    return [orjson.loads(line) for line in data.splitlines()]


def lines_of_hour(data_dir: Path, site: SiteConfig, hour: datetime) -> int:
    """Event lines in an hour folder, the complete ones of a truncated object included."""
    count = 0
    for path in (site_bucket_dir(data_dir, site) / hour_folder(hour)).glob("*"):
        count += zlib.decompressobj(zlib.MAX_WBITS | 16).decompress(path.read_bytes()).count(b"\n")
    return count


def test_the_articles_and_readers_are_the_historys_carried_on(small_site) -> None:
    demo, seed = small_site.demo, small_site.demo.seed
    drawn = draw_readership(demo, *HISTORY, seed)
    day = live_readership(demo, HISTORY, END + PIECE, seed)
    two_days = live_readership(demo, HISTORY, END + 2 * PIECE, seed)

    old = len(drawn.articles)
    assert day.articles[:old] == drawn.articles
    assert day.reader_ids == drawn.reader_ids
    assert (day.preferences == drawn.preferences).all() and (day.activity == drawn.activity).all()
    new = day.articles[old:]
    assert 8 <= len(new) <= 16  # ~12 a day
    assert all(END <= a.published_at < END + PIECE for a in new)
    assert len({a.external_id for a in day.articles}) == len(day.articles)
    assert len({a.path for a in day.articles}) == len(day.articles)
    # A day's articles do not depend on how far the world is drawn.
    assert two_days.articles[: len(day.articles)] == day.articles
    assert list(day.published) == sorted(day.published)


def test_hours_due_and_pieces() -> None:
    assert hours_due(END, None, END + timedelta(hours=3, minutes=30)) == (END, END + 3 * HOUR)
    assert hours_due(END, END + 3 * HOUR, END + timedelta(hours=3, minutes=59)) is None
    assert hours_due(END, END + 3 * HOUR, END + 4 * HOUR) == (END + 3 * HOUR, END + 4 * HOUR)
    assert hours_due(END, None, END - timedelta(minutes=1)) is None  # nothing before the history's end
    # Started days after the history: the last day only.
    late = END + timedelta(days=3, minutes=10)
    assert hours_due(END, None, late) == (END + 3 * PIECE - MAX_CATCH_UP, END + 3 * PIECE)
    assert pieces(END, END, END + 3 * HOUR) == [END]
    assert pieces(END, END + 2 * PIECE, END + 3 * PIECE) == [END + 2 * PIECE]
    assert pieces(END, END + PIECE - HOUR, END + PIECE + HOUR) == [END, END + PIECE]


def test_hours_written_as_they_end_are_those_of_their_whole_day(small_site, history, tmp_path) -> None:
    """Written at three moments or at once, the bucket and catalogue are the same bytes; the
    history's objects are untouched and the catalogue keeps its rows."""
    before = files(history)
    stepwise, at_once = tmp_path / "stepwise", tmp_path / "at_once"
    shutil.copytree(history, stepwise)
    shutil.copytree(history, at_once)

    written = None
    results = []
    for now in (END + timedelta(minutes=59), END + timedelta(hours=2, minutes=1), END + timedelta(hours=7)):
        result = write_live_hours(small_site, stepwise, HISTORY, now, written)
        results.append(result)
        written = result.end if result else written
    assert results[0] is None
    assert [(r.start, r.end) for r in results[1:]] == [
        (END, END + 2 * HOUR),
        (END + 2 * HOUR, END + 7 * HOUR),
    ]
    assert (
        write_live_hours(small_site, stepwise, HISTORY, END + timedelta(hours=7, minutes=30), written) is None
    )
    once = write_live_hours(small_site, at_once, HISTORY, END + timedelta(hours=7))
    assert (once.start, once.end) == (END, END + 7 * HOUR)

    after = files(stepwise)
    assert after == files(at_once)
    catalogue = str(small_site.articles.catalogue.path)
    new = after.keys() - before.keys()
    assert new and all(name.endswith(".jsonl.gz") for name in new)
    for name, data in before.items():
        if name != catalogue:
            assert after[name] == data, f"{name} of the history was rewritten"
    # The bucket's new objects are in the hour folders after the history's end, up to `now`.
    bucket = site_bucket_dir(stepwise, small_site).relative_to(stepwise)
    folders = {str(bucket / hour_folder(END + k * HOUR)) for k in range(7)}
    assert {str(Path(name).parent) for name in new} == folders
    old_rows, new_rows = catalogue_rows(before[catalogue]), catalogue_rows(after[catalogue])
    assert new_rows[: len(old_rows)] == old_rows and len(new_rows) > len(old_rows)
    published = [datetime.fromisoformat(row["published_at"]) for row in new_rows[len(old_rows) :]]
    assert all(END <= at < END + 7 * HOUR for at in published)


def test_live_hours_have_the_volume_of_the_same_hours_the_day_before(small_site, history, tmp_path) -> None:
    data_dir = tmp_path / "data"
    shutil.copytree(history, data_dir)
    write_live_hours(small_site, data_dir, HISTORY, END + timedelta(hours=12))
    live = [lines_of_hour(data_dir, small_site, END + k * HOUR) for k in range(12)]
    day_before = [lines_of_hour(data_dir, small_site, END - PIECE + k * HOUR) for k in range(12)]
    assert all(live)
    assert 0.8 < sum(live) / sum(day_before) < 1.25, (live, day_before)


def test_started_days_later_it_writes_the_last_day_only(small_site, history, tmp_path) -> None:
    data_dir = tmp_path / "data"
    shutil.copytree(history, data_dir)
    now = END + timedelta(days=3, minutes=5)
    result = write_live_hours(small_site, data_dir, HISTORY, now)
    assert (result.start, result.end) == (END + 2 * PIECE, END + 3 * PIECE)
    bucket = site_bucket_dir(data_dir, small_site)
    assert not (bucket / hour_folder(END)).exists()
    assert not (bucket / hour_folder(END + 2 * PIECE - HOUR)).exists()
    assert all((bucket / hour_folder(END + 2 * PIECE + k * HOUR)).is_dir() for k in range(24))


def test_no_gzip_member_is_left_half_written(small_site, history, tmp_path) -> None:
    """Every object moved into the bucket reads to its end, except the day's one truncated object
    and its empty one (the history's own noise), and no scratch folder is left behind."""
    data_dir = tmp_path / "data"
    shutil.copytree(history, data_dir)
    write_live_hours(small_site, data_dir, HISTORY, END + PIECE)
    damaged = 0
    for path in site_bucket_dir(data_dir, small_site).rglob("*.jsonl.gz"):
        if path.stat().st_size:
            try:
                gzip.decompress(path.read_bytes())
            except EOFError:
                damaged += 1
    assert damaged == 3  # one truncated object per generated day: two of the history, one live
    assert not [p for p in data_dir.iterdir() if p.name.startswith(".live-")]
