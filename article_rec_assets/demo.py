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

from article_rec_assets import environment


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
    # Dagster's local (SQLite) storage in this folder; no usage statistics sent from a demo.
    instance_file = dagster_home / "dagster.yaml"
    if not instance_file.exists():
        instance_file.write_text("telemetry:\n  enabled: false\n")

    from article_rec_assets.demo_run import run_demo  # after the environment is set

    if args.end:
        end = datetime.fromisoformat(args.end).replace(tzinfo=UTC)
    else:
        from article_rec_assets.partitions import WINDOW_HOURS, newest_complete_window

        end = newest_complete_window(datetime.now(UTC)) + timedelta(hours=WINDOW_HOURS)
    started = time.perf_counter()
    run_demo(end, args.days)
    print(f"\nDone in {time.perf_counter() - started:.1f} s.")


if __name__ == "__main__":
    main()
