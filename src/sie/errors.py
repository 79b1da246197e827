"""Errors shared by every layer (a module with no imports, so that any module can raise them)."""


class ConfigError(ValueError):
    """A configuration value is missing, unknown or out of range; the message names the key."""
