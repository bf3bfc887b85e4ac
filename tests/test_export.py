"""hwgen.export.generate and ``hwgen generate``: files, manifest, determinism, errors."""

from __future__ import annotations

import hashlib
import json
import re

import pytest

from hwgen.cli import main
from hwgen.export import generate
from hwgen.gateware.schedule import schedule
from hwgen.modelfile import load_model, save_model, to_bytes
from hwgen.spec import HwgenError
from tests.test_gateware import build

FILES = ("hwgen_top.v", "manifest.json", "model.hwgm")


def _port_widths(verilog: str, module: str) -> dict[str, tuple[str, int]]:
    body = verilog[verilog.index(f"module {module}(") :]
    body = body[: body.index("endmodule")]
    out = {}
    for d, msb, name in re.findall(r"^\s*(input|output)\s+(?:\[(\d+):0\]\s+)?(\w+);", body, re.M):
        out[name] = (d, int(msb) + 1 if msb else 1)
    return out


def test_generate_writes_files(tmp_path):
    model = build("lstm", "ternary", layers=2, tokens=True)
    manifest = generate(model, tmp_path / "out", lanes=4)
    for name in FILES:
        assert (tmp_path / "out" / name).is_file()
    on_disk = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert on_disk == manifest
    data = (tmp_path / "out" / "model.hwgm").read_bytes()
    assert data == to_bytes(model)
    assert manifest["model_sha256"] == hashlib.sha256(data).hexdigest()
    assert load_model(tmp_path / "out" / "model.hwgm").hidden == model.hidden
    assert manifest["top"] == "hwgen_top" and manifest["lanes"] == 4
    assert manifest["timing"]["cycles_per_timestep"] == schedule(model, 4).cycles_per_timestep
    assert manifest["memory"]["weight_payload_bits"] == model.weight_memory_bits
    assert manifest["tools"]["amaranth"] == "0.5.10"


@pytest.mark.parametrize("cell,tokens,argmax", [("gru", False, True), ("rnn", True, False)])
def test_manifest_matches_verilog_ports(tmp_path, cell, tokens, argmax):
    model = build(cell, "int8", tokens=tokens, argmax=argmax)
    manifest = generate(model, tmp_path, lanes=3, top="my_rnn")
    ports = _port_widths((tmp_path / "my_rnn.v").read_text(), "my_rnn")
    assert ports == {
        p["name"]: (p["direction"], p["width"]) for p in manifest["ports"]
    }
    for key in ("input", "output"):
        s = manifest["streams"][key]
        assert ports[s["payload"]][1] == s["payload_width"]
        end = max(f["offset"] + f["width"] for f in s["fields"])
        assert end == s["payload_width"]
    names = [f["name"] for f in manifest["streams"]["output"]["fields"]]
    assert names == (["logits", "argmax"] if argmax else ["logits"])
    names = [f["name"] for f in manifest["streams"]["input"]["fields"]]
    assert names == ["sos", "token" if tokens else "x"]


def test_generate_is_deterministic(tmp_path):
    model = build("gru", "exp", layers=2)
    generate(model, tmp_path / "a", lanes=5)
    generate(model, tmp_path / "b", lanes=5)
    for name in FILES:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"lanes": 0}, r"^Lane count must be a positive integer, not 0$"),
        ({"lanes": "4"}, r"^Lane count must be a positive integer, not '4'$"),
        (
            {"lanes": 9},
            r"^Lane count 9 exceeds the widest matrix row of this model \(6 weights\); "
            r"use at most 6 lanes$",
        ),
        (
            {"lanes": 2, "top": "1top"},
            r"^Top module name must be a Verilog identifier \(letters, digits, _\), not '1top'$",
        ),
    ],
)
def test_generate_errors(tmp_path, kwargs, message):
    model = build("rnn", "ternary")
    with pytest.raises(HwgenError, match=message):
        generate(model, tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


def test_generate_rejects_non_model(tmp_path):
    with pytest.raises(HwgenError, match=r"^Model must be a hwgen Model, not 'x'$"):
        generate("x", tmp_path, lanes=1)


def test_cli_generate(tmp_path, capsys):
    model = build("gru", "ternary", tokens=True)
    save_model(model, tmp_path / "m.hwgm")
    out = tmp_path / "rtl_out" / "gru"
    assert main(["generate", str(tmp_path / "m.hwgm"), "-o", str(out), "--lanes", "3"]) == 0
    assert "cycles per timestep" in capsys.readouterr().out
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["lanes"] == 3
    assert main(["generate", str(tmp_path / "m.hwgm"), "-o", str(out), "--lanes", "99"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("hwgen: error: Lane count 99 exceeds")


def test_synth_reads_generated_folder(tmp_path):
    from hwgen.synth import read_rtl_dir

    model = build("rnn", "binary")
    manifest = generate(model, tmp_path, lanes=2)
    rtl = read_rtl_dir(tmp_path)
    assert rtl.top == "hwgen_top"
    assert rtl.sources == (tmp_path / "hwgen_top.v",)
    assert rtl.cycles_per_timestep == manifest["timing"]["cycles_per_timestep"]
    assert rtl.lanes == 2
    assert rtl.model_file == tmp_path / "model.hwgm"


def test_generate_is_deterministic_across_processes(tmp_path):
    import os
    import subprocess
    import sys

    model = build("lstm", "ternary", tokens=True)
    save_model(model, tmp_path / "m.hwgm")
    for seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        subprocess.run(
            [sys.executable, "-m", "hwgen.cli", "generate", str(tmp_path / "m.hwgm"),
             "-o", str(tmp_path / seed), "--lanes", "2"],
            check=True, env=env, capture_output=True,
        )
    for name in FILES:
        assert (tmp_path / "1" / name).read_bytes() == (tmp_path / "2" / name).read_bytes()
