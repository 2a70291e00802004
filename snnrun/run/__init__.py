"""Runners and what they share: label assignment and classification (``evaluation``)."""
