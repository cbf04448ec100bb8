import json
import struct
import subprocess
import sys

import numpy as np
import pytest

from otdist.cli import main


def png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_demo_prints_table_and_writes_png(tmp_path, capsys):
    out = tmp_path / "demo.png"
    assert main(["demo", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "piles P vs Q" in text and "0.500000" in text and "0.693147" in text and "inf" in text
    width, height = png_size(out)
    assert width > 300 and height > 200


def test_experiment_writes_png_and_json(tmp_path, capsys):
    out, data = tmp_path / "piles.png", tmp_path / "piles.json"
    assert main(["experiment", "earth-piles", "--out", str(out), "--json", str(data), "--quiet"]) == 0
    width, height = png_size(out)
    assert width > 500 and height > 300
    parsed = json.loads(data.read_text())
    assert parsed["columns"]["w1"] == [0.5, 5 / 14]
    assert "wrote" in capsys.readouterr().out


def test_experiment_with_samples_option(tmp_path):
    out, data = tmp_path / "lines.png", tmp_path / "lines.json"
    assert main(["experiment", "parallel-lines", "--out", str(out), "--json", str(data), "--n", "50", "--quiet"]) == 0
    parsed = json.loads(data.read_text())
    assert parsed["info"]["n"] == 50 and "inf" in parsed["columns"]["kl_true"]


def test_compare_prints_the_table(tmp_path, capsys):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "x.npy", rng.normal(size=(200, 2)))
    np.save(tmp_path / "y.npy", rng.normal(size=(200, 2)) + 2.0)
    assert main(["compare", str(tmp_path / "x.npy"), str(tmp_path / "y.npy"), "--metrics", "w1,js_knn", "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "w1" in text and "js" in text and "(200, 2)" in text


def _user_error(capsys, argv):
    """Run the CLI; it must exit with status 2 and exactly one line on stderr, no traceback."""
    status = main(argv)
    err = capsys.readouterr().err
    assert status == 2, err
    assert err.count("\n") == 1 and err.startswith("otdist: error: ") and "Traceback" not in err, err
    return err


def test_compare_errors_are_one_line_with_status_2(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((5, 2)))
    np.save(tmp_path / "y.npy", np.zeros((5, 3)))
    (tmp_path / "text.npy").write_text("not an array")
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    assert "no such file" in _user_error(capsys, ["compare", str(tmp_path / "missing.npy"), str(tmp_path / "x.npy")])
    assert "dimension" in _user_error(capsys, ["compare", str(tmp_path / "x.npy"), str(tmp_path / "y.npy"), "--quiet"])
    for bad in ("text.npy", "objects.npy"):
        assert "not a NumPy .npy array" in _user_error(capsys, ["compare", str(tmp_path / bad), str(tmp_path / "x.npy")])
    assert "metric must be one of" in _user_error(
        capsys, ["compare", str(tmp_path / "x.npy"), str(tmp_path / "x.npy"), "--metrics", "w7", "--quiet"])


def test_existing_or_unwritable_outputs_are_refused_before_any_work(tmp_path, capsys):
    existing, existing_json = tmp_path / "fig.png", tmp_path / "data.json"
    existing.write_bytes(b"keep me")
    existing_json.write_bytes(b"keep me")
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a directory")
    for argv in (["demo", "--out", str(existing)],
                 ["experiment", "earth-piles", "--out", str(existing)],
                 ["experiment", "earth-piles", "--out", str(tmp_path / "new.png"), "--json", str(existing_json)]):
        assert "already exists. Pass --force" in _user_error(capsys, argv)
    assert existing.read_bytes() == existing_json.read_bytes() == b"keep me" and not (tmp_path / "new.png").exists()
    for argv in (["demo", "--out", str(blocker / "fig.png")],
                 ["experiment", "earth-piles", "--out", str(blocker / "sub" / "fig.png")],
                 ["wgan", "sample", "--checkpoint", "any.pt", "--out", str(blocker / "s.npy")],
                 ["wgan", "train", "--out", str(blocker / "run"), "--steps", "1"]):
        assert "is a file, not a directory" in _user_error(capsys, argv)
    assert "a run writes a directory" in _user_error(capsys, ["wgan", "train", "--out", str(blocker), "--steps", "1"])
    run = tmp_path / "run"
    run.mkdir()
    (run / "log.csv").write_text("step\n")
    assert "--resume to continue" in _user_error(capsys, ["wgan", "train", "--out", str(run), "--steps", "1"])
    assert (run / "log.csv").read_text() == "step\n"


def test_force_overwrites_an_existing_figure(tmp_path, capsys):
    out = tmp_path / "piles.svg"
    out.write_text("old")
    assert main(["experiment", "earth-piles", "--out", str(out), "--force", "--quiet"]) == 0
    assert out.read_text().lstrip().startswith("<?xml")  # the suffix picks the format


def test_bad_options_are_one_line(tmp_path, capsys):
    for n in ("0", "-3", "abc", "1.5"):
        assert "argument --n: expected a positive integer" in _user_error(
            capsys, ["experiment", "parallel-lines", "--out", str(tmp_path / "f.png"), "--n", n])
        assert "argument --n" in _user_error(
            capsys, ["wgan", "sample", "--checkpoint", "c.pt", "--out", str(tmp_path / "s.npy"), "--n", n])
    assert "takes no --n" in _user_error(capsys, ["experiment", "earth-piles", "--out", str(tmp_path / "f.png"),
                                                  "--n", "5"])
    assert "--seed" in _user_error(capsys, ["experiment", "earth-piles", "--out", str(tmp_path / "f.png"), "--seed", "-1"])
    assert "must end in .npy" in _user_error(capsys, ["wgan", "sample", "--checkpoint", "c.pt", "--out",
                                                      str(tmp_path / "s.csv")])
    assert "must end in .png" in _user_error(capsys, ["demo", "--out", str(tmp_path / "fig.txt")])
    assert "invalid choice" in _user_error(capsys, ["experiment", "no-such-experiment", "--out", "f.png"])
    assert "device" in _user_error(capsys, ["wgan", "train", "--device", "tpu9", "--out", str(tmp_path / "r")])
    assert "lr must be" in _user_error(capsys, ["wgan", "train", "--lr", "-1", "--out", str(tmp_path / "r")])
    assert not (tmp_path / "r").exists()  # refused before the output directory was made
    assert "required" in _user_error(capsys, [])


def _fake_checkpoint(path, **changes):
    """A checkpoint file as otdist writes it, with a generator of another architecture by default."""
    import torch

    from otdist.wgan import checkpoint

    state = {"format": checkpoint.FORMAT, "shape": [2], "latent_dim": 2,
             "generator": torch.nn.Linear(3, 3).state_dict(), **changes}
    return checkpoint.save_atomic({k: v for k, v in state.items() if v is not None}, path)


def test_bad_checkpoints_are_one_line(tmp_path, capsys):
    sample = ["wgan", "sample", "--out", str(tmp_path / "s.npy"), "--checkpoint"]
    assert "no checkpoint at" in _user_error(capsys, [*sample, str(tmp_path / "missing.pt")])
    other = _fake_checkpoint(tmp_path / "other.pt")
    assert "another architecture" in _user_error(capsys, [*sample, str(other)])
    assert "lacks 'generator'" in _user_error(capsys, [*sample, str(_fake_checkpoint(tmp_path / "k.pt", generator=None))])
    corrupt = bytearray(other.read_bytes())
    corrupt[-10] ^= 0xFF
    (tmp_path / "corrupt.pt").write_bytes(bytes(corrupt))
    assert "is corrupt" in _user_error(capsys, [*sample, str(tmp_path / "corrupt.pt")])
    (tmp_path / "text.pt").write_text("hello")
    assert "not an otdist checkpoint" in _user_error(capsys, [*sample, str(tmp_path / "text.pt")])
    assert not (tmp_path / "s.npy").exists()


def test_resume_with_a_checkpoint_of_another_architecture_is_one_line(tmp_path, capsys):
    import dataclasses

    from otdist import wgan
    from otdist.wgan import checkpoint

    run = tmp_path / "run"
    run.mkdir()
    config = wgan.Config(steps=2, out=str(run), resume=True, progress=False).validated()
    training = dict.fromkeys(checkpoint.TRAINING_KEYS, 0)
    _fake_checkpoint(run / "checkpoint.pt", **{**training, "config": dataclasses.asdict(config)})
    err = _user_error(capsys, ["wgan", "train", "--out", str(run), "--steps", "2", "--resume", "--quiet"])
    assert "another architecture" in err


def test_version(capsys):
    import otdist

    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"otdist {otdist.__version__}"


def test_installed_command_prints_one_line_without_traceback(tmp_path):
    out = subprocess.run([sys.executable, "-m", "otdist.cli", "wgan", "sample", "--checkpoint",
                          str(tmp_path / "missing.pt"), "--out", str(tmp_path / "s.npy")],
                         capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("otdist: error: no checkpoint"), out.stderr


def test_progress_is_passed_through_to_compare(tmp_path, monkeypatch, capsys):
    import otdist

    calls = []
    monkeypatch.setattr(otdist, "compare", lambda x, y, **kw: calls.append(kw) or "table")
    np.save(tmp_path / "x.npy", np.zeros(10))
    main(["compare", str(tmp_path / "x.npy"), str(tmp_path / "x.npy"), "--metrics", "w1,sliced,neural"])
    main(["compare", str(tmp_path / "x.npy"), str(tmp_path / "x.npy"), "--metrics", "w1,sliced,neural", "--quiet"])
    assert calls[0]["progress"] is True
    assert calls[0]["options"] == {"sliced": {"progress": True}, "neural": {"progress": True}}
    assert calls[1]["progress"] is False and not calls[1].get("options")


@pytest.mark.parametrize("seed", [0, 1])
def test_two_sample_test_takes_metric_options(tmp_path, capsys, seed):
    """--option KEY=VALUE (JSON scalar, else text) reaches the metric: the printed statistic is the one of
    two_sample_test with those options, and differs from the default kernel's."""
    from otdist.two_sample import two_sample_test

    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(30, 2)), rng.normal(size=(30, 2)) + 0.5
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    argv = ["test", str(tmp_path / "x.npy"), str(tmp_path / "y.npy"), "--metric", "mmd", "--permutations", "19"]
    assert main(argv + ["--option", "kernel=laplacian", "--option", "bandwidth=0.5"]) == 0
    out = capsys.readouterr().out
    given = two_sample_test(x, y, metric="mmd", n_permutations=19, seed=0, kernel="laplacian", bandwidth=0.5)
    default = two_sample_test(x, y, metric="mmd", n_permutations=19, seed=0)
    assert f"statistic: {given.statistic:.6g}\n" in out and f"{default.statistic:.6g}" != f"{given.statistic:.6g}"


def test_two_sample_test_prints_the_sinkhorn_epsilon_and_refuses_bad_options(tmp_path, capsys):
    from otdist.two_sample import two_sample_test

    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(12, 2)), rng.normal(size=(12, 2))
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    argv = ["test", str(tmp_path / "x.npy"), str(tmp_path / "y.npy"), "--metric", "sinkhorn", "--permutations", "3"]
    assert main(argv + ["--option", "epsilon=0.25"]) == 0
    assert "epsilon:   0.25  (absolute" in capsys.readouterr().out
    assert two_sample_test(x, y, metric="sinkhorn", n_permutations=3, epsilon=0.25).epsilon == 0.25
    assert main(argv + ["--option", "epsilon=-1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "epsilon must be a real number > 0" in err
    assert main(argv + ["--option", "epsilon"]) == 2
    assert "expected KEY=VALUE" in capsys.readouterr().err
