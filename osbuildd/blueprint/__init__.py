"""Blueprints: upstream's model with every customization, TOML/JSON codec, validation, and the
versioned SQLite blueprint store (changes, tags, undo, workspace, diff)."""

from .codec import parse_size
from .customizations import Customizations
from .errors import BlueprintError
from .model import Blueprint, Container, EnabledModule, Group, Package
from .validation import check_name, standardize_distro

__all__ = [
    "Blueprint", "BlueprintError", "Container", "Customizations", "EnabledModule", "Group", "Package",
    "check_name", "parse_size", "standardize_distro",
]
