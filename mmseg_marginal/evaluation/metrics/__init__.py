"""Placeholder: filled by the feature that owns this subpackage."""
