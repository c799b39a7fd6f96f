"""Samplers over a :class:`~posebank.loader.dataset.PoseDataset`, deterministic given a seed and an epoch.

* :class:`RoundRobinBatchSampler`: posepile's (MeTRAbs / NLF) per-dataset round robin: every batch holds
  ``counts[d]`` examples of each source ``d`` (huge8: h36m 4, muco 6, ... of 96), each source walking through its
  own shuffled order and reshuffling when it runs out. A ``batch_sampler`` for ``DataLoader``.
* :class:`PartitionSampler`: ReFit's mixed dataset: each example comes from source ``d`` with probability
  ``fractions[d]`` (normalised), then the next of that source's shuffled order. A ``sampler``.
* :func:`sampler_for`: the one a merge's params ask for (params.yaml ``merges.<name>.sampler``, which the merged
  file records), or a shuffled uniform order.

Sources a partial merge lacks are left out (their share goes to the others) and listed in ``left_out``.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from posebank.core.errors import UsageError

log = logging.getLogger(__name__)


class _Streams:
    """Per-source shuffled index streams: a source reshuffles (a new permutation) each time it is used up."""

    def __init__(self, groups: dict[str, np.ndarray], seed: int, epoch: int):
        self.groups = groups
        self.seed, self.epoch = seed, epoch
        self._perm = {}
        self._pos = {}
        self._round = {}

    def _rng(self, k: int, name: str, rnd: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, k, rnd])

    def take(self, k: int, name: str, count: int) -> np.ndarray:
        out = []
        while count > 0:
            if name not in self._perm or self._pos[name] >= len(self._perm[name]):
                rnd = self._round.get(name, -1) + 1
                self._round[name] = rnd
                self._perm[name] = self.groups[name][self._rng(k, name, rnd).permutation(len(self.groups[name]))]
                self._pos[name] = 0
            p = self._pos[name]
            chunk = self._perm[name][p:p + count]
            out.append(chunk)
            self._pos[name] = p + len(chunk)
            count -= len(chunk)
        return np.concatenate(out) if out else np.zeros(0, np.int64)


def _present(dataset, wanted: dict) -> tuple[dict[str, np.ndarray], list[str]]:
    groups = {k: v for k, v in dataset.source_indices().items() if len(v)}
    left_out = [name for name in wanted if name not in groups]
    if left_out:
        log.warning("sampler: sources without examples in this split, left out: %s", ", ".join(left_out))
    use = {name: v for name, v in groups.items() if name in wanted}  # the merge's source order
    if not use:
        raise UsageError("sampler", f"none of its sources ({', '.join(wanted)}) has examples in this split")
    return use, left_out


class RoundRobinBatchSampler:
    """Batches of ``counts[d]`` examples of each source ``d`` (posepile's per-dataset round robin)."""

    def __init__(self, dataset, counts: dict[str, int], seed: int = 0, n_batches: int | None = None):
        self.groups, self.left_out = _present(dataset, counts)
        self.counts = {name: int(counts[name]) for name in self.groups}
        self.batch_size = sum(self.counts.values())
        self.seed, self.epoch = int(seed), 0
        total = sum(len(v) for v in self.groups.values())
        self.n_batches = n_batches if n_batches is not None else max(1, math.ceil(total / self.batch_size))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n_batches

    def __iter__(self):
        streams = _Streams(self.groups, self.seed, self.epoch)
        for _ in range(self.n_batches):
            batch = np.concatenate([streams.take(k, name, c) for k, (name, c) in enumerate(self.counts.items())])
            yield batch.tolist()


class PartitionSampler:
    """Each example from source ``d`` with probability ``fractions[d]`` (ReFit's MixedDataset partitions)."""

    def __init__(self, dataset, fractions: dict[str, float], seed: int = 0, num_samples: int | None = None):
        self.groups, self.left_out = _present(dataset, fractions)
        w = np.array([float(fractions[name]) for name in self.groups])
        self.fractions = dict(zip(self.groups, (w / w.sum()).tolist()))
        self.seed, self.epoch = int(seed), 0
        self.num_samples = num_samples if num_samples is not None else sum(len(v) for v in self.groups.values())

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch, 1 << 20])
        names = list(self.groups)
        choice = rng.choice(len(names), size=self.num_samples, p=list(self.fractions.values()))
        streams = _Streams(self.groups, self.seed, self.epoch)
        out = np.empty(self.num_samples, np.int64)
        for k, name in enumerate(names):
            where = np.flatnonzero(choice == k)
            out[where] = streams.take(k, name, len(where))
        yield from out.tolist()


class UniformSampler:
    """Every example once per epoch, in a seeded shuffled order."""

    def __init__(self, dataset, seed: int = 0):
        self.n = len(dataset)
        self.seed, self.epoch = int(seed), 0
        self.left_out: list[str] = []

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        yield from np.random.default_rng([self.seed, self.epoch]).permutation(self.n).tolist()


def sampler_for(dataset, sampler: dict | None = None, seed: int | None = None):
    """The sampler ``sampler`` (a ``merges.<name>.sampler`` mapping; default: what the merged file records) asks
    for. A round robin is a batch sampler (``DataLoader(ds, batch_sampler=...)``), the others are samplers."""
    if sampler is None:
        sampler = dataset.sampler_params()
    kind = sampler.get("kind", "uniform")
    seed = int(sampler.get("seed", 0) if seed is None else seed)
    if kind == "round_robin":
        return RoundRobinBatchSampler(dataset, sampler["counts"], seed=seed)
    if kind == "partition":
        return PartitionSampler(dataset, sampler["fractions"], seed=seed)
    if kind == "uniform":
        return UniformSampler(dataset, seed=seed)
    raise UsageError(f"sampler kind {kind!r}", "one of uniform, round_robin, partition")
