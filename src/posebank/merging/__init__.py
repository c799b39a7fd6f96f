"""Merged meta-datasets (huge8, medium3, small5): union skeleton, plausibility filter, the streaming merge and the
merged file that refers to its sources' images."""
