"""The dataset tests. A package so that its conftest (``datasets.conftest``) does not shadow tests/conftest.py,
which the tests import as ``conftest``."""
