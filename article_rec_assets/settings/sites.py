"""Per-site settings: one YAML file per site, validated into typed models.

Adding a site is adding a file; no code branches on a site's name.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from article_rec_assets.settings.catalogue_sources import CatalogueSource
from article_rec_assets.settings.validators import regular_expression, relative_path

PACKAGED_SITES_DIR = Path(__file__).parent / "sites"


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GA4Settings(_Settings):
    """A GA4 BigQuery export as the site's events, in the same bucket (docs/ingestion.md, "GA4 as the event
    source"): `<prefix>/events_YYYYMMDD/` and `<prefix>/events_intraday_YYYYMMDD/`, newline-delimited
    JSON files (gzip or not)."""

    prefix: str = "ga4"
    # Windows that start at or after this (UTC) read GA4; earlier ones the Snowplow folders (a
    # site that switched trackers). None: every window reads GA4.
    since: datetime | None = None
    # The property's reporting time zone: GA4 names a day's tables by the date there.
    timezone: str = "UTC"
    # One event's `engagement_time_msec` above this many seconds is not reading time (GA4 sends
    # the foreground time since its last report; a stuck timer or a forged hit sends years): the
    # line is quarantined as `implausible_engagement_time`.
    max_engagement_seconds: int = Field(4 * 3600, gt=0, le=24 * 3600)

    @field_validator("prefix")
    @classmethod
    def _prefix_below_the_bucket(cls, value: str) -> str:
        return relative_path(value, "prefix")

    @field_validator("since")
    @classmethod
    def _since_in_utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"not a time zone name: {value!r}") from exc
        return value


class EventSettings(_Settings):
    bucket: str
    prefix: str = ""
    # Upper bounds below keep one window's work bounded: a lookback or session length far past
    # them makes each window read days of folders or state (100,000 hours: minutes a window).
    ping_interval_seconds: int = Field(10, gt=0, le=3600)
    # Hosts whose page views count; others (staging, localhost) are filtered. AMP-cache pages
    # count when the host inside their `/c/s/<host>/` path is allowed. Empty: every host.
    allowed_hosts: tuple[str, ...] = ()
    # Hour folders before the window read as context only, to drop duplicates delivered again
    # and to know which heartbeats of a page view were already counted.
    lookback_hours: int = Field(6, ge=0, le=48)
    # A new session after this much inactivity, where the tracker sent no session id (AMP).
    session_timeout_minutes: int = Field(30, gt=0, le=24 * 60)
    # A collector timestamp this far past its hour folder is implausible: quarantined.
    max_future_minutes: int = Field(60, ge=0, le=24 * 60)
    # Events read this much later than they were created are filtered as too late.
    max_lateness_hours: int = Field(72, gt=0, le=30 * 24)
    # Events collected more than this many days after their session started are filtered, as
    # Snowplow's web model does (its `max_session_days`).
    max_session_days: int = Field(3, gt=0, le=7)
    drop_empty_useragent: bool = True
    # A site's own bot user agents, on top of the built-in patterns (a regular expression).
    extra_bot_pattern: str | None = None
    # Share of unusable lines in a window that warns, and that blocks publishing.
    malformed_warn_share: float = Field(0.01, ge=0, le=1)
    malformed_block_share: float = Field(0.10, ge=0, le=1)
    # Below this many lines a window's shares say little (one bad line among nine is 11 %):
    # both malformed-share checks pass and say why.
    malformed_min_lines: int = Field(100, ge=0, le=10_000_000)
    # No event for this long at a window's end: the freshness check fails (tracker or loader down).
    freshness_hours: float = Field(6, gt=0, le=7 * 24)
    # A window below this share of the same window's median over the previous days warns; an
    # empty one where traffic was expected blocks publishing.
    volume_warn_share: float = Field(0.3, ge=0, le=1)
    volume_history_days: int = Field(7, gt=0, le=28)
    # An object is read up to this much decompressed text: a few megabytes of gzip can inflate to
    # gigabytes (a bomb, or a loader gone wrong). Lines past it are quarantined as one.
    max_object_megabytes: int = Field(512, gt=0, le=16384)
    # A window's objects together, likewise (many objects each under the bound can still add up
    # past a task's memory): objects past it are quarantined whole as `object_too_large`. A busy
    # site's window is a few gigabytes of text; set it to what the run's memory allows.
    max_window_megabytes: int = Field(8192, gt=0, le=262144)
    # GA4's export in place of Snowplow's folders (from `ga4.since` on, where given).
    ga4: GA4Settings | None = None

    def reads_ga4(self, window_start: datetime) -> bool:
        """Whether the window starting then reads the GA4 export (else the Snowplow folders)."""
        if self.ga4 is None:
            return False
        return self.ga4.since is None or window_start >= self.ga4.since

    @field_validator("bucket")
    @classmethod
    def _bucket_name(cls, value: str) -> str:
        # S3's naming rules, which also keep a local bucket folder inside the data directory.
        if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", value) or ".." in value:
            raise ValueError(f"not a bucket name (3-63 of a-z, 0-9, '.', '-'): {value!r}")
        return value

    @field_validator("prefix")
    @classmethod
    def _prefix_below_the_bucket(cls, value: str) -> str:
        return relative_path(value, "prefix") if value else value

    @field_validator("extra_bot_pattern")
    @classmethod
    def _bot_pattern(cls, value: str | None) -> str | None:
        if value is not None:
            regular_expression(value)
        return value

    @model_validator(mode="after")
    def _warn_before_block(self) -> EventSettings:
        if self.malformed_warn_share > self.malformed_block_share:
            raise ValueError(
                f"malformed_warn_share ({self.malformed_warn_share}) is above malformed_block_share "
                f"({self.malformed_block_share}): a window would block before it warns"
            )
        return self


class ArticleSettings(_Settings):
    path_pattern: str
    excluded_path_prefixes: tuple[str, ...] = ()
    # Where titles and publish times come from: `source: file` (CSV / JSON lines), `wordpress`
    # (the REST API) or `json_api` (an articles API like the texas-tribune one).
    catalogue: CatalogueSource
    # A path that failed to resolve (`fetch_error`) is tried again on this many runs at most.
    max_fetch_attempts: int = Field(3, ge=1)
    # A new path is looked up once a window has read it this often, and a run looks up at most
    # this many new paths (the most read first): a flood of made-up paths (a bot, a scanner) can
    # neither occupy the source for hours nor fill the path cache. The rest wait, uncached.
    min_reads_to_look_up: int = Field(2, ge=1)
    max_new_paths_per_run: int = Field(1000, ge=1)
    # Publish times before this date are implausible for the site (a CMS's 0001-01-01 default, an
    # epoch misread): such an article is excluded. Older than the tracked history is fine:
    # evergreen articles are read years after they appeared.
    published_after: date = date(1990, 1, 1)

    @field_validator("path_pattern")
    @classmethod
    def _has_external_id_group(cls, value: str) -> str:
        if "external_id" not in regular_expression(value).groupindex:
            raise ValueError("path_pattern needs a named group (?P<external_id>...)")
        return value


class TrainingSettings(_Settings):
    training_days: int = Field(28, gt=0)
    # What a reader's interest in an article is measured by: reading seconds (Snowplow page
    # pings), or plain page views for sources without dwell time (the dwell bounds and the
    # per-reader seconds minimum then do not apply).
    signal: Literal["dwell_seconds", "page_views"] = "dwell_seconds"
    min_dwell_seconds: float = 30
    max_dwell_seconds: float = 600
    # "more than" thresholds, as the previous job applied them.
    min_readers_per_article: int = 5
    min_articles_per_reader: int = 2
    min_seconds_per_reader: float = 60
    article_age_limit_days: float = 3650
    decay_half_life_days: float = Field(14, gt=0)


class BlendSettings(_Settings):
    """The recency successor blend's constants (recommenders/blend.py says what each term does).
    A site's `model.blend` overrides some of them; a misspelt name or a bad value fails the load."""

    short_tau_hours: float = 0.5
    long_tau_hours: float = 3.0
    long_weight: float = 0.3
    backward_weight: float = 0.3
    max_distance: int = 2
    distance_decay: float = 0.25
    knn_weight: float = 1.0
    knn_tau_hours: float = 24.0
    knn_neighbours: int = 20
    freshness_weight: float = 3.0
    freshness_tau_hours: float = 3.0
    prior_weight: float = 10.0
    prior_minutes: float = 15.0
    prior_top: int = 100
    reference_clicks_per_hour: float = 4000.0
    max_time_scale: float = 24.0

    @model_validator(mode="before")
    @classmethod
    def _known_names(cls, value: Any) -> Any:
        if isinstance(value, dict):
            unknown = sorted(set(value) - set(cls.model_fields))
            if unknown:
                raise ValueError(f"unknown blend settings {unknown}; known: {sorted(cls.model_fields)}")
        return value

    @field_validator("max_distance", "knn_neighbours", "prior_top", mode="before")
    @classmethod
    def _whole_number(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError(f"{info.field_name} must be a whole number, not {value!r}")
        return value

    @model_validator(mode="after")
    def _in_range(self) -> BlendSettings:
        taus = (self.short_tau_hours, self.long_tau_hours, self.knn_tau_hours, self.freshness_tau_hours)
        if min(taus) <= 0:
            raise ValueError("decay times must be positive")
        weights = (
            "long_weight",
            "backward_weight",
            "distance_decay",
            "knn_weight",
            "freshness_weight",
            "prior_weight",
        )
        negative = sorted(name for name in weights if getattr(self, name) < 0)
        if negative:
            raise ValueError(f"weights must not be negative: {negative}")
        if self.reference_clicks_per_hour <= 0 or self.max_time_scale < 1:
            raise ValueError("reference_clicks_per_hour must be positive and max_time_scale at least 1")
        if self.max_distance < 1 or self.knn_neighbours < 1:
            raise ValueError("max_distance and knn_neighbours must be at least 1")
        return self


# The ranker's feature groups (recommenders/ranker.py FEATURE_GROUPS).
RankerFeatureGroup = Literal[
    "blend", "successors", "covisitation", "popularity", "freshness", "source", "session", "order"
]


class RankerSettings(_Settings):
    """The learned ranker over the blend's candidates (recommenders/ranker.py): LambdaRank trained
    at every retrain on the next clicks of the `label_windows` windows before it. The defaults
    were chosen on G1's 6 and 7 October (docs/model.md, "The article model")."""

    enabled: bool = True
    candidates: int = Field(100, ge=10)  # the blend's best per source that the ranker orders
    # Stored examples are kept 2 days (the pickle store's `keep_days`): windows older than that are
    # rebuilt at each retrain.
    label_windows: int = Field(12, ge=1)
    window_hours: float = Field(2, gt=0)
    rounds: int = Field(50, ge=1)
    learning_rate: float = Field(0.2, gt=0, le=1)
    num_leaves: int = Field(15, ge=2)
    min_data_in_leaf: int = Field(100, ge=1)
    max_bin: int = Field(255, ge=2)  # LightGBM's histogram bins per feature (fewer: a quicker fit)
    max_label: int = Field(30, ge=1)  # a pair's count is capped here (LambdaRank's gains are linear)
    # LambdaRank's pairs are those with one of a query's `truncation_level` best rows (cost grows with it).
    truncation_level: int = Field(10, ge=1)
    objective: Literal["lambdarank", "rank_xendcg"] = "lambdarank"
    # A label's gain in LambdaRank's NDCG: its count of pairs, or 2^count - 1 (the likeliest first).
    gain: Literal["linear", "exponential"] = "linear"
    min_queries: int = Field(50, ge=1)  # fewer labelled sources: the blend serves alone
    # A busier window's sources are sampled down to this many (bounds the fit on large sites).
    max_sources_per_window: int = Field(800, ge=1)
    threads: int = Field(2, ge=1)
    # Lowers each candidate by this x log(1 + the number of the catalogue's top `list_length` lists
    # it is in): more distinct articles recommended, for a little hit rate (docs/model.md).
    spread_weight: float = Field(0.05, ge=0)
    list_length: int = Field(10, ge=1)
    # The ranker orders the lists of the articles read in the last `ranked_hours` (x the blend's
    # time scale on quiet sites): the sources of almost every next click; older articles' lists
    # keep the blend's order. None: it orders every list.
    ranked_hours: float | None = Field(24, gt=0)
    without_features: tuple[RankerFeatureGroup, ...] = ()  # groups left out (the ablation)


class ModelSettings(_Settings):
    factors: int = Field(64, gt=0)
    iterations: int = Field(15, gt=0)
    regularization: float = 0.05
    alpha: float = 1.0
    random_state: int = 42
    # The article model (recommenders/article_model.py): the recency successor blend over the last
    # `session_days` of reading sessions; `blend` overrides its defaults.
    session_days: float = Field(7, gt=0)
    blend: BlendSettings = Field(default_factory=lambda: BlendSettings())
    # Weight of the ALS neighbours (cosine rescaled to [0, 1]) added to the blend; 0 = not used.
    als_weight: float = Field(0.0, ge=0)
    ranker: RankerSettings = Field(default_factory=lambda: RankerSettings())


class EvaluationSettings(_Settings):
    """The per-window backtest that must approve a model before it is published."""

    metric: Literal["HR@10", "MRR@10", "NDCG@10"] = "HR@10"
    # Fewer test pairs than this in a window: the backtest reports but does not judge.
    min_pairs: int = Field(200, ge=0)
    # Block a model that scores more than this share below the model currently published.
    max_drop_vs_published: float = Field(0.05, ge=0, le=1)


class RecommendationSettings(_Settings):
    per_article: int = Field(10, gt=0)
    freshness_half_life_days: float = Field(30, gt=0)
    popularity_days: int = Field(7, gt=0)
    popularity_half_life_days: float = Field(10, gt=0)
    popularity_candidates: int = Field(50, gt=0)


# A container's memory as Docker and Kubernetes write it: bytes, or a number with k, m or g.
_MEMORY_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def memory_bytes(value: str) -> int:
    """`"512m"` -> 536870912; a ValueError names what is wrong."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([bkmg]?)", value.strip().lower())
    if not match:
        raise ValueError(f"memory {value!r} is not a size such as 512m or 4g")
    return int(float(match.group(1)) * _MEMORY_UNITS[match.group(2)])


class RunResources(_Settings):
    """What one run of the site may use where each run gets its own container
    (deploy/docker: the container's limits). A run that needs more memory is killed by the
    kernel and failed with that reason; the site's published recommendations stay as they were."""

    memory: str = "4g"
    cpus: float = Field(1.0, gt=0, le=64)

    @field_validator("memory")
    @classmethod
    def _memory_is_a_size(cls, value: str) -> str:
        if memory_bytes(value) < 64 * 1024**2:
            raise ValueError(f"memory {value!r} is below 64m: no run starts in that")
        return value

    @property
    def memory_in_bytes(self) -> int:
        return memory_bytes(self.memory)


class SiteConfig(_Settings):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    display_name: str = ""
    # The first window of the site's history (UTC, on a 2-hour boundary): its window partitions
    # start here, so a site added in June shows no empty months. Unset: ARTICLE_REC_PARTITIONS_START.
    history_start: datetime | None = None
    events: EventSettings
    articles: ArticleSettings
    training: TrainingSettings = TrainingSettings()
    model: ModelSettings = ModelSettings()
    recommendations: RecommendationSettings = RecommendationSettings()
    evaluation: EvaluationSettings = EvaluationSettings()
    run_resources: RunResources = RunResources()

    @field_validator("history_start")
    @classmethod
    def _history_start_on_a_window(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        if value.minute or value.second or value.microsecond or value.hour % 2:
            raise ValueError(f"history_start {value:%Y-%m-%d %H:%M} is not the start of a 2-hour UTC window")
        return value

    @property
    def path_regex(self) -> re.Pattern[str]:
        # Not cached on the instance: model_copy would carry a stale pattern over (re caches it).
        return re.compile(self.articles.path_pattern)


def load_site(path: Path) -> SiteConfig:
    """One site file; any problem is a ValueError that names the file (and the field)."""
    try:
        with open(path, encoding="utf-8") as f:
            raw = yaml.safe_load(f)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ValueError(f"invalid site file {path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise ValueError(
            f"invalid site file {path}: a site file is a mapping of settings, not {type(raw).__name__}"
        )
    try:
        return SiteConfig.model_validate(raw)
    except ValueError as exc:
        raise ValueError(f"invalid site file {path}: {exc}") from exc


def load_sites(sites_dir: str | Path = PACKAGED_SITES_DIR) -> dict[str, SiteConfig]:
    """All sites in a folder (`*.yaml` and `*.yml`), by name, sorted so partition keys are stable.

    One invalid file stops them all, with every file's errors listed at once: the partitions of
    every asset are made from this list, so a site left out would lose its schedule and its
    history's place in the UI without a word; failing the load is loud (the UI shows the code
    location's error, `dagster definitions validate` fails before a deploy), and the runs of
    the deployment already running are not touched."""
    sites: dict[str, SiteConfig] = {}
    errors: list[str] = []
    paths = sorted([*Path(sites_dir).glob("*.yaml"), *Path(sites_dir).glob("*.yml")])
    for path in paths:
        try:
            site = load_site(path)
        except ValueError as exc:
            errors.append(str(exc))
            continue
        if site.name in sites:
            errors.append(f"site {site.name!r} is defined twice (again in {path})")
        sites[site.name] = site
    if errors:
        raise ValueError(f"{len(errors)} problem(s) in the site files of {sites_dir}:\n" + "\n".join(errors))
    if not sites:
        raise ValueError(f"no site files (*.yaml, *.yml) in {sites_dir}")
    return sites
