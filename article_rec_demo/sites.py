"""The demo sites: a product site file (article_rec_assets/settings/sites/) with the generator's
settings for it (sites/<name>.yaml here): how many readers, articles and sessions a day, which
paths and topics, the random seed."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict

from article_rec_assets.settings.sites import PACKAGED_SITES_DIR, SiteConfig, load_sites

DEMO_SITES_DIR = Path(__file__).parent / "sites"


class DemoSettings(BaseModel):
    """How the clickstream generator fakes a site."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path_template: str
    host: str
    first_external_id: int = 1
    articles_per_day: int = 30
    backlist_days: int = 30
    readers: int = 2000
    sessions_per_day: int = 2000
    topics: tuple[str, ...] = ("news", "politics", "sports", "arts")
    seed: int = 0


class DemoSite(SiteConfig):
    """A site with what the generator needs to fake it (None: a site the generator leaves alone)."""

    demo: DemoSettings | None = None


def demo_site(site: SiteConfig, demo_dir: Path = DEMO_SITES_DIR) -> DemoSite:
    """`site` with its generator settings, where `demo_dir` has a file of its name."""
    path = demo_dir / f"{site.name}.yaml"
    demo = DemoSettings.model_validate(yaml.safe_load(path.read_text())) if path.exists() else None
    return DemoSite.model_validate({**site.model_dump(), "demo": demo})


def as_demo_site(site: SiteConfig) -> DemoSite:
    """`site` as the generator takes it: a product site gets its generator settings by its name."""
    return site if isinstance(site, DemoSite) else demo_site(site)


def load_demo_sites(
    sites_dir: str | Path = PACKAGED_SITES_DIR, demo_dir: Path = DEMO_SITES_DIR
) -> dict[str, DemoSite]:
    """Every site of `sites_dir`, each with its generator settings where it has them."""
    return {name: demo_site(site, demo_dir) for name, site in load_sites(sites_dir).items()}
