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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=3.0, help="days of clickstream to generate")
    parser.add_argument("--home", type=Path, default=environment.DEFAULT_HOME)
    parser.add_argument(
        "--end", help="UTC end of the data (a window boundary); default: the newest complete window"
    )
    args = parser.parse_args(argv)

    home = args.home.absolute()
    # The definitions read these when they load, so set them first.
    os.environ.setdefault("DAGSTER_HOME", str(home / "dagster_home"))
    os.environ.setdefault(environment.DATA_DIR_VAR, str(home / "data"))
    if not environment.serving_database_url_is_set():
        os.environ[environment.SERVING_DATABASE_URL_VAR] = f"sqlite:///{home / 'serving.db'}"
    dagster_home = Path(os.environ["DAGSTER_HOME"])
    dagster_home.mkdir(parents=True, exist_ok=True)
    install_instance_file(dagster_home)

    # The partitions start where the generated data starts (the UI shows what is filled of that).
    if args.end:
        end = datetime.fromisoformat(args.end).replace(tzinfo=UTC)
    else:
        end = newest_complete_window(datetime.now(UTC)) + timedelta(hours=WINDOW_HOURS)
    start = end - timedelta(hours=WINDOW_HOURS * max(1, round(args.days * 24 / WINDOW_HOURS)))
    os.environ[environment.PARTITIONS_START_VAR] = f"{start:%Y-%m-%d-%H:%M}"
    write_ui_environment(dagster_home)

    from article_rec_assets.demo_run import run_demo  # after the environment is set

    started = time.perf_counter()
    run_demo(end, args.days)
    print(f"\nDone in {time.perf_counter() - started:.1f} s.")


EMBEDDED_INSTANCE_FILE = Path(__file__).resolve().parents[1] / "dagster.yaml"
OLD_DEMO_INSTANCE = "telemetry:\n  enabled: false\n"


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


def write_ui_environment(dagster_home: Path) -> None:
    """`.env` in the Dagster home, which `make ui` (dagster dev, started there) loads: the same
    data folder, partitions and serving database as the demo. A serving URL the operator set
    stays in their environment, never in a file."""
    names = [environment.DATA_DIR_VAR, environment.PARTITIONS_START_VAR]
    if os.environ[environment.SERVING_DATABASE_URL_VAR].startswith("sqlite"):
        names.append(environment.SERVING_DATABASE_URL_VAR)
    (dagster_home / ".env").write_text("".join(f"{name}={os.environ[name]}\n" for name in names))


if __name__ == "__main__":
    main()
