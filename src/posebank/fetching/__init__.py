"""Getting a dataset's raw files where its authors publish direct downloads (the fetch stage, docs/fetching.md).

``resources`` describes one download (:class:`~posebank.fetching.resources.Resource`: URL, file name, published
checksum, size, how it is unpacked); the dataset modules import only it, so this package's ``__init__`` imports
nothing. ``download`` fetches a resource resumably and verifies its checksum; ``extract`` unpacks an archive into
the raw folder, refusing members that could write outside it.
"""
