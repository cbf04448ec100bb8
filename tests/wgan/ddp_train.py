"""Worker for test_wgan_distributed: a short WGAN run under torchrun; one JSON per rank."""

import json
import sys

import torch

from otdist import wgan
from otdist.neural import distributed as D

if __name__ == "__main__":
    out_dir, lipschitz = sys.argv[1], sys.argv[2]
    D.init_from_env()
    rank, size = D.world()
    run = wgan.train(wgan.Config(data="8gaussians", lipschitz=lipschitz, steps=4, batch_size=64, eval_every=2, eval_samples=200,
                                 out=f"{out_dir}/run", progress=False, device="cpu"))
    params = {name: torch.cat([p.detach().flatten() for p in model.parameters()]).tolist()
              for name, model in (("generator", run.generator), ("critic", run.critic))}
    with open(f"{out_dir}/rank{rank}.json", "w") as fh:
        json.dump({"world": size, "step": run.step, **params}, fh)
    torch.distributed.destroy_process_group()
