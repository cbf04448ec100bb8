"""Per-dataset defaults: determinism, rescaled training reported in data units, the oscillation measure."""

import numpy as np
import pytest
import torch

from otdist import wgan
from otdist.wgan import checkpoint
from otdist.wgan.models import LEGACY_POINTS, Generator
from otdist.wgan.recipes import GP_RECIPES, recipe
from otdist.wgan.train import SPREAD_EVALUATIONS, _Trainer, final_spread

TINY_EVAL = 200


def _tiny(out, **kw):
    return wgan.Config(**{"steps": 3, "eval_every": 3, "checkpoint_every": 3, "batch_size": 64,
                          "eval_samples": TINY_EVAL, "out": str(out), "progress": False, **kw})


def _params(module):
    return torch.cat([p.detach().flatten() for p in module.state_dict().values() if p.dtype.is_floating_point])


@pytest.mark.parametrize("data", ["25gaussians"])
def test_the_same_seed_gives_the_same_metrics_and_another_seed_does_not(tmp_path, data):
    first = wgan.train(_tiny(tmp_path / "a", data=data, seed=3))
    again = wgan.train(_tiny(tmp_path / "b", data=data, seed=3))
    other = wgan.train(_tiny(tmp_path / "c", data=data, seed=4))
    timeless = lambda m: {k: v for k, v in m.items() if k != "seconds"}  # noqa: E731
    assert timeless(first.metrics) == timeless(again.metrics)
    assert torch.equal(_params(first.generator), _params(again.generator))
    assert not torch.equal(_params(first.generator), _params(other.generator))
    assert first.metrics["w1_ratio"] != other.metrics["w1_ratio"]


@pytest.mark.parametrize("data", ["25gaussians"])
def test_the_rescaled_critic_estimate_is_in_data_units(data):
    """A fixed 1-Lipschitz critic f(x) = <u, x> / scale in the rescaled space estimates <u, E real - E fake> in data units."""
    trainer = _Trainer(_tiny("unused", data=data).validated())
    scale = recipe(data, "gp").data_scale
    assert scale != 1.0  # these datasets train rescaled
    u = torch.tensor([0.6, 0.8])
    with torch.no_grad():
        for layer in trainer.critic.net:
            if isinstance(layer, torch.nn.Linear):
                layer.weight.zero_()
                layer.bias.zero_()
        first, last = trainer.critic.net[0], trainer.critic.net[-1]
        # Through the LeakyReLU layers: route x -> relu(<u, x> + b) with b large enough to stay positive.
        first.weight[0] = u
        first.bias[0] = 100.0
        for layer in list(trainer.critic.net)[2:-1]:
            if isinstance(layer, torch.nn.Linear):
                layer.weight[0, 0] = 1.0
        last.weight[0, 0] = 1.0
    fake = trainer.generate(len(trainer.real_test), seed=10_000 + trainer.config.seed)
    expected = float(u @ (trainer.real_test.mean(0) - fake.mean(0)))
    estimate, _ = trainer.evaluate()
    assert estimate == pytest.approx(expected, rel=1e-4, abs=1e-4)


def test_final_spread_is_the_range_over_the_median_of_the_last_evaluations():
    log = [{"step": k, "eval_distance": d} for k, d in enumerate([9.0, 5.0, 1.0, 1.2, 0.8, 1.0, 1.1])]
    # step 0 is the initialisation; the last five distances are 1.0, 1.2, 0.8, 1.0, 1.1: (1.2 - 0.8) / 1.0
    assert final_spread(log) == pytest.approx(0.4)
    assert final_spread([{"step": k, "eval_distance": 2.0} for k in range(SPREAD_EVALUATIONS + 1)]) == 0.0
    assert final_spread(log[:SPREAD_EVALUATIONS]) is None  # four evaluations after initialisation


def test_the_rescaled_generator_round_trips_through_its_checkpoint(tmp_path):
    run = wgan.train(_tiny(tmp_path, data="25gaussians"))
    assert run.generator.scale == GP_RECIPES["25gaussians"].data_scale
    np.testing.assert_array_equal(wgan.load_generator(run.files["checkpoint"])(7, seed=2), run.sample(7, seed=2))
    with torch.no_grad():
        z = torch.randn(5, run.generator.latent_dim, generator=torch.Generator().manual_seed(0))
        torch.testing.assert_close(run.generator(z), run.generator.net(z) * run.generator.scale, rtol=0, atol=0)


