"""`article-rec-demo`: the main job on the embedded default, end to end.

Generates a few days of clickstream for the demo sites into a local folder laid out like the
event bucket, materializes the asset graph through Dagster in a persistent DAGSTER_HOME (so
`dagster dev` shows the same runs afterwards), publishes into the serving database (a SQLite file
unless SERVING_DATABASE_URL is set), and prints what it did.
"""

import argparse
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from article_rec_assets.settings import environment
from article_rec_assets.settings.windows import WINDOW_HOURS, newest_complete_window
from article_rec_demo import demo_environment


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=3.0, help="days of clickstream to generate")
    parser.add_argument("--home", type=Path, default=environment.DEFAULT_HOME)
    parser.add_argument(
        "--end", help="UTC end of the data (a window boundary); default: the newest complete window"
    )
    args = parser.parse_args(argv)

    if args.end:
        end = datetime.fromisoformat(args.end).replace(tzinfo=UTC)
    else:
        end = newest_complete_window(datetime.now(UTC)) + timedelta(hours=WINDOW_HOURS)
    start = end - timedelta(hours=WINDOW_HOURS * max(1, round(args.days * 24 / WINDOW_HOURS)))
    # The definitions read the environment when they load, so it is set first.
    prepare_home(args.home.absolute(), start, end)

    from article_rec_demo.demo_run import run_demo  # after the environment is set

    started = time.perf_counter()
    run_demo(end, args.days)
    print(f"\nDone in {time.perf_counter() - started:.1f} s.")


EMBEDDED_INSTANCE_FILE = Path(__file__).resolve().parents[1] / "dagster.yaml"
OLD_DEMO_INSTANCE = "telemetry:\n  enabled: false\n"


def prepare_home(home: Path, start: datetime, end: datetime) -> Path:
    """Set the environment the demo runs in (Dagster home, data folder, serving database,
    partitions, the span it generates) and write the Dagster home `make ui` opens (instance file,
    `.env`) under `home`; returns the Dagster home."""
    os.environ.setdefault("DAGSTER_HOME", str(home / "dagster_home"))
    os.environ.setdefault(environment.DATA_DIR_VAR, str(home / "data"))
    if not environment.serving_database_url_is_set():
        os.environ[environment.SERVING_DATABASE_URL_VAR] = f"sqlite:///{home / 'serving.db'}"
    # The partitions start where the generated data starts (the UI shows what is filled of that).
    os.environ[environment.PARTITIONS_START_VAR] = f"{start:%Y-%m-%d-%H:%M}"
    os.environ[demo_environment.DEMO_HISTORY_VAR] = demo_environment.demo_history_value(start, end)
    dagster_home = Path(os.environ["DAGSTER_HOME"]).absolute()
    dagster_home.mkdir(parents=True, exist_ok=True)
    install_instance_file(dagster_home)
    write_ui_environment(dagster_home, home)
    return dagster_home


def install_instance_file(dagster_home: Path) -> None:
    """The embedded default instance (the repository's dagster.yaml: SQLite, one run per site at
    a time) in the demo's DAGSTER_HOME, unless the operator has put their own there."""
    target = dagster_home / "dagster.yaml"
    if target.exists() and target.read_text() != OLD_DEMO_INSTANCE:
        return
    if EMBEDDED_INSTANCE_FILE.exists():
        target.write_text(EMBEDDED_INSTANCE_FILE.read_text())
    else:  # installed without the repository: Dagster's defaults, without telemetry
        target.write_text(OLD_DEMO_INSTANCE)


# dagster dev expands `${NAME}` in the `.env` it loads (python-dotenv) from its own environment:
# `make ui` sets DAGSTER_HOME to the home it opens. Unset, `.` is the folder dagster dev started
# in, which is where it found the `.env`.
HOME_IN_ENV_FILE = "${DAGSTER_HOME:-.}"
SQLITE_PREFIX = "sqlite:///"


def write_ui_environment(dagster_home: Path, home: Path) -> None:
    """`.env` in the Dagster home, which `make ui` (dagster dev, started there) loads: the same
    data folder, partitions, serving database and generated span as the demo (the span turns the
    live demo on, sensor.py). Paths in the demo's folder `home` are written relative to the
    Dagster home, never absolute, so that a copied or moved checkout's `make ui` reads and
    publishes into its own `.demo`. A serving URL the operator set stays in their environment,
    never in a file, unless it is a SQLite file's."""
    values = {
        environment.DATA_DIR_VAR: _env_file_path(
            Path(os.environ[environment.DATA_DIR_VAR]), dagster_home, home
        ),
        environment.PARTITIONS_START_VAR: os.environ[environment.PARTITIONS_START_VAR],
        demo_environment.DEMO_HISTORY_VAR: os.environ[demo_environment.DEMO_HISTORY_VAR],
    }
    url = os.environ[environment.SERVING_DATABASE_URL_VAR]
    if url.startswith(SQLITE_PREFIX) and "?" not in url and len(url) > len(SQLITE_PREFIX):
        # A relative file is the demo's (the folder it ran in), not the Dagster home's.
        path = Path(url.removeprefix(SQLITE_PREFIX))
        values[environment.SERVING_DATABASE_URL_VAR] = SQLITE_PREFIX + _env_file_path(
            path, dagster_home, home
        )
    elif url.startswith("sqlite"):
        values[environment.SERVING_DATABASE_URL_VAR] = url
    lines = [
        "# Written by `make demo` for `make ui`; paths are relative to the Dagster home (this folder).\n",
        *(f"{name}={value}\n" for name, value in values.items()),
    ]
    (dagster_home / ".env").write_text("".join(lines))


def _env_file_path(path: Path, dagster_home: Path, home: Path) -> str:
    """`path` as the `.env` gives it: from the Dagster home when both are in the demo's folder
    (they move together), else as it is (a place the operator chose outside it)."""
    path, dagster_home, home = path.absolute(), dagster_home.absolute(), home.absolute()
    if path.is_relative_to(home) and dagster_home.is_relative_to(home):
        return f"{HOME_IN_ENV_FILE}/{Path(os.path.relpath(path, dagster_home)).as_posix()}"
    return str(path)


if __name__ == "__main__":
    main()
