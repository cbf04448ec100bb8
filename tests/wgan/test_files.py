"""Files: every writer is atomic (old file intact and no temporary left when writing fails), and a
checkpoint carries a checksum that refuses any flipped byte."""

import io
import os

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from otdist import _io, wgan
from otdist.cli import main
from otdist.exceptions import InputError
from otdist.experiments import earth_piles
from otdist.wgan import checkpoint

OLD, NEW = b"old content\n", b"new content, longer than the old one\n"
#: Evaluation samples of the tiny runs (the exact W1 between them is the slowest part of a step).
TINY_EVAL = 200


def _figure():
    fig = Figure(figsize=(1, 1))
    fig.add_subplot(1, 1, 1).plot([0, 1])
    return fig


#: Each writer, applied to (path, payload-independent new content).
WRITERS = {
    "bytes": lambda path: _io.write_bytes(path, NEW),
    "text": lambda path: _io.write_text(path, NEW.decode()),
    "json": lambda path: _io.write_json(path, {"a": 1}),
    "npy": lambda path: _io.save_npy(path, np.arange(5.0)),
    "figure": lambda path: _io.save_figure(_figure(), path, dpi=20),
    "checksummed": lambda path: _io.write_checksummed(path, NEW),
    "checkpoint": lambda path: checkpoint.save_atomic({"format": checkpoint.FORMAT, "x": torch.zeros(3)}, path),
}


def _target(tmp_path, name):
    path = tmp_path / f"out.{'png' if name == 'figure' else 'dat'}"
    path.write_bytes(OLD)
    return path


@pytest.mark.parametrize("name", list(WRITERS))
def test_failed_rename_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch, name):
    path = _target(tmp_path, name)

    def refuse(src, dst):
        raise OSError("rename refused")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="rename refused"):
        WRITERS[name](path)
    assert path.read_bytes() == OLD
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_crash_midway_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "log.csv"
    path.write_bytes(OLD)
    with pytest.raises(RuntimeError, match="crash"):
        with _io.atomic_open(path, "wb") as fh:
            fh.write(NEW[:5])
            raise RuntimeError("crash")
    assert path.read_bytes() == OLD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.csv"]


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="reads file names of descriptors from /proc")
@pytest.mark.parametrize("name", list(WRITERS))
def test_content_is_fsynced_before_the_rename_in_the_same_directory(tmp_path, monkeypatch, name):
    path = _target(tmp_path, name)
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        return real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", os.fspath(src), os.fspath(dst)))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    WRITERS[name](path)
    renames = [e for e in events if e[0] == "replace"]
    assert len(renames) == 1 and renames[0][2] == str(path)
    temp = renames[0][1]
    assert os.path.dirname(temp) == str(tmp_path)  # same directory: the rename cannot cross file systems
    assert ("fsync", temp) in events[:events.index(renames[0])]
    assert path.read_bytes() != OLD


def _renamed_into_place(monkeypatch):
    destinations = set()
    real_replace = os.replace

    def replace(src, dst):
        destinations.add(os.path.realpath(dst))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    return destinations


def _files(directory):
    return {os.path.realpath(p) for p in directory.rglob("*") if p.is_file()}


def test_every_file_of_a_run_and_of_the_cli_is_written_by_rename(tmp_path, monkeypatch):
    renamed = _renamed_into_place(monkeypatch)
    run = wgan.train(wgan.Config(steps=2, batch_size=32, eval_every=2, eval_samples=TINY_EVAL, out=str(tmp_path / "run"), progress=False))
    assert main(["wgan", "sample", "--checkpoint", str(run.files["checkpoint"]), "--n", "7",
                 "--out", str(tmp_path / "s.npy")]) == 0
    result = earth_piles.run()
    earth_piles.plot(result, tmp_path / "piles.png")
    result.save_json(tmp_path / "piles.json")
    written = _files(tmp_path)
    assert {"config.json", "log.csv", "checkpoint.pt", "metrics.json", "samples.png", "curves.png"} <= {
        os.path.basename(p) for p in written}
    assert written - renamed == set()
    assert np.load(tmp_path / "s.npy").shape == (7, 2)


@pytest.fixture(scope="module")
def small_checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    run = wgan.train(wgan.Config(steps=1, batch_size=16, eval_every=1, eval_samples=TINY_EVAL, out=str(out), progress=False))
    return run.files["checkpoint"]


def test_checkpoint_has_a_checksum_header_and_refuses_flipped_bytes(tmp_path, small_checkpoint):
    path = small_checkpoint
    data = path.read_bytes()
    assert data.startswith(_io.CHECKSUM_MAGIC)
    checkpoint.load(path)  # the intact file loads
    positions = list(range(_io.HEADER_LENGTH))  # every header byte
    for seed in range(3):  # and payload bytes spread over the file
        positions += np.random.default_rng(seed).integers(_io.HEADER_LENGTH, len(data), size=10).tolist()
    corrupt = tmp_path / "corrupt.pt"
    for position in positions:
        flipped = bytearray(data)
        flipped[position] ^= 0x01
        corrupt.write_bytes(bytes(flipped))
        with pytest.raises(InputError, match="corrupt|not an otdist checkpoint"):
            checkpoint.load(corrupt)
    corrupt.write_bytes(data[:-1])  # truncated
    with pytest.raises(InputError, match="corrupt"):
        checkpoint.load(corrupt)


def test_checkpoint_without_checksum_loads_with_a_warning(tmp_path, small_checkpoint):
    path = small_checkpoint
    payload, verified = _io.read_checksummed(path)
    assert verified
    legacy = tmp_path / "legacy.pt"
    legacy.write_bytes(payload)  # what torch.save wrote before checksums existed
    with pytest.warns(_io.UnverifiedFileWarning, match="no checksum"):
        state = checkpoint.load(legacy)
    assert state["step"] == 1
    with pytest.warns(_io.UnverifiedFileWarning):
        samples = wgan.load_generator(legacy)(4, seed=1)
    np.testing.assert_array_equal(samples, wgan.load_generator(path)(4, seed=1))


def _rewrite(path, tmp_path, edit):
    state = torch.load(io.BytesIO(_io.read_checksummed(path)[0]), weights_only=True)
    edit(state)
    out = tmp_path / "edited.pt"
    checkpoint.save_atomic(state, out)
    return out


def test_checkpoint_of_another_architecture_or_missing_a_key_is_refused(tmp_path, small_checkpoint):
    path = small_checkpoint

    def wider(state):
        state["generator"] = torch.nn.Linear(3, 3).state_dict()

    with pytest.raises(InputError, match="another architecture"):
        wgan.load_generator(_rewrite(path, tmp_path, wider))
    with pytest.raises(InputError, match="lacks 'generator'"):
        wgan.load_generator(_rewrite(path, tmp_path, lambda s: s.pop("generator")))
    with pytest.raises(InputError, match="lacks 'critic_optimizer'"):
        checkpoint.load(_rewrite(path, tmp_path, lambda s: s.pop("critic_optimizer")), for_training=True)
    with pytest.raises(InputError, match="shape must be positive integers"):
        wgan.load_generator(_rewrite(path, tmp_path, lambda s: s.update(shape=[0])))