def test_a_checkpoint_without_architecture_loads_the_earlier_toy_networks(tmp_path):
    with torch.random.fork_rng(devices=[]):
        legacy = Generator(2, 2, LEGACY_POINTS.generator_hidden, LEGACY_POINTS.generator_depth, False)
    state = {"format": checkpoint.FORMAT, "shape": [2], "latent_dim": 2, "generator": legacy.state_dict()}
    path = checkpoint.save_atomic(state, tmp_path / "legacy.pt")
    np.testing.assert_array_equal(wgan.load_generator(path)(6, seed=1), checkpoint.sample(legacy, 6, (2,), seed=1))


def test_a_bad_architecture_entry_is_refused(tmp_path):
    run = wgan.train(_tiny(tmp_path, data="8gaussians", steps=1, eval_every=1, checkpoint_every=1))
    state = checkpoint.load(run.files["checkpoint"])
    for bad in ({"generator_hidden": 0, "generator_depth": 4, "scale": 1.0}, {"scale": 1.0},
                {**state["architecture"], "scale": -1.0}):
        path = checkpoint.save_atomic({**state, "architecture": bad}, tmp_path / "bad.pt")
        with pytest.raises(ValueError, match="architecture|scale"):
            wgan.load_generator(path)


def test_learning_rate_decay_is_linear_to_zero_and_a_function_of_the_step(monkeypatch):
    import dataclasses

    from otdist.wgan import recipes

    monkeypatch.setitem(recipes.GP_RECIPES, "25gaussians",
                        dataclasses.replace(recipes.GP_RECIPES["25gaussians"], lr_decay=True))
    trainer = _Trainer(_tiny("unused", data="25gaussians", steps=40).validated())
    base = trainer.config.lr
    for step in (30, 0, 10, 39):  # any order: a resumed run sets the same rate at the same step
        trainer.step = step
        trainer.set_learning_rate()
        for optimiser in (trainer.c_opt, trainer.g_opt):
            assert [group["lr"] for group in optimiser.param_groups] == [base * (1 - step / 40)]


def test_without_decay_the_learning_rate_stays_the_configured_one():
    trainer = _Trainer(_tiny("unused", data="swissroll", steps=40, lr=3e-4).validated())
    assert not recipe("swissroll", "gp").lr_decay
    trainer.step = 25
    trainer.set_learning_rate()
    assert [g["lr"] for o in (trainer.c_opt, trainer.g_opt) for g in o.param_groups] == [3e-4, 3e-4]


def test_critic_steps_and_batch_size_come_from_the_recipe_unless_given(monkeypatch):
    import dataclasses

    from otdist import cli
    from otdist.wgan import recipes

    monkeypatch.setitem(recipes.GP_RECIPES, "flags",
                        dataclasses.replace(recipes.GP_RECIPES["flags"], n_critic=2, batch_size=48))
    config = wgan.Config(data="flags").validated()
    assert (config.n_critic, config.batch_size) == (2, 48)
    clip = wgan.Config(data="flags", lipschitz="clip").validated()
    assert (clip.n_critic, clip.batch_size) == (2, 48)  # images keep the gp budget
    given = wgan.Config(data="flags", n_critic=7, batch_size=16).validated()
    assert (given.n_critic, given.batch_size) == (7, 16)
    assert len(_Trainer(wgan.Config(data="flags", out="unused").validated())._real()) == 48  # a training batch
    args = cli.build_parser().parse_args(["wgan", "train", "--data", "flags"])  # the CLI leaves them to the recipe
    assert (args.n_critic, args.batch_size) == (None, None)
    for name in ("n_critic", "batch_size"):
        for bad in (0, -1, 2.5):
            with pytest.raises(ValueError, match=name):
                wgan.Config(data="flags", **{name: bad}).validated()


@pytest.mark.parametrize("data", ["8gaussians", "25gaussians", "swissroll", "digits"])
@pytest.mark.parametrize("lipschitz", ["gp", "clip"])
def test_datasets_other_than_flags_keep_five_critic_steps_of_256(data, lipschitz):
    """The settings their checkpoints were written with, so those resume unchanged."""
    config = wgan.Config(data=data, lipschitz=lipschitz).validated()
    assert (config.n_critic, config.batch_size) == (5, 256)
