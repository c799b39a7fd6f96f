"""The shard plan: stable boundaries (subject, sequence, camera), a size target, a small dataset in one shard."""

import numpy as np

from posebank.core.camera import Camera
from posebank.core.settings import PipelineParams
from posebank.datasets.base import RawInstance
from posebank.pipeline.plan import shard_name, shard_plan
from posebank.pipeline.records import Records, frame_table

CAM = Camera(np.eye(3), np.eye(3), np.zeros(3))


def records(groups: dict[tuple[str, str, str], int], people: int = 1) -> Records:
    inst = []
    for (subject, sequence, camera), n in groups.items():
        for f in range(n):
            for p in range(people):
                inst.append(RawInstance(source=f"{subject}/{sequence}.{camera}.mp4", frame_index=f,
                                        world_coords=np.zeros((1, 3)), camera=CAM, split="train", subject=subject,
                                        sequence=sequence, camera_name=camera, person_index=p))
    frame_id, frames = frame_table(inst)
    return Records("toy", None, inst, frame_id, frames, {})


GROUPS = {("S1", "walk", "c0"): 30, ("S1", "walk", "c1"): 30, ("S1", "sit", "c0"): 10, ("S2", "walk", "c0"): 12,
          ("S3", "eat 1", "c0"): 100}


def plan(groups, **pipeline):
    return shard_plan(records(groups), PipelineParams.from_dict({"shard_frames": 10_000, **pipeline}))


def test_a_small_dataset_is_one_shard():
    p = plan(GROUPS)
    assert [(s.name, len(s.frame_ids)) for s in p] == [("all", 182)]


def test_groups_split_level_by_level_and_big_ones_in_equal_parts():
    p = plan(GROUPS, shard_mb=4, example_kb=100)  # at most 40 examples per shard
    assert [(s.key, len(s.frame_ids)) for s in p] == [
        (("S1", "walk", "c0"), 30), (("S1", "walk", "c1"), 30), (("S1", "sit"), 10), (("S2",), 12),
        (("S3", "eat 1", "c0", "part0001of0003"), 33), (("S3", "eat 1", "c0", "part0002of0003"), 34),
        (("S3", "eat 1", "c0", "part0003of0003"), 33)]
    frames = [f for s in p for f in s.frame_ids]
    assert sorted(frames) == list(range(182))
    names = [s.name for s in p]
    assert len(set(names)) == len(names) and names[:4] == ["S1.walk.c0", "S1.walk.c1", "S1.sit", "S2"]
    assert all(n.replace(".", "").replace("-", "").replace("_", "").isalnum() for n in names)


def test_frames_limit_and_people_per_frame_count():
    assert [len(s.frame_ids) for s in plan({("S1", "a", "c"): 25}, shard_frames=10)] == [8, 9, 8]
    # 3 people a frame: 30 frames are 90 examples, over a 40-example shard
    p = shard_plan(records({("S1", "a", "c"): 30}, people=3),
                   PipelineParams.from_dict({"shard_mb": 4, "example_kb": 100}))
    assert [len(s.frame_ids) for s in p] == [10, 10, 10]


def test_a_change_to_one_sequence_changes_only_its_shards():
    base = {s.name: s.frame_ids for s in plan(GROUPS, shard_mb=4, example_kb=100)}
    grown = dict(GROUPS)
    grown[("S1", "sit", "c0")] = 14  # four more frames in one sequence (still within the limit)
    after = {s.name: s.frame_ids for s in plan(grown, shard_mb=4, example_kb=100)}
    assert after.keys() == base.keys()
    changed = {n for n in after if len(after[n]) != len(base[n])}
    assert changed == {"S1.sit"}


def test_shard_names_are_file_safe_and_distinct():
    assert shard_name(()) == "all"
    assert shard_name(("S1", "walk")) == "S1.walk"
    a, b = shard_name(("S1", "eat 1")), shard_name(("S1", "eat_1"))
    assert a != b and a.startswith("S1.eat_1-") and b == "S1.eat_1"
    assert "/" not in shard_name(("TS1/person0",)) and len(shard_name(("x" * 500,))) < 120
