"""WGAN: exact resume, checkpoint safety, metrics on planted generators, CLI."""

import io
import json
import os
import signal
import subprocess
import sys
import time
from functools import partial

import numpy as np
import pytest
import torch

from otdist import _io, wgan
from otdist.cli import main
from otdist.wgan import checkpoint, metrics
from otdist.wgan.train import _Trainer
from otdist.wgan.data import load, sampler

#: Evaluation samples of the tiny runs (the exact W1 between them is the slowest part of a step).
TINY_EVAL = 200


def _small(out, **kw):
    return wgan.Config(**{"data": "8gaussians", "steps": 6, "eval_every": 3, "checkpoint_every": 3,
                          "batch_size": 64, "eval_samples": TINY_EVAL, "out": str(out), "progress": False, **kw})


def _params(module):
    return torch.cat([p.detach().flatten() for p in module.state_dict().values() if p.dtype.is_floating_point])


@pytest.mark.parametrize("lipschitz", ["gp", "clip", "groupsort", "spectral"])
def test_resume_follows_the_uninterrupted_trajectory_whatever_the_evaluations(tmp_path, lipschitz):
    """4 steps evaluated at every step == 2 steps evaluated once, saved, resumed for 2 more evaluated once.

    On the Swiss roll, whose learning rate is constant (a decaying one follows the run's steps).
    """
    small = partial(_small, data="swissroll", lipschitz=lipschitz)
    full = wgan.train(small(tmp_path / "full", steps=4, eval_every=1, checkpoint_every=4))
    wgan.train(small(tmp_path / "split", steps=2, eval_every=2, checkpoint_every=2))
    resumed = wgan.train(small(tmp_path / "split", steps=4, eval_every=4, checkpoint_every=4, resume=True))
    assert resumed.step == full.step == 4
    torch.testing.assert_close(_params(resumed.generator), _params(full.generator), rtol=0, atol=0)
    torch.testing.assert_close(_params(resumed.critic), _params(full.critic), rtol=0, atol=0)
    assert [r["step"] for r in full.log] == [0, 1, 2, 3, 4] and [r["step"] for r in resumed.log] == [0, 2, 4]
    timeless = lambda row: {k: v for k, v in row.items() if k != "seconds"}  # noqa: E731
    np.testing.assert_equal([timeless(r) for r in resumed.log], [timeless(full.log[k]) for k in (0, 2, 4)])  # NaN == NaN
    same = {k: v for k, v in full.metrics.items() if k not in ("seconds", "spearman_critic_vs_distance")}
    np.testing.assert_equal({k: resumed.metrics[k] for k in same}, same)


@pytest.mark.parametrize("lipschitz", ["gp", "spectral"])
def test_evaluation_changes_no_weights_buffers_or_random_streams(lipschitz):
    trainer = _Trainer(_small("unused", lipschitz=lipschitz).validated())
    before = {name: {k: v.clone() for k, v in m.state_dict().items()} for name, m in
              (("generator", trainer.generator), ("critic", trainer.critic))}
    stream, modes = trainer.stream.get_state(), (trainer.generator.training, trainer.critic.training)
    first = trainer.evaluate()
    for name, module in (("generator", trainer.generator), ("critic", trainer.critic)):
        after = module.state_dict()
        assert all(torch.equal(before[name][k], after[k]) for k in after), name
    assert torch.equal(stream, trainer.stream.get_state())
    assert (trainer.generator.training, trainer.critic.training) == modes
    assert trainer.evaluate() == first


def test_resume_refuses_a_different_configuration(tmp_path):
    wgan.train(_small(tmp_path, steps=3))
    with pytest.raises(ValueError, match="cannot resume .*lipschitz: 'gp' -> 'clip'"):
        wgan.train(_small(tmp_path, lipschitz="clip", resume=True))
    with pytest.raises(FileNotFoundError, match="Train without --resume first"):
        wgan.train(_small(tmp_path / "none", resume=True))


class _Exploit:
    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


