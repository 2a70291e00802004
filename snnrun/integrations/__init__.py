"""Integrations with libraries outside the engine: data sets (torchvision) and plots (matplotlib)."""
