"""Where one dataset's products live: every path comes from params.yaml's ``pipeline:`` section."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from posebank.core.atomic import prepare_output
from posebank.core.settings import PipelineParams

# stage -> folder of its shards under <interim>/<dataset>/
SHARD_FOLDERS = {"frames": "frames", "detect": "boxes", "segment": "masks", "crop": "crops"}


@dataclasses.dataclass
class Layout:
    dataset: str
    interim: Path  # <interim>/<dataset>
    cache: Path  # the final cache file
    reports: Path = Path("reports")

    @classmethod
    def from_params(cls, dataset: str, pipeline: PipelineParams) -> Layout:
        return cls(dataset, Path(pipeline.interim) / dataset, Path(pipeline.cache) / f"{dataset}.h5",
                   Path(pipeline.reports))

    @property
    def records(self) -> Path:
        return self.interim / "records.h5"

    def shard_folder(self, stage: str) -> Path:
        return self.interim / SHARD_FOLDERS[stage]

    def shard(self, stage: str, k: int) -> Path:
        return self.shard_folder(stage) / f"shard-{k:05d}.h5"

    def outputs(self, stage: str) -> list[Path]:
        """The files ``stage`` writes (a shard folder stands for its first shard)."""
        return {"convert": [self.records], "frames": [self.shard("frames", 0)], "detect": [self.shard("detect", 0)],
                "segment": [self.shard("segment", 0)], "crop": [self.shard("crop", 0), self.cache],
                "validate": [self.validation_report, self.contact_sheet, self.data_docs / "index.html"]}[stage]

    def check_outputs(self, stage: str) -> None:
        """OutputError before any work when one of ``stage``'s outputs cannot be written (the folders are made)."""
        for path in self.outputs(stage):
            prepare_output(path)

    @property
    def validation_report(self) -> Path:
        return self.reports / "validation" / f"{self.dataset}.json"

    @property
    def contact_sheet(self) -> Path:
        return self.reports / "contact" / f"{self.dataset}.png"

    @property
    def data_docs(self) -> Path:
        return self.reports / "data_docs"
