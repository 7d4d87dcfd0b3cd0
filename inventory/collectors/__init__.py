"""Collectors: one module per source kind, listing raw API shapes and normalizing them."""
