"""Pulumi entry point for one node of the unified cloud: config in, components out."""

from pathlib import Path

from infra.stack import build_stack, read_stack_config

# Plan exports named in the stack config are resolved beside Pulumi.yaml, one folder up.
build_stack(read_stack_config(base_dir=Path(__file__).resolve().parents[1]))
