"""Catalogs: schema, loader, custom entries, catalog tables and the engine support matrix."""
