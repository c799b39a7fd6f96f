"""merge_sources: what each merge of params.yaml reads, as one small file per merge.

``<pipeline.interim>/merges/<merge>.json`` holds, for every source of ``merges.<merge>``, the content digest of its
cache (:func:`posebank.merging.store.cache_digest`: the SHA-256 of the cache folder's index, which holds every
shard's SHA-256), or null while the cache is not built. The stage depends on the whole caches folder, so DVC runs
it after every crop stage that changed a cache; it rewrites the files with the same bytes unless one of a merge's
own sources changed. ``merge@<merge>`` depends on its file instead of on the caches folder (a ``foreach`` stage
cannot list a different number of caches per merge): a rebuilt H36M cache reruns the merges that contain H36M and
no other merge.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from posebank.core.atomic import write_text
from posebank.core.settings import Params

log = logging.getLogger(__name__)
FOLDER = "merges"


def sources_folder(params: Params) -> Path:
    return Path(params.pipeline.interim) / FOLDER


def sources_file(params: Params, name: str) -> Path:
    return sources_folder(params) / f"{name}.json"


def merge_sources(params: Params, name: str, cache_dir=None) -> dict:
    """``{"merge": name, "sources": {dataset: digest or None}}`` for ``merges.<name>`` over ``cache_dir``."""
    from posebank.merging.store import cache_digest, cache_location

    cache_dir = Path(params.pipeline.cache if cache_dir is None else cache_dir)
    found = {}
    for s in params.merge(name).sources:
        path = cache_location(cache_dir, s.dataset)
        found[s.dataset] = None if path is None else cache_digest(path)
    return {"merge": name, "cache_dir": cache_dir.as_posix(), "sources": found}


def run(params: Params) -> dict[str, Path]:
    """Write one file per merge (only when its content changed) and remove the files of merges no longer in
    params.yaml."""
    folder = sources_folder(params)
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for name in params.merges:
        path, found = sources_file(params, name), merge_sources(params, name)
        text = json.dumps(found, indent=2) + "\n"
        if not path.is_file() or path.read_text() != text:
            write_text(path, text)
        info = found["sources"]
        log.info("merge %s: %d of %d source caches built", name, sum(v is not None for v in info.values()),
                 len(info))
        written[name] = path
    for stale in folder.glob("*.json"):
        if stale.stem not in params.merges:
            stale.unlink()
    return written


def main(argv=None) -> int:
    from posebank.entry import whole_params_main

    return whole_params_main("merge_sources", "the source cache digests of every merge of params.yaml", run, argv)
