"""Where one dataset's products live: every path comes from params.yaml's ``pipeline:`` section."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from posebank.core.atomic import prepare_output
from posebank.core.settings import PipelineParams
from posebank.core.store import INDEX_NAME

# stage -> folder of its shards under <interim>/<dataset>/ (the crop stage's shards are the cache's own)
SHARD_FOLDERS = {"frames": "frames", "detect": "boxes", "segment": "masks"}


@dataclasses.dataclass
class Layout:
    dataset: str
    interim: Path  # <interim>/<dataset>
    cache: Path  # the final cache: a folder of shards and index.json
    # <reports>: pipeline.reports; None for a conversion outside the pipeline (``posebank convert``), which writes
    # no reports beside its cache folder
    reports: Path | None = None

    @classmethod
    def from_params(cls, dataset: str, pipeline: PipelineParams) -> Layout:
        return cls(dataset, Path(pipeline.interim) / dataset, Path(pipeline.cache) / dataset, Path(pipeline.reports))

    @property
    def records(self) -> Path:
        return self.interim / "records.h5"

    @property
    def index(self) -> Path:
        return self.cache / INDEX_NAME

    def shard_folder(self, stage: str) -> Path:
        return self.cache if stage == "crop" else self.interim / SHARD_FOLDERS[stage]

    def shard(self, stage: str, name: str) -> Path:
        return self.shard_folder(stage) / f"{name}.h5"

    def outputs(self, stage: str) -> list[Path]:
        """The files ``stage`` writes (a shard folder stands for a file in it)."""
        if stage == "convert":
            return [self.records]
        if stage in SHARD_FOLDERS:
            return [self.shard(stage, "all")]
        if stage == "crop":
            return [self.index, *([self.quarantine_report] if self.reports is not None else [])]
        if stage == "validate":
            return [self.validation_report, self.contact_sheet, self.data_docs / "index.html", self.stats,
                    self.stats_plot]
        raise KeyError(stage)

    def check_outputs(self, stage: str) -> None:
        """OutputError before any work when one of ``stage``'s outputs cannot be written (the folders are made)."""
        for path in self.outputs(stage):
            prepare_output(path)

    @property
    def quarantine_report(self) -> Path | None:
        """What the cache leaves out, one JSON line per quarantine entry (the crop stage's report); None without a
        reports folder."""
        return None if self.reports is None else self.reports / "quarantine" / f"{self.dataset}.jsonl"

    @property
    def validation_report(self) -> Path:
        return self.reports / "validation" / f"{self.dataset}.json"

    @property
    def contact_sheet(self) -> Path:
        return self.reports / "contact" / f"{self.dataset}.png"

    @property
    def stats(self) -> Path:
        """The dataset's statistics, a DVC metric (posebank.validation.stats)."""
        return self.reports / "stats" / f"{self.dataset}.json"

    @property
    def stats_plot(self) -> Path:
        """The box-size histogram, a DVC plot (posebank.validation.stats)."""
        return self.reports / "stats" / f"{self.dataset}_boxes.csv"

    @property
    def data_docs(self) -> Path:
        return self.reports / "data_docs"
