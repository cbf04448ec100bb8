import json
import struct

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
    assert main(["compare", str(tmp_path / "x.npy"), str(tmp_path / "y.npy"), "--metrics", "w1,js", "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "w1" in text and "js" in text and "(200, 2)" in text


def test_compare_errors_are_messages_not_tracebacks(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((5, 2)))
    np.save(tmp_path / "y.npy", np.zeros((5, 3)))
    with pytest.raises(SystemExit, match="no such file"):
        main(["compare", str(tmp_path / "missing.npy"), str(tmp_path / "x.npy")])
    with pytest.raises(SystemExit, match="otdist compare: .*dimension"):
        main(["compare", str(tmp_path / "x.npy"), str(tmp_path / "y.npy"), "--quiet"])
