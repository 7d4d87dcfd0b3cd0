"""Pulumi programs that describe the unified cloud, and the import specs for 纳管."""
