from pathlib import Path

from setuptools import find_packages, setup

# The demo (article_rec_demo: the clickstream generator and `make demo`) installs beside the
# product in a checkout; the image copies the product alone, so it has neither it nor its commands.
WITH_DEMO = (Path(__file__).parent / "article_rec_demo").is_dir()
DEMO_COMMANDS = [
    "article-rec-generate=article_rec_demo.generator.cli:main",
    "article-rec-demo=article_rec_demo.demo:main",
]

# The Dagster family is pinned together: mixed releases of dagster and its
# integration libraries do not install side by side. dagster-pandera needs
# pandas < 3 (asking for pandas 3 silently downgrades Dagster).
DAGSTER_VERSION = "1.13.27"
DAGSTER_LIBS_VERSION = "0.29.27"

setup(
    name="article_rec_assets",
    version="0.1.0",
    description="Dagster assets that turn a news site's clickstream into article recommendations.",
    packages=find_packages(exclude=["article_rec_assets_tests*", "bench*"]),
    package_data={"article_rec_assets": ["settings/sites/*.yaml"], "article_rec_demo": ["sites/*.yaml"]},
    python_requires=">=3.11,<3.13",
    install_requires=[
        f"dagster=={DAGSTER_VERSION}",
        f"dagster-webserver=={DAGSTER_VERSION}",
        f"dagster-aws=={DAGSTER_LIBS_VERSION}",
        f"dagster-postgres=={DAGSTER_LIBS_VERSION}",
        f"dagster-pandera=={DAGSTER_LIBS_VERSION}",
        "pandas>=2.2,<3",
        "pandera>=0.20",
        "numpy>=1.26",
        "scipy>=1.11",
        "implicit>=0.7.2",
        # LambdaRank for the learned ranker: HR@10 +7.1 % over the blend alone on G1, 8-9 Oct (README).
        "lightgbm>=4.3",
        "threadpoolctl>=3.1",
        "pyarrow>=15",
        "orjson>=3.9",
        # Inflates gzip about twice as fast as zlib with zlib's interface (bench/results/ingestion.md).
        "zlib-ng>=0.5",
        "SQLAlchemy>=2.0",
        "psycopg[binary]>=3.1",
        "PyYAML>=6",
        "tabulate>=0.9",
    ],
    extras_require={
        # The run launcher of deploy/k8s: the image needs it when runs are Kubernetes jobs.
        "k8s": [f"dagster-k8s=={DAGSTER_LIBS_VERSION}"],
        # The run launcher of deploy/docker: every run a container, through a Docker Engine API.
        "docker": [f"dagster-docker=={DAGSTER_LIBS_VERSION}"],
        "dev": [
            "pytest>=8",
            "hypothesis>=6.100",
            # The benchmark's near-limit JSON parse reference (bench/bench_ingestion.py).
            "duckdb>=1.1",
            f"dagster-k8s=={DAGSTER_LIBS_VERSION}",
            f"dagster-docker=={DAGSTER_LIBS_VERSION}",
            "moto[server]>=5",
            "ruff>=0.6",
        ],
    },
    entry_points={
        "console_scripts": [
            "article-rec-evaluate=article_rec_assets.evaluate:main",
            *(DEMO_COMMANDS if WITH_DEMO else []),
        ],
    },
)
