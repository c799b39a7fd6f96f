"""posebank as a data registry: pull a merge or a cache by name, release versions, import into another project.

``workspace`` finds what a name stands for in a DVC workspace (a merge's file and the caches it references, a
dataset's or subset's cache) and what dvc.lock records for it; ``pull`` fetches exactly those from the remote;
``releases`` tags validated, pushed versions (``small5-v1``) and lists them; ``imports`` brings a released merge
and its source caches into a training project with ``dvc import``.
"""
