"""Sites are configuration: one YAML file each, validated; adding one needs no code change."""

import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from article_rec_assets.settings.sites import PACKAGED_SITES_DIR, RunResources, load_sites, memory_bytes


def test_packaged_demo_sites_load_with_the_contract_defaults() -> None:
    sites = load_sites()
    assert list(sites) == ["demo-city-paper", "demo-tribune"]
    city = sites["demo-city-paper"]
    assert city.training.training_days == 28
    assert (city.training.min_dwell_seconds, city.training.max_dwell_seconds) == (30, 600)
    assert city.recommendations.per_article == 10
    assert city.path_regex.match("/article/512345/a-slug/").group("external_id") == "512345"
    assert sites["demo-tribune"].recommendations.popularity_days == 2


def _write_site(folder: Path, name: str, **changes) -> Path:
    raw = yaml.safe_load((PACKAGED_SITES_DIR / "demo-tribune.yaml").read_text())
    raw["name"] = name
    raw.update(changes)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_a_path_pattern_without_an_external_id_group_is_rejected(tmp_path: Path) -> None:
    articles = {"path_pattern": r"^/article/\d+/$", "catalogue": {"path": "x.jsonl"}}
    _write_site(tmp_path, "bad-site", articles=articles)
    with pytest.raises(ValueError, match="external_id"):
        load_sites(tmp_path)


def test_an_unknown_setting_is_rejected(tmp_path: Path) -> None:
    _write_site(tmp_path, "typo-site", trainnig={"training_days": 7})
    with pytest.raises(ValueError, match="trainnig"):
        load_sites(tmp_path)


