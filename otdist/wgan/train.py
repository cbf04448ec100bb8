"""Training loop of the WGAN: ``train(Config(...)) -> Run``.

Each generator step follows ``n_critic`` critic steps. The critic maximises
E_real f - E_fake f under its Lipschitz construction (:mod:`otdist.neural.critics`); the
generator minimises -E_fake f. Every ``eval_every`` steps the critic's estimate on held-out real
samples against fresh generated ones is logged next to an independent distance (exact W1 for
2-D data, sliced W1 for images), so the claim that the critic tracks sample quality is measured.

Outputs in ``out``: ``config.json``, ``log.csv``, ``checkpoint.pt`` (every ``checkpoint_every``
steps, at the end, and on Ctrl-C/SIGTERM; checksummed), ``samples.png``, ``curves.png``,
``metrics.json``, each written atomically (:mod:`otdist._io`). ``resume=True`` continues from the
checkpoint; a single-process CPU run resumed this way follows exactly the trajectory of an
uninterrupted one, whatever the evaluation schedule: evaluation runs the networks in eval mode and
draws from its own generators, so it changes neither weights nor random streams.

No global state is touched: the networks are initialised inside ``torch.random.fork_rng`` from a
generator seeded with ``seed``, and the run's own torch RNG state (which the gradient penalty draws
from) is swapped in only while a training step runs.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from .. import _io
from .. import _validation as V
from ..neural import distributed as D
from ..neural.critics import CRITICS, DEFAULT_CLIP, gradient_penalty
from .._backend import resolve_device
from ..exceptions import InputError
from . import checkpoint as C
from . import metrics as M
from .data import DATASETS, Dataset, load, sampler
from .models import Generator, build
from .recipes import GP_RECIPES, recipe
from .runtime import InterruptFlag, PrivateRNG, evaluating

#: Default generator steps per dataset with the gp critic (see :mod:`otdist.wgan.recipes`).
DEFAULT_STEPS = {name: spec.steps for name, spec in GP_RECIPES.items()}
#: Samples used at each evaluation and for the final metrics (generated, and held-out real).
EVAL_SAMPLES = 2000
#: Offsets of the noise seeds of the final samples and of the W1 ratio's draws (apart from training's).
FINAL_NOISE_SEED, RATIO_NOISE_SEED = 20_000, 30_000
#: Evaluations at the end of a run over which ``final_distance_spread`` measures oscillation.
SPREAD_EVALUATIONS = 5
LOG_FIELDS = ("step", "critic_loss", "generator_loss", "critic_estimate", "eval_critic_estimate", "eval_distance", "seconds")


@dataclass
class Config:
    """Everything a run depends on (saved in the checkpoint and in ``config.json``)."""

    data: str = "8gaussians"
    lipschitz: str = "gp"
    steps: int | None = None
    n_critic: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    clip_value: float = DEFAULT_CLIP
    gp_weight: float | None = None
    seed: int = 0
    device: str = "auto"
    out: str = "wgan-run"
    eval_every: int | None = None
    checkpoint_every: int | None = None
    eval_samples: int = EVAL_SAMPLES
    resume: bool = False
    progress: bool = True

    def validated(self) -> Config:
        V.check_choice(self.data, DATASETS, "data")
        V.check_choice(self.lipschitz, CRITICS, "lipschitz")
        defaults = recipe(self.data, self.lipschitz)
        steps = defaults.steps if self.steps is None else V.check_positive(self.steps, "steps", integer=True)
        eval_every = max(1, steps // 20) if self.eval_every is None else V.check_positive(self.eval_every, "eval_every", integer=True)
        checkpoint_every = (max(1, steps // 5) if self.checkpoint_every is None
                            else V.check_positive(self.checkpoint_every, "checkpoint_every", integer=True))
        n_critic = (defaults.n_critic if self.n_critic is None
                    else V.check_positive(self.n_critic, "n_critic", integer=True))
        batch_size = (defaults.batch_size if self.batch_size is None
                      else V.check_positive(self.batch_size, "batch_size", integer=True))
        V.check_positive(self.eval_samples, "eval_samples", integer=True)
        lr = defaults.lr if self.lr is None else V.check_positive(self.lr, "lr")
        V.check_positive(self.clip_value, "clip_value")
        gp_weight = defaults.gp_weight if self.gp_weight is None else V.check_positive(self.gp_weight, "gp_weight",
                                                                                       allow_zero=True)
        V.check_seed(self.seed)
        V.check_device(self.device)
        return dataclasses.replace(self, steps=int(steps), eval_every=int(eval_every), checkpoint_every=int(checkpoint_every),
                                   n_critic=int(n_critic), batch_size=int(batch_size), lr=float(lr), gp_weight=float(gp_weight))


@dataclass
class Run:
    """A finished (or interrupted) run: models, log, metrics and where the files are."""

    config: Config
    step: int
    generator: Generator
    critic: torch.nn.Module
    log: list[dict[str, float]]
    metrics: dict[str, Any]
    out: Path
    shape: tuple[int, ...]
    interrupted: bool = False
    files: dict[str, Path] = field(default_factory=dict)

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """``n`` generated samples, shaped like the data: (n, 2), (n, 8, 8) or (n, 3, 24, 36)."""
        return C.sample(self.generator, n, self.shape, seed=seed)


class TrainingInterrupted(KeyboardInterrupt):
    """Raised after Ctrl-C/SIGTERM once the checkpoint is saved; ``run`` holds the state."""

    def __init__(self, run: Run):
        super().__init__(f"interrupted at step {run.step}; checkpoint saved to {run.files.get('checkpoint')}")
        self.run = run


def _optimisers(config: Config, generator, critic):
    defaults, lr = recipe(config.data, config.lipschitz), config.lr
    if defaults.optimiser == "rmsprop":
        return torch.optim.RMSprop(critic.parameters(), lr=lr), torch.optim.RMSprop(generator.parameters(), lr=lr)
    return (torch.optim.Adam(critic.parameters(), lr=lr, betas=defaults.betas),
            torch.optim.Adam(generator.parameters(), lr=lr, betas=defaults.betas))


class _Trainer:
    def __init__(self, config: Config):
        self.config = config
        self.data: Dataset = load(config.data, config.seed)
        self.device = resolve_device(config.device)
        defaults = recipe(config.data, config.lipschitz)
        self.arch, self.scale = defaults.architecture, defaults.data_scale
        with torch.random.fork_rng(devices=[]):  # initialisation draws from the global generator
            torch.set_rng_state(torch.Generator().manual_seed(config.seed).get_state())
            generator, critic = build(self.data.dim, self.data.is_image, config.lipschitz, self.arch, self.scale)
            self.rng = PrivateRNG(torch.get_rng_state(), self.device, config.seed)
        self.generator, self.critic = generator.to(self.device), critic.to(self.device)
        self.g_model, self.c_model = D.wrap(self.generator), D.wrap(self.critic)
        self.c_opt, self.g_opt = _optimisers(config, self.generator, self.critic)
        self.lr_decay = defaults.lr_decay
        self.rank, self.size = D.world()
        self.stream = torch.Generator().manual_seed(config.seed + 7919 * self.rank)
        self.train_data = torch.as_tensor(self.data.train).to(self.device)
        self.shard = D.shard(len(self.train_data), self.rank, self.size)
        self.per_rank = max(1, config.batch_size // self.size)
        self.real_test = torch.as_tensor(self.data.test[:config.eval_samples]).to(self.device)
        self.step, self.log, self.start_seconds = 0, [], 0.0

    # ---------------------------------------------------------------- one step
    def _noise(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return torch.randn(n, self.arch.latent_dim, generator=generator).to(self.device)

    def _real(self) -> torch.Tensor:
        idx = self.shard[torch.randint(len(self.shard), (self.per_rank,), generator=self.stream)]
        return self.train_data[idx.to(self.device)]

    def set_learning_rate(self) -> None:
        """The recipe's schedule at the current step: a function of the step alone, so a resumed run
        continues it exactly."""
        if not self.lr_decay:
            return
        lr = self.config.lr * (1.0 - self.step / self.config.steps)
        for optimiser in (self.c_opt, self.g_opt):
            for group in optimiser.param_groups:
                group["lr"] = lr

    def critic_step(self) -> tuple[float, float]:
        real = self._real()
        with torch.no_grad():
            fake = self.generator(self._noise(self.per_rank, self.stream))
        real, fake = real / self.scale, fake / self.scale
        out = self.c_model(torch.cat([real, fake]))
        estimate = out[: self.per_rank].mean() - out[self.per_rank:].mean()
        loss = -estimate
        if self.config.lipschitz == "gp" and self.config.gp_weight > 0:
            loss = loss + self.config.gp_weight * gradient_penalty(self.critic, real, fake)
        self.c_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.c_opt.step()
        if self.config.lipschitz == "clip":
            self.critic.clip_(self.config.clip_value)
        return float(loss.detach()), float(estimate.detach()) * self.scale

    def generator_step(self) -> float:
        for p in self.critic.parameters():
            p.requires_grad_(False)
        # The critic outside DDP here: its parameters get no gradient in this step.
        loss = -self.critic(self.g_model(self._noise(self.per_rank, self.stream)) / self.scale).mean()
        self.g_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.g_opt.step()
        for p in self.critic.parameters():
            p.requires_grad_(True)
        return float(loss.detach())

    # ---------------------------------------------------------------- evaluation
    def generate(self, n: int, seed: int) -> torch.Tensor:
        with evaluating(self.generator):
            return self.generator(self._noise(n, torch.Generator().manual_seed(seed)))

    def evaluate(self) -> tuple[float, float]:
        """(critic estimate on held-out real vs fresh fakes, independent distance between them)."""
        fake = self.generate(len(self.real_test), seed=10_000 + self.config.seed)
        with evaluating(self.critic):
            estimate = self.scale * float(self.critic(self.real_test / self.scale).mean()
                                          - self.critic(fake / self.scale).mean())
        fake, real = fake.cpu().numpy(), self.real_test.cpu().numpy()
        distance = M.sliced_w1(fake, real) if self.data.is_image else M.exact_w1(fake[:M.DISTANCE_SAMPLES], real[:M.DISTANCE_SAMPLES])
        return estimate, distance

    def record(self, critic_loss: float, generator_loss: float, estimate: float, seconds: float) -> tuple[float, float]:
        """Evaluate, append a row of LOG_FIELDS to the log, and return (held-out estimate, distance)."""
        eval_estimate, distance = self.evaluate()
        self.log.append({"step": self.step, "critic_loss": critic_loss, "generator_loss": generator_loss,
                         "critic_estimate": estimate, "eval_critic_estimate": eval_estimate,
                         "eval_distance": distance, "seconds": seconds})
        return eval_estimate, distance

    # ---------------------------------------------------------------- checkpoints
    def state(self) -> dict[str, Any]:
        return {
            "format": C.FORMAT,
            "config": dataclasses.asdict(self.config),
            "step": self.step,
            "generator": self.generator.state_dict(),
            "critic": self.critic.state_dict(),
            "generator_optimizer": self.g_opt.state_dict(),
            "critic_optimizer": self.c_opt.state_dict(),
            "torch_rng": self.rng.cpu_state,
            **({"cuda_rng": self.rng.cuda_state.cpu()} if self.rng.cuda else {}),
            "stream_rng": self.stream.get_state(),
            "log": [[row[k] for k in LOG_FIELDS] for row in self.log],
            "seconds": self.start_seconds,
            "shape": list(self.data.shape),
            "latent_dim": self.arch.latent_dim,
            "architecture": {"generator_hidden": self.arch.generator_hidden,
                             "generator_depth": self.arch.generator_depth, "scale": self.scale},
        }

    def load_state(self, state: dict[str, Any], path: Path) -> None:
        C.load_weights(self.generator, state["generator"], "generator", path)
        C.load_weights(self.critic, state["critic"], "critic", path)
        try:
            self.g_opt.load_state_dict(state["generator_optimizer"])
            self.c_opt.load_state_dict(state["critic_optimizer"])
            self.stream.set_state(state["stream_rng"])
            self.rng.cpu_state = state["torch_rng"].clone()
            torch.Generator().set_state(self.rng.cpu_state)  # refuses a malformed state now, not mid-run
            if self.rng.cuda and "cuda_rng" in state:
                self.rng.cuda_state = state["cuda_rng"].clone()
            self.step = int(state["step"])
            self.log = [dict(zip(LOG_FIELDS, row, strict=True)) for row in state["log"]]
            self.start_seconds = float(state["seconds"])
        except (RuntimeError, ValueError, TypeError, AttributeError) as err:
            reason = " ".join(str(err).split())
            raise InputError(f"{path} does not hold a resumable state for this run ({reason}). "
                             "Resume with a checkpoint written by the same run, or start a new one.") from None


def _write_log(path: Path, log: list[dict[str, float]]) -> None:
    with _io.atomic_open(path, "w") as fh:
        writer = csv.DictWriter(fh, fieldnames=LOG_FIELDS)
        writer.writeheader()
        writer.writerows(log)


def _spearman(log: list[dict[str, float]]) -> float | None:
    from scipy.stats import spearmanr

    rows = [r for r in log if r["step"] > 0]
    if len(rows) < 3:
        return None
    rho = spearmanr([r["eval_critic_estimate"] for r in rows], [r["eval_distance"] for r in rows]).statistic
    return None if not math.isfinite(rho) else float(rho)


def final_spread(log: list[dict[str, float]], evaluations: int = SPREAD_EVALUATIONS) -> float | None:
    """(max - min) / median of the held-out distance over the last ``evaluations`` evaluations.

    The evaluations compare fresh samples of fixed noise with a fixed held-out set, so the spread is
    the generator's own movement: large when training oscillates instead of converging.
    """
    distances = [r["eval_distance"] for r in log if r["step"] > 0][-evaluations:]
    if len(distances) < evaluations:
        return None
    return float((max(distances) - min(distances)) / np.median(distances))


def train(config: Config) -> Run:
    """Train (or, with ``config.resume``, continue) a WGAN; see the module docstring for outputs."""
    from . import plots

    config = config.validated()
    out = Path(config.out)
    trainer = _Trainer(config)
    main_rank = trainer.rank == 0
    ckpt_path = out / C.CHECKPOINT
    if config.resume:
        if not ckpt_path.is_file():
            raise FileNotFoundError(f"--resume needs {ckpt_path}; it does not exist. Train without --resume first.")
        trainer.load_state(C.load(ckpt_path, expected_config=dataclasses.asdict(config), for_training=True), ckpt_path)
    files = {"checkpoint": ckpt_path, "log": out / "log.csv"}
    clock = time.perf_counter() - trainer.start_seconds
    critic_loss = estimate = g_loss = math.nan

    def save():
        trainer.start_seconds = time.perf_counter() - clock
        if main_rank:
            C.save_atomic(trainer.state(), ckpt_path)
            _write_log(files["log"], trainer.log)

    # Signals are caught from before the first file is written, so none is lost.
    with InterruptFlag() as interrupt:
        if main_rank:
            out.mkdir(parents=True, exist_ok=True)
            _io.write_text(out / "config.json", json.dumps(dataclasses.asdict(config), indent=2))
        if main_rank and trainer.step == 0:  # the distance at initialisation, for comparison
            trainer.record(critic_loss, g_loss, estimate, 0.0)
        bar = tqdm(total=config.steps, initial=trainer.step, desc=f"WGAN {config.data}/{config.lipschitz}",
                   disable=not config.progress or not main_rank)
        while trainer.step < config.steps and not interrupt.requested:
            trainer.set_learning_rate()
            with trainer.rng:
                for _ in range(config.n_critic):
                    critic_loss, estimate = trainer.critic_step()
                g_loss = trainer.generator_step()
            trainer.step += 1
            bar.update(1)
            if main_rank and (trainer.step % config.eval_every == 0 or trainer.step == config.steps):
                eval_estimate, distance = trainer.record(critic_loss, g_loss, estimate, time.perf_counter() - clock)
                bar.set_postfix(critic=f"{eval_estimate:.3f}", distance=f"{distance:.3f}")
            if trainer.step % config.checkpoint_every == 0 or trainer.step == config.steps:
                save()
        interrupted = interrupt.requested and trainer.step < config.steps
        if interrupted:
            save()
    bar.close()
    run = Run(config, trainer.step, trainer.generator, trainer.critic, trainer.log, {}, out, trainer.data.shape,
              interrupted, files)
    if interrupted:
        raise TrainingInterrupted(run)
    if main_rank:
        samples = trainer.generate(config.eval_samples, seed=FINAL_NOISE_SEED + config.seed).cpu().numpy()
        run.metrics = M.evaluate(samples, trainer.data, config.seed)
        if not trainer.data.is_image:
            def draw(n: int, seed: int) -> np.ndarray:
                return trainer.generate(n, seed=RATIO_NOISE_SEED + seed).cpu().numpy()

            run.metrics.update(M.w1_ratio(draw, sampler(config.data), config.eval_samples, config.seed))
        run.metrics.update({"steps": trainer.step, "seconds": time.perf_counter() - clock,
                            "spearman_critic_vs_distance": _spearman(trainer.log),
                            "final_distance_spread": final_spread(trainer.log),
                            "distance": "sliced W1" if trainer.data.is_image else "exact W1"})
        if trainer.log and trainer.log[0]["step"] == 0:
            run.metrics["initial_distance"] = trainer.log[0]["eval_distance"]
        _io.write_text(out / "metrics.json", json.dumps(run.metrics, indent=2))
        files["metrics"] = out / "metrics.json"
        files["samples"] = plots.samples(samples, trainer.data, out / "samples.png")
        files["curves"] = plots.curves(trainer.log, run.metrics["distance"], out / "curves.png")
    return run
