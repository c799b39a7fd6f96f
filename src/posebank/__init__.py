"""posebank: reproducible preparation of 3D human pose datasets."""

__version__ = "0.1.0"
