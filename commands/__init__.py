"""The inventory's command groups, mounted by cli.py."""
