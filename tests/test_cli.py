import struct

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
