"""A deterministic fake clickstream in the Snowplow S3 layout, for demos and tests."""
