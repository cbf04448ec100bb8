"""The WGAN under torchrun --nproc_per_node=2 (DDP, gloo on CPU)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

WORKER = Path(__file__).with_name("ddp_train.py")


@pytest.mark.slow
@pytest.mark.parametrize("lipschitz", ["gp", "groupsort"])
def test_two_ranks_train_the_same_models(tmp_path, lipschitz):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(WORKER),
           str(tmp_path), lipschitz]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["world"] == 2 and ranks[0]["step"] == ranks[1]["step"] == 4
    np.testing.assert_array_equal(ranks[0]["generator"], ranks[1]["generator"])
    np.testing.assert_array_equal(ranks[0]["critic"], ranks[1]["critic"])
    files = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"checkpoint.pt", "log.csv", "metrics.json", "samples.png", "curves.png"} <= files
