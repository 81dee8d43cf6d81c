"""The run config: its pydantic schema, loading from YAML/JSON/TOML and error formatting."""
