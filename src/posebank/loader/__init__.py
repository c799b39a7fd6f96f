"""Training-side reading of posebank's products: a torch ``Dataset`` over a merge or a cache, and the samplers of
posepile (per-dataset round robin) and ReFit (partitions).

```python
from torch.utils.data import DataLoader
from posebank.loader import PoseDataset, collate, sampler_for

ds = PoseDataset("data/merged/small5.h5", split="train", output_size=256)
loader = DataLoader(ds, batch_sampler=sampler_for(ds), num_workers=2, collate_fn=collate)
```
"""

from posebank.loader.dataset import PoseDataset, collate
from posebank.loader.samplers import PartitionSampler, RoundRobinBatchSampler, UniformSampler, sampler_for

__all__ = ["PartitionSampler", "PoseDataset", "RoundRobinBatchSampler", "UniformSampler", "collate", "sampler_for"]
