"""Prompt Playground: compare prompt variants across text, image and music models."""

__version__ = "0.1.0"
