"""The training loader over small5 and a single cache, and the samplers' frequencies and determinism."""

import numpy as np
import pytest
from torch.utils.data import DataLoader

from posebank.core.errors import UsageError
from posebank.loader import PartitionSampler, PoseDataset, RoundRobinBatchSampler, UniformSampler, collate, sampler_for
from posebank.merging.reader import Merge


def project(K, R, t, X):
    pc = np.einsum("nij,nkj->nki", R.astype(np.float64), X.astype(np.float64) - t[:, None].astype(np.float64))
    uv = np.einsum("nij,nkj->nki", K.astype(np.float64), pc)
    return uv[..., :2] / uv[..., 2:], pc[..., 2]


def test_a_training_loop_over_small5_with_two_workers(small5):
    ds = PoseDataset(small5, split="train", output_size=128)
    batches = sampler_for(ds)  # small5's round robin: 32 of each training source per batch
    assert isinstance(batches, RoundRobinBatchSampler) and batches.batch_size == 96
    loader = DataLoader(ds, batch_sampler=batches, num_workers=2, collate_fn=collate)
    seen, n_valid = set(), 0
    for epoch in range(2):
        batches.set_epoch(epoch)
        for b in loader:
            assert b["image"].shape == (96, 128, 128, 3) and b["mask"].shape == (96, 128, 128)
            assert b["world_coords"].shape == (96, 77, 3)
            X, valid = b["world_coords"].numpy(), b["joint_valid"].numpy()
            uv, z = project(b["intrinsic_matrix"].numpy(), b["R"].numpy(), b["t"].numpy(), X)
            inside = (uv >= -0.5).all(-1) & (uv < 127.5).all(-1) & (z > 0)
            assert inside[valid].all()  # every valid joint lands inside the crop
            # and inside the box (the box holds the person: 1.15 x the projected joints)
            box = b["bbox"].numpy()[:, None]
            in_box = (uv >= box[..., :2] - 1).all(-1) & (uv <= box[..., :2] + box[..., 2:] + 1).all(-1)
            assert in_box[valid].mean() > 0.95
            assert sorted(set(b["source"])) == ["h36m_alljoints", "muco_3dhp", "surreal"]
            assert all(b["source"].count(s) == 32 for s in set(b["source"]))
            assert np.isnan(X[~valid]).all() and valid.sum(1).min() >= 17
            seen.update(b["index"].tolist())
            n_valid += int(valid.sum())
    assert n_valid > 0 and seen <= set(range(len(ds)))


def test_items_match_the_merge_and_named_skeletons_select_joints(small5):
    with Merge(small5) as m:
        start, stop = m.split_range("val")
        full = PoseDataset(small5, split="val")
        sel = PoseDataset(small5, split="val", skeleton="mpi_inf_3dhp_17")
        assert len(full) == stop - start > 0
        idx = np.asarray(m.skeletons["mpi_inf_3dhp_17"])
        for i in (0, len(full) // 2, len(full) - 1):
            a, b = full[i], sel[i]
            assert np.array_equal(a["world_coords"], m.column("world_coords", start + i), equal_nan=True)
            assert np.array_equal(b["world_coords"], a["world_coords"][idx], equal_nan=True)
            assert b["joint_valid"].all() and b["source"] in ("tdhp_test", "mupots")
            h, w = a["image"].shape[:2]
            assert (w, h) == tuple(m.column("image_size", start + i)) and a["mask"].shape == (h, w)
            assert a["image"].dtype == np.uint8 and a["image"].shape[2] == 3
    with pytest.raises(UsageError, match="available"):
        PoseDataset(small5, split="train", skeleton="coco_19")  # no COCO-joint source in small5
    with pytest.raises(UsageError, match="not a split"):
        PoseDataset(small5, split="training")


def test_a_single_cache_loads_the_same_way(small5_caches):
    ds = PoseDataset(small5_caches / "h36m_alljoints", split="test", skeleton="h36m_17")
    assert len(ds) > 0 and ds.sources == ["h36m_alljoints"]
    item = ds[0]
    assert item["world_coords"].shape == (17, 3) and item["joint_valid"].all()
    uv, z = project(item["intrinsic_matrix"][None], item["R"][None], item["t"][None], item["world_coords"][None])
    h, w = item["image"].shape[:2]
    assert (z > 0).all() and (uv[0] >= -0.5).all() and (uv[0, :, 0] < w).all() and (uv[0, :, 1] < h).all()
    batch = collate([ds[0], ds[1]])  # crops of different sizes stay a list
    assert isinstance(batch["image"], list) or batch["image"].shape[0] == 2
    assert isinstance(sampler_for(ds), UniformSampler)


def test_sampler_frequencies_match_their_ratios_and_are_deterministic(small5):
    ds = PoseDataset(small5, split="train")
    groups = ds.source_indices()
    source_of = np.empty(len(ds), object)
    for name, idx in groups.items():
        source_of[idx] = name
    counts = {"surreal": 5, "h36m_alljoints": 4, "muco_3dhp": 6}  # huge8's ratios of these three
    rr = RoundRobinBatchSampler(ds, counts, seed=3, n_batches=200)
    drawn = np.concatenate([np.asarray(b) for b in rr])
    freq = {s: np.mean(source_of[drawn] == s) for s in counts}
    for s, c in counts.items():
        assert abs(freq[s] - c / 15) < 0.02
    rr2 = RoundRobinBatchSampler(ds, counts, seed=3, n_batches=200)
    assert [list(b) for b in rr2] == [list(np.asarray(b)) for b in rr]  # same seed and epoch: same batches
    rr2.set_epoch(1)
    assert [list(b) for b in rr2] != [list(b) for b in rr]
    # each source walks through all its examples before repeating one
    first = [b[:5] for b in RoundRobinBatchSampler(ds, counts, seed=0, n_batches=5)]
    surreal = np.concatenate(first)
    assert len(set(surreal.tolist())) == len(groups["surreal"])

    fractions = {"surreal": 0.5, "h36m_alljoints": 0.3, "muco_3dhp": 0.2}  # ReFit-style partitions
    ps = PartitionSampler(ds, fractions, seed=1, num_samples=20000)
    drawn = np.fromiter(ps, np.int64)
    for s, f in fractions.items():
        assert abs(np.mean(source_of[drawn] == s) - f) < 0.02
    assert list(PartitionSampler(ds, fractions, seed=1, num_samples=20000)) == drawn.tolist()
    u = list(UniformSampler(ds, seed=0))
    assert sorted(u) == list(range(len(ds))) and u != list(range(len(ds)))


def test_a_sampler_leaves_out_sources_a_split_lacks(small5):
    ds = PoseDataset(small5, split="val")
    rr = RoundRobinBatchSampler(ds, {"surreal": 2, "mupots": 3, "tdhp_test": 1})
    assert rr.left_out == ["surreal"] and rr.batch_size == 4
    with pytest.raises(UsageError, match="none of its sources"):
        RoundRobinBatchSampler(ds, {"surreal": 2})
