import pandas as pd

from article_rec_assets.recommenders.article_model import (
    candidate_mask,
    fit_article_model,
    site_click_log,
)
from article_rec_assets.recommenders.click_log import training_clicks
from article_rec_assets.settings.sites import ModelSettings

T0 = pd.Timestamp("2026-03-02 12:00", tz="UTC")


def interactions(sessions: dict[str, list[tuple[str, float]]]) -> pd.DataFrame:
    """Sessionized-interaction rows from {session: [(article, minutes from T0), ...]}; one reader
    per session."""
    rows = []
    for session, clicks in sessions.items():
        for article, minutes in clicks:
            seen = T0 + pd.Timedelta(minutes=minutes)
            rows.append(
                {
                    "reader_id": f"r-{session}",
                    "session_id": session,
                    "external_id": article,
                    "day": seen.floor("D"),
                    "engaged_seconds": 30.0,
                    "page_views": 1,
                    "first_seen": seen,
                    "last_seen": seen + pd.Timedelta(seconds=30),
                }
            )
    return pd.DataFrame(rows)


def catalogue(
    ids: list[str], excluded: tuple[str, ...] = (), published_hours_ago: float = 48
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "external_id": pd.array(ids, dtype="string"),
            "path": [f"/a/{i}" for i in ids],
            "title": [f"Title {i}" for i in ids],
            "published_at": T0 - pd.Timedelta(hours=published_hours_ago),
            "exclude_reason": pd.array(
                ["sponsored" if i in excluded else pd.NA for i in ids], dtype="string"
            ),
        }
    )


def fitted_model(sessions, cat, settings: ModelSettings | None = None):
    log = site_click_log(interactions(sessions), cat)
    train = training_clicks(log, T0, 7, candidates=candidate_mask(log, cat, T0))
    return fit_article_model(train, settings or ModelSettings())


SESSIONS = {
    # x is read after a many times; e after a once; c is excluded (sponsored) but popular.
    **{f"ax{i}": [("a", -100 - i), ("x", -99 - i)] for i in range(5)},
    "ae": [("a", -50), ("e", -49)],
    **{f"ac{i}": [("a", -40 - i), ("c", -39 - i)] for i in range(6)},
    "fresh": [("b", -3), ("n", -2)],  # n: published an hour ago, two clicks in the last minutes
    "fresh2": [("x", -4), ("n", -1)],
}
