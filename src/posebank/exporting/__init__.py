"""Exports that consumers' own training code reads: SPIN / ReFit npz (:mod:`.spin`, :mod:`.refit_config`),
mmhuman3d HumanData (:mod:`.humandata`), posepile / NLF barecat (:mod:`.barecat_export`); what they share is in
:mod:`.common` (docs/exports.md)."""

from __future__ import annotations

from posebank.core.errors import UsageError
from posebank.core.settings import EXPORT_FORMATS as FORMATS


def exporter(fmt: str):
    """The ``export(source, out, options)`` function of format ``fmt`` (imported here, by name, so that the export
    stages' code deps list every exporter)."""
    if fmt == "spin":
        from posebank.exporting import spin

        return spin.export
    if fmt == "humandata":
        from posebank.exporting import humandata

        return humandata.export
    if fmt == "barecat":
        from posebank.exporting import barecat_export

        return barecat_export.export
    raise UsageError(f"export format {fmt!r}", f"not a format; formats: {', '.join(FORMATS)}, refit-config")
