"""Worker for test_distributed.py: run under torchrun, writes one JSON per rank."""

import json
import sys

import numpy as np
import torch

from otdist.neural import KRDualEstimator
from otdist.neural import distributed as D

if __name__ == "__main__":
    out_dir, critic = sys.argv[1], sys.argv[2]
    D.init_from_env()
    rank, size = D.world()
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(2000, 2)), rng.normal(size=(2000, 2)) + [1.0, 0.0]
    res = KRDualEstimator(critic, steps=300, batch_size=512, progress=False, seed=0, device="cpu").fit(x, y)
    params = torch.cat([p.detach().flatten() for p in res.critic.parameters()]).tolist()
    with open(f"{out_dir}/rank{rank}.json", "w") as fh:
        json.dump({"value": res.value, "params": params, "world": size}, fh)
    torch.distributed.destroy_process_group()
