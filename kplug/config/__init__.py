"""The run config: its pydantic ``schema``, ``load`` (YAML/JSON/TOML files) and ``errors`` (formatting)."""
