"""Package data: JSON Schemas of the files hwgen writes (``manifest.schema.json``:
docs/manifest.md)."""
