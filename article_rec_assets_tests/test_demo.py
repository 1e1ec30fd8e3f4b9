"""The demo's home (demo.py): nothing absolute in what it writes, so that a copied or moved
checkout's `make ui` reads and publishes into its own `.demo`."""

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from dagster._core.secrets.env_file import get_env_var_dict

from article_rec_assets.definitions import resources_for_environment
from article_rec_assets.settings import environment
from article_rec_demo import demo, demo_environment

START, END = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 4, tzinfo=UTC)
DEMO_VARIABLES = (
    "DAGSTER_HOME",
    environment.DATA_DIR_VAR,
    environment.SERVING_DATABASE_URL_VAR,
    environment.PARTITIONS_START_VAR,
    demo_environment.DEMO_HISTORY_VAR,
)


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """None of the demo's variables set; whatever the demo sets is undone after the test."""
    for name in DEMO_VARIABLES:
        monkeypatch.setenv(name, "")  # so that the test's end restores the variable, set or not
        monkeypatch.delenv(name)
    return monkeypatch


def load_as_make_ui(monkeypatch: pytest.MonkeyPatch, dagster_home: Path, with_home_variable: bool) -> None:
    """The environment `make ui` gives the definitions: dagster dev started in the Dagster home
    (DAGSTER_HOME set to it, or not) loads the `.env` there with its own loader."""
    for name in DEMO_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(dagster_home)
    if with_home_variable:
        monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    for name, value in get_env_var_dict(str(dagster_home)).items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize("with_home_variable", [True, False], ids=["DAGSTER_HOME", "cwd"])
def test_a_moved_checkouts_ui_uses_its_own_demo_home(
    clean_environment: pytest.MonkeyPatch, tmp_path: Path, with_home_variable: bool
) -> None:
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    clean_environment.chdir(checkout)
    dagster_home = demo.prepare_home(Path(".demo").absolute(), START, END)
    assert dagster_home == checkout / ".demo" / "dagster_home"
    for name in (".env", "dagster.yaml"):
        text = (dagster_home / name).read_text()
        assert str(tmp_path) not in text and "=/" not in text, text

    moved = tmp_path / "moved"
    shutil.move(checkout, moved)
    shutil.copytree(moved, checkout)  # the original stays: the moved one must not read it
    home = moved / ".demo"
    load_as_make_ui(clean_environment, home / "dagster_home", with_home_variable)

    assert environment.data_dir().resolve() == home.resolve() / "data"
    assert demo_environment.demo_history() == (START, END)
    assert environment.partitions_start() == "2026-03-01-00:00"
    resources = resources_for_environment()
    assert Path(resources["event_bucket"].root_dir).resolve() == home.resolve() / "data"
    assert Path(resources["catalogue_sources"].files_dir).resolve() == home.resolve() / "data"
    url = os.environ[environment.SERVING_DATABASE_URL_VAR]
    assert url.startswith("sqlite:///")
    assert Path(url.removeprefix("sqlite:///")).resolve() == home.resolve() / "serving.db"


def test_places_outside_the_demo_folder_stay_where_the_operator_put_them(
    clean_environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_environment.setenv(environment.DATA_DIR_VAR, str(tmp_path / "events"))
    dagster_home = demo.prepare_home(tmp_path / "checkout" / ".demo", START, END)
    values = get_env_var_dict(str(dagster_home))
    assert values[environment.DATA_DIR_VAR] == str(tmp_path / "events")
    assert values[environment.SERVING_DATABASE_URL_VAR].endswith("/dagster_home/../serving.db")
    assert values[demo_environment.DEMO_HISTORY_VAR] == "2026-03-01T00:00Z/2026-03-04T00:00Z"
