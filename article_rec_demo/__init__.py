"""The demo beside the product: the deterministic clickstream generator (generator/), the demo
sites' generator settings (sites/), `make demo` (demo.py, demo_run.py), and the live demo's sensor
with the definitions that add it (sensor.py, definitions.py). Imports the product; the product
never imports it, and the image does not hold it."""
