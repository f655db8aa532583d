"""Plumbing the core stands on: downloads with checksums and safe archive extraction (``downloads``), the
generated cartoon faces used offline (``synthetic_faces``)."""
