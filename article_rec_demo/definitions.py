"""The product's definitions, and, in the demo's home, the live demo's sensor (sensor.py): what
`make ui` loads (article_rec_demo/workspace.yaml)."""

from dagster import Definitions

# The module, not its `defs`: Dagster loads a module's only Definitions object at module scope.
import article_rec_assets.definitions as product
from article_rec_demo.sensor import demo_sensors

defs = Definitions.merge(product.defs, Definitions(sensors=demo_sensors()))
