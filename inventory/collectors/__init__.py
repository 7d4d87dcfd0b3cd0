"""Collectors: one module per source kind, each listing raw API shapes and normalizing them to rows."""
