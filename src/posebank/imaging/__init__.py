"""Frames, crops and image codecs."""
