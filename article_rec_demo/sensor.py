"""The live demo: with the demo's Dagster home (`make ui`), the demo sites keep receiving events.

`make demo` generates clickstream up to the moment it ran; the schedule, turned on later, would
find its windows empty and fail. This sensor writes each hour after the generated span into the
demo's local bucket once the hour has ended (generator/live.py: the same generator, articles and
readers as the history), so every window the schedule ingests is complete by its tick (a quarter
past the even hour). It exists only where the demo's `.env` names the generated span
(ARTICLE_REC_DEMO_HISTORY) and events are read from the local folder: a deployment never has it.
"""

import json
from datetime import datetime

from dagster import DefaultSensorStatus, SensorDefinition, SensorEvaluationContext, SkipReason, sensor
from dagster._time import get_current_datetime

from article_rec_assets.partitions import SITES
from article_rec_assets.settings import environment
from article_rec_demo import demo_environment
from article_rec_demo.generator.live import write_live_hours
from article_rec_demo.sites import as_demo_site

DEMO_SENSOR = "demo_live_clickstream"


def demo_sensors() -> list[SensorDefinition]:
    """The live demo's sensor, where the environment is the demo's; else none."""
    history = demo_environment.demo_history()
    if history is None or environment.events_source() != "local":
        return []
    span = demo_environment.demo_history_value(*history)
    sites = [site for site in map(as_demo_site, SITES.values()) if site.demo is not None]

    @sensor(
        name=DEMO_SENSOR,
        # Each minute, so an hour is written within a minute or two of its end, well before the
        # schedule's tick at a quarter past; a tick without an ended hour only reads its cursor.
        minimum_interval_seconds=60,
        default_status=DefaultSensorStatus.RUNNING,
        description="Demo only: writes each hour's synthetic clickstream of the demo sites into the "
        "local bucket once the hour has ended, after the span `make demo` generated, so that the "
        "schedules find every window complete.",
    )
    def demo_live_clickstream(context: SensorEvaluationContext) -> SkipReason:
        cursor = json.loads(context.cursor) if context.cursor else {}
        # A new `make demo` (another span, the same Dagster home) starts over after its own end.
        written = cursor.get("written_until", {}) if cursor.get("history") == span else {}
        # Dagster's clock, which its tests can freeze.
        now = get_current_datetime()
        data_dir = environment.data_dir()
        notes = []
        for site in sites:
            until = written.get(site.name)
            result = write_live_hours(
                site, data_dir, history, now, datetime.fromisoformat(until) if until else None
            )
            if result is None:
                continue
            written[site.name] = result.end.isoformat()
            notes.append(
                f"{site.name}: {result.start:%Y-%m-%d %H:%M}-{result.end:%H:%M} UTC, "
                f"{result.objects} objects, {result.articles} articles in the catalogue"
            )
            context.log.info(f"wrote {notes[-1]}")
        context.update_cursor(json.dumps({"history": span, "written_until": written}, sort_keys=True))
        if notes:
            return SkipReason("Wrote " + "; ".join(notes))
        return SkipReason("no hour has ended since the last one written")

    return [demo_live_clickstream]