def test_a_new_site_file_gets_its_assets_without_code_changes(tmp_path: Path) -> None:
    for path in PACKAGED_SITES_DIR.glob("*.yaml"):
        shutil.copy(path, tmp_path)
    _write_site(tmp_path, "new-gazette", history_start="2026-06-01T00:00:00")
    code = (
        "from article_rec_assets.definitions import defs; "
        "from article_rec_assets.partitions import window_partitions; "
        "prefixes = sorted({k.path[0] for k in defs.resolve_asset_graph().get_all_asset_keys()}); "
        "print(','.join(prefixes), window_partitions('new-gazette').start.isoformat(), "
        "window_partitions('demo-tribune').start.isoformat())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={"ARTICLE_REC_SITES_DIR": str(tmp_path), "PATH": ""},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # The new site's windows start at its own history, the others' where they did.
    assert (
        out == "demo_city_paper,demo_tribune,new_gazette 2026-06-01T00:00:00+00:00 2026-01-01T00:00:00+00:00"
    )


def test_a_history_start_off_a_window_boundary_is_rejected(tmp_path: Path) -> None:
    _write_site(tmp_path, "odd-start", history_start="2026-06-01T03:00:00")
    with pytest.raises(ValueError, match="not the start of a 2-hour UTC window"):
        load_sites(tmp_path)
    _write_site(tmp_path, "odd-start", history_start="2026-06-01T04:00:00+02:00")  # 02:00 UTC
    assert load_sites(tmp_path)["odd-start"].history_start.isoformat() == "2026-06-01T02:00:00+00:00"


def test_blend_settings_are_checked_against_the_model(tmp_path: Path) -> None:
    """`model.blend` overrides the article model's defaults: a misspelt name or a bad value is an
    error when the site loads, not a crash in a run two hours later."""
    site = yaml.safe_load((PACKAGED_SITES_DIR / "demo-tribune.yaml").read_text())
    site["model"]["blend"] = {"short_tau_hours": 2, "max_distance": 3}
    (tmp_path / "demo-tribune.yaml").write_text(yaml.safe_dump(site))
    loaded = load_sites(tmp_path)["demo-tribune"].model.blend
    assert loaded.model_dump(exclude_unset=True) == {"short_tau_hours": 2, "max_distance": 3}
    assert isinstance(loaded.max_distance, int) and loaded.long_tau_hours == 3.0  # the rest: defaults
    for bad, message in (
        ({"short_tau_hour": 2}, "unknown blend settings"),
        ({"knn_tau_hours": 0}, "positive"),
        ({"max_distance": 2.5}, "whole number"),
        ({"prior_weight": -1}, "negative"),
    ):
        site["model"]["blend"] = bad
        (tmp_path / "demo-tribune.yaml").write_text(yaml.safe_dump(site))
        with pytest.raises(ValueError, match=message):
            load_sites(tmp_path)


def _site(**events_or_articles) -> dict:
    raw = yaml.safe_load((PACKAGED_SITES_DIR / "demo-tribune.yaml").read_text())
    for section, changes in events_or_articles.items():
        raw[section] = {**raw[section], **changes}
    return raw


BAD_SITES = [
    ("events", {"bucket": "../../../../etc"}, "events.bucket", "not a bucket name"),
    ("events", {"bucket": "ok-bucket", "prefix": "../other-site"}, "events.prefix", "below its root"),
    ("events", {"prefix": "/etc"}, "events.prefix", "below its root"),
    (
        "articles",
        {"catalogue": {"source": "file", "path": "../../etc/passwd"}},
        "catalogue",
        "below the data",
    ),
    ("articles", {"catalogue": {"source": "file", "path": "/etc/passwd"}}, "catalogue", "below the data"),
    (
        "events",
        {"malformed_warn_share": 0.5, "malformed_block_share": 0.1},
        "events",
        "above malformed_block",
    ),
    (
        "articles",
        {"path_pattern": "^/(?P<external_id>[0-9+)/"},
        "articles.path_pattern",
        "regular expression",
    ),
    ("events", {"extra_bot_pattern": "(unclosed"}, "events.extra_bot_pattern", "regular expression"),
    # Unbounded, one window would read 100,000 hours of folders or 1.2M windows of state.
    ("events", {"lookback_hours": 100000}, "events.lookback_hours", "less than or equal to 48"),
    ("events", {"max_session_days": 100000}, "events.max_session_days", "less than or equal to 7"),
    ("events", {"volume_history_days": 100000}, "events.volume_history_days", "less than or equal to 28"),
]


@pytest.mark.parametrize(("section", "changes", "field", "message"), BAD_SITES)
def test_a_bad_setting_is_refused_naming_the_file_and_the_field(
    tmp_path: Path, section: str, changes: dict, field: str, message: str
) -> None:
    raw = _site(**{section: changes})
    (tmp_path / "bad-site.yaml").write_text(yaml.safe_dump({**raw, "name": "bad-site"}))
    with pytest.raises(ValueError) as caught:
        load_sites(tmp_path)
    text = str(caught.value)
    assert "bad-site.yaml" in text and field in text and message in text, text


def test_every_bad_file_is_listed_at_once_and_yml_files_are_read(tmp_path: Path) -> None:
    (tmp_path / "good.yml").write_text(yaml.safe_dump({**_site(), "name": "good"}))
    assert list(load_sites(tmp_path)) == ["good"]  # `.yml` is a site file too
    (tmp_path / "one.yaml").write_text(yaml.safe_dump({**_site(events={"bucket": "UPPER"}), "name": "one"}))
    (tmp_path / "two.yaml").write_text("name: [unclosed\n")
    (tmp_path / "three.yaml").write_text("- a list, not a site\n")
    (tmp_path / "again.yaml").write_text(yaml.safe_dump({**_site(), "name": "good"}))
    with pytest.raises(ValueError) as caught:
        load_sites(tmp_path)
    text = str(caught.value)
    assert text.startswith("4 problem(s)"), text
    for name in ("one.yaml", "two.yaml", "three.yaml", "'good' is defined twice"):
        assert name in text, (name, text)


def test_ga4_settings_say_from_when_a_site_reads_ga4(tmp_path: Path) -> None:
    raw = yaml.safe_load((PACKAGED_SITES_DIR / "demo-tribune.yaml").read_text())
    raw["events"]["ga4"] = {"prefix": "ga4/analytics_1", "since": "2026-11-01", "timezone": "Europe/Oslo"}
    (tmp_path / "demo-tribune.yaml").write_text(yaml.safe_dump(raw))
    events = load_sites(tmp_path)["demo-tribune"].events
    assert events.ga4.since == datetime(2026, 11, 1, tzinfo=UTC)  # a date alone: midnight UTC
    assert not events.reads_ga4(datetime(2026, 10, 31, 22, tzinfo=UTC))
    assert events.reads_ga4(datetime(2026, 11, 1, tzinfo=UTC))
    assert not load_sites()["demo-tribune"].events.reads_ga4(datetime(2026, 11, 1, tzinfo=UTC))

    for bad, field in (({"timezone": "Mars/Olympus"}, "timezone"), ({"prefix": "../up"}, "prefix")):
        raw["events"]["ga4"] = bad
        (tmp_path / "demo-tribune.yaml").write_text(yaml.safe_dump(raw))
        with pytest.raises(ValueError, match=field):
            load_sites(tmp_path)


def test_run_resources_take_sizes_as_docker_and_kubernetes_write_them() -> None:
    assert memory_bytes("512m") == 512 * 2**20
    assert memory_bytes("4g") == 4 * 2**30
    assert memory_bytes("1.5G") == int(1.5 * 2**30)
    assert memory_bytes("1048576") == 2**20
    assert RunResources().memory_in_bytes == 4 * 2**30
    for bad in ("4 gigabytes", "", "-1g", "4gb"):
        with pytest.raises(ValueError, match="not a size"):
            memory_bytes(bad)
    with pytest.raises(ValueError, match="below 64m"):
        RunResources(memory="32m")
    with pytest.raises(ValueError):
        RunResources(cpus=0)
    # Every packaged site says what its run may use.
    assert all(site.run_resources.memory_in_bytes >= 2**30 for site in load_sites().values())
