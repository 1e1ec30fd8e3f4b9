import pytest

from article_rec_assets.settings.sites import SiteConfig, load_sites


@pytest.fixture(scope="module")
def city() -> SiteConfig:
    return load_sites()["demo-city-paper"]
