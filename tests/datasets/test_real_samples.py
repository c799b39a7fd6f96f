"""The real samples in tests/data/real are the files PROVENANCE.md describes, byte for byte."""

import hashlib
import re

from conftest import SAMPLES, sample

PROVENANCE = SAMPLES / "PROVENANCE.md"
COLUMNS = ["file", "source repository", "commit", "path in the repository", "licence", "sha256"]


def provenance_rows() -> list[dict]:
    rows, header = [], None
    for line in PROVENANCE.read_text().splitlines():
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            header = cells
        elif not set(line) <= set("|-: "):
            rows.append(dict(zip(header, cells)))
    assert header == COLUMNS
    return rows


def test_every_sample_matches_its_provenance():
    rows = provenance_rows()
    assert rows
    for row in rows:
        assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", row["source repository"]), row
        assert re.fullmatch(r"[0-9a-f]{40}", row["commit"]), row
        assert row["path in the repository"] and row["licence"], row
        data = sample(row["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == row["sha256"], row["file"]


def test_no_sample_without_provenance():
    listed = {row["file"] for row in provenance_rows()}
    present = {p.relative_to(SAMPLES).as_posix() for p in SAMPLES.rglob("*") if p.is_file()}
    assert present - {"PROVENANCE.md", ".gitattributes"} == listed