def test_tampered_checkpoint_is_refused(tmp_path):
    run = wgan.train(_small(tmp_path, steps=2))
    state = torch.load(io.BytesIO(_io.read_checksummed(run.files["checkpoint"])[0]), weights_only=True)
    exploit = _Exploit()
    exploit.target = str(tmp_path / "pwned")
    state["generator"] = exploit
    checkpoint.save_atomic(state, tmp_path / "tampered.pt")  # a valid checksum: the file is intact, its pickle is not
    with pytest.raises(ValueError, match="not a valid otdist checkpoint"):
        wgan.load_generator(tmp_path / "tampered.pt")
    assert not (tmp_path / "pwned").exists()
    checkpoint.save_atomic({"format": "something else"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not an otdist WGAN checkpoint"):
        checkpoint.load(tmp_path / "other.pt")


def test_mixture_metrics_on_planted_generators():
    data = load("8gaussians")
    rng = np.random.default_rng(0)
    one_mode = (data.centres[3] + data.sigma * rng.normal(size=(2000, 2))).astype(np.float32)
    got = metrics.evaluate(one_mode, data)
    assert got["modes_covered"] == 1 and got["modes_total"] == 8
    assert got["high_quality_fraction"] > 0.95
    assert got["exact_w1_to_real"] > 1.5  # most of the real mass is on the other seven modes
    real = metrics.evaluate(data.train[:2000], data)
    assert real["modes_covered"] == 8 and real["high_quality_fraction"] > 0.97  # 1 - exp(-9/2) = 0.989 in 2-D
    assert real["exact_w1_to_real"] < 0.1
    blurred = metrics.mixture_metrics(rng.normal(size=(2000, 2)), data.centres, data.sigma)
    assert blurred["high_quality_fraction"] < 0.05


@pytest.mark.parametrize("name", ["8gaussians", "swissroll"])
def test_w1_ratio_of_planted_generators(name):
    draw = sampler(name)
    n, shift = 150, np.array([40.0, 0.0])
    perfect = metrics.w1_ratio(lambda k, seed: draw(k, np.random.default_rng(seed)), draw, n, seed=1)
    shifted = metrics.w1_ratio(lambda k, seed: draw(k, np.random.default_rng(seed)) + shift, draw, n, seed=1)
    # A perfect generator is another sample of the data: its ratio is a ratio of two noise-floor means
    # (5 and 15 draws; one draw varies by 30-40%), so well inside [0.5, 2].
    assert 0.5 < perfect["w1_ratio"] < 2.0
    # Triangle inequality: |W1(g + s, r) - |s|| <= W1(g, r), a noise-floor draw; 5 of them average below 3x the floor.
    assert abs(shifted["w1_generated_mean"] - 40.0) <= 3 * shifted["w1_floor_mean"]
    assert shifted["w1_ratio"] == pytest.approx(shifted["w1_generated_mean"] / shifted["w1_floor_mean"], rel=1e-12)
    assert shifted["w1_floor_mean"] == perfect["w1_floor_mean"]  # the floor depends on the data and seed only


@pytest.mark.parametrize("name", ["digits", "flags"])
def test_image_metrics_on_planted_generators(name):
    data = load(name)
    real = metrics.evaluate(data.test, data)
    assert real["classes_covered"] == real["classes_total"] and real["classifier_accuracy_on_real"] > 0.9
    assert real["class_kl_to_uniform"] < 0.05
    collapsed = np.repeat(data.test[:1], 500, axis=0)  # a generator that always outputs the same image
    got = metrics.evaluate(collapsed, data)
    assert got["classes_covered"] == 1 and got["class_kl_to_uniform"] > np.log(real["classes_total"]) - 0.3


def test_flags_are_in_range_and_every_layout_appears():
    data = load("flags")
    assert data.train.shape[1] == 3 * 24 * 36 and data.train.min() >= -1 and data.train.max() <= 1
    assert set(np.unique(data.labels_train)) == set(range(6))


def test_cli_train_and_sample(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["wgan", "train", "--data", "swissroll", "--steps", "4", "--out", str(out), "--quiet",
                 "--batch-size", "32", "--eval-samples", str(TINY_EVAL)]) == 0
    text = capsys.readouterr().out
    assert "exact_w1_to_real" in text
    for name in ("log.csv", "checkpoint.pt", "samples.png", "curves.png", "metrics.json", "config.json"):
        assert (out / name).is_file(), name
    assert (out / "samples.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    written = json.loads((out / "metrics.json").read_text())
    assert written["steps"] == 4 and written["w1_ratio"] > 0
    assert main(["wgan", "sample", "--checkpoint", str(out / "checkpoint.pt"), "--n", "50", "--out",
                 str(tmp_path / "s.npy")]) == 0
    assert np.load(tmp_path / "s.npy").shape == (50, 2)
    assert main(["wgan", "sample", "--checkpoint", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "t.npy")]) == 2
    assert capsys.readouterr().err.startswith("otdist: error: no checkpoint at")


@pytest.mark.parametrize("name, shape", [("digits", (8, 8)), ("flags", (3, 24, 36))])
def test_image_run_samples_have_the_image_shape(tmp_path, name, shape):
    run = wgan.train(wgan.Config(data=name, steps=2, batch_size=32, eval_samples=TINY_EVAL, out=str(tmp_path), progress=False))
    assert run.sample(3).shape == (3, *shape)
    assert wgan.load_generator(run.files["checkpoint"])(4).shape == (4, *shape)
    assert "classes_covered" in run.metrics and "sliced_w1_to_real" in run.metrics


def test_sigterm_saves_a_checkpoint_and_resume_continues(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "otdist.cli", "wgan", "train", "--steps", "100000", "--out", str(out), "--quiet",
           "--batch-size", "32"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (out / "config.json").exists() and time.time() < deadline:  # written when training starts
        time.sleep(0.2)
    time.sleep(3)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "checkpoint saved" in err
    state = checkpoint.load(out / "checkpoint.pt")
    assert state["step"] >= 0 and len(state["log"]) >= 1  # saved wherever the signal arrived
    resumed = wgan.train(wgan.Config(steps=state["step"] + 2, batch_size=32, eval_samples=TINY_EVAL, out=str(out), resume=True, progress=False))
    assert resumed.step == state["step"] + 2


@pytest.fixture(scope="module")
def eight_gaussians_default_run(tmp_path_factory):
    """``otdist wgan train --data 8gaussians`` with every default, seed 0."""
    return wgan.train(wgan.Config(data="8gaussians", lipschitz="gp", seed=0, out=str(tmp_path_factory.mktemp("8g")),
                                  progress=False))


@pytest.mark.slow
def test_eight_gaussians_with_gradient_penalty_at_the_default_budget(eight_gaussians_default_run):
    m = eight_gaussians_default_run.metrics
    assert m["modes_covered"] == 8
    assert m["high_quality_fraction"] >= 0.6
    assert m["exact_w1_to_real"] < 0.25 * m["initial_distance"]
    assert m["spearman_critic_vs_distance"] > 0.8  # the critic's estimate tracks the exact W1


@pytest.mark.slow
def test_eight_gaussians_meet_the_sharpness_and_w1_ratio_targets(eight_gaussians_default_run):
    """>= 80% within 3 sigma and a W1 ratio <= 1.75 (within 75% of the noise floor between two real draws)."""
    m = eight_gaussians_default_run.metrics
    assert m["high_quality_fraction"] >= 0.8
    assert m["w1_ratio"] <= 1.75


@pytest.mark.slow
def test_digits_cover_the_classes(tmp_path):
    run = wgan.train(wgan.Config(data="digits", lipschitz="gp", out=str(tmp_path), progress=False))
    m = run.metrics
    assert m["classes_covered"] >= 9
    assert m["classifier_confidence"] > 0.8
    assert m["sliced_w1_to_real"] < 0.5 * m["initial_distance"]
