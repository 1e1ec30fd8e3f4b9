"""The data logic of each stage as plain functions: no Dagster here, so each is testable alone."""
