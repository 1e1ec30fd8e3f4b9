"""Settings: every per-site settings model (the sites' YAML files and their pydantic models), the
window arithmetic and the environment variables. Imports nothing else of the project.
"""
