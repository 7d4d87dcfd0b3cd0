"""The web portal at /: server-rendered pages over the same use cases as the API and the CLI."""
