"""The product's definitions, and, in the demo's home, the live demo's sensor (sensor.py): what
`make ui` loads (article_rec_demo/workspace.yaml)."""

from dagster import Definitions

from article_rec_assets.definitions import defs as product
from article_rec_demo.sensor import demo_sensors

defs = Definitions.merge(product, Definitions(sensors=demo_sensors()))
