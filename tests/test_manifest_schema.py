"""The manifest's JSON Schema (hwgen/schemas/manifest.schema.json, issue 27 item 5): every
manifest hwgen writes satisfies it (`hwgen.export.write_design` checks each one, so every test
that generates RTL holds its manifest to it), the schema has no key that no configuration
writes, docs/manifest.md documents every key, and a broken manifest is refused with one line
naming the field."""

from __future__ import annotations

import json

import pytest

from conftest import make_model
from hwgen import api
from hwgen.cli import main
from hwgen.manifest import check_schema, json_schema, load_manifest
from hwgen.spec import HwgenError

#: Configurations that between them write every key of the schema: cells, vectors and tokens,
#: argmax, one and two layers, mixed encodings (an int8 head), state in registers and RAM, paired
#: input segments, the sparse core, loadable cores (ram, spram; dense and sparse).
SWEEP = [
    ("rnn", dict(quant="ternary", inputs=3, hidden=4, outputs=2), dict(lanes=2)),
    ("gru", dict(quant="exp", inputs=2, hidden=9, outputs=3, layers=2, argmax=True,
                 head_quant="int8"), dict(lanes=4, state="ram")),
    ("lstm", dict(quant="pow2", inputs=4, tokens=7, hidden=5, outputs=3),
     dict(lanes=1, state="registers")),
    ("gru", dict(quant="ternary", inputs=8, hidden=16, outputs=4, sparsity="2:4"),
     dict(lanes=4, sparse="on")),
    ("lstm", dict(quant="int8", inputs=3, hidden=6, outputs=2, tokens=5, argmax=True),
     dict(lanes=2, weights="ram")),
    ("rnn", dict(quant="binary", inputs=5, hidden=8, outputs=4), dict(lanes=2, weights="spram")),
    ("gru", dict(quant="ternary", inputs=6, hidden=8, outputs=2, sparsity="2:4"),
     dict(lanes=2, weights="spram", sparse="on")),
]


def _keys(doc, prefix="") -> set[str]:
    """Dotted paths of every object key in ``doc`` (array items as ``[]``)."""
    out = set()
    if isinstance(doc, dict):
        for k, v in doc.items():
            out.add(prefix + k)
            if prefix + k != "widths.term_widths":  # a map: matrix name -> width
                out |= _keys(v, prefix + k + ".")
    elif isinstance(doc, list):
        for v in doc:
            out |= _keys(v, prefix + "[].")
    return out


def _schema_keys(node, prefix="") -> set[str]:
    """Dotted paths of every property the schema names (refs resolved, ``[]`` for items)."""
    defs = json_schema()["$defs"]
    if "$ref" in node:
        node = defs[node["$ref"].split("/")[-1]]
    out = set()
    for k, sub in node.get("properties", {}).items():
        out.add(prefix + k)
        if k == "shape" and prefix == "load.":
            continue  # hwgen.shape's own contract, hashed into shape_id
        out |= _schema_keys(sub, prefix + k + ".")
    if isinstance(node.get("items"), dict):
        out |= _schema_keys(node["items"], prefix + "[].")
    for alt in node.get("oneOf", []) + node.get("anyOf", []):
        out |= _schema_keys(alt, prefix)
    for branch in ("then", "else"):  # the dense and the delta core's timing and memory
        if isinstance(node.get(branch), dict):
            out |= _schema_keys(node[branch], prefix)
    return out


@pytest.fixture(scope="module")
def manifests(tmp_path_factory):
    from hwgen.delta import DeltaThresholds, with_thresholds

    out = []
    for i, (cell, mkw, gkw) in enumerate(SWEEP):
        rtl = tmp_path_factory.mktemp(f"rtl{i}")
        api.generate(make_model(cell, **mkw), rtl, **gkw)
        out.append((rtl, load_manifest(rtl)))  # the reader checks the schema as well
    # a delta core (issue 23): its own timing and memory sections, the delta section
    rtl = tmp_path_factory.mktemp("rtl_delta")
    delta = with_thresholds(make_model("gru", "ternary", inputs=5, hidden=6, outputs=3),
                            DeltaThresholds.uniform(6, 4, 1))
    api.generate(delta, rtl, lanes=4)
    out.append((rtl, load_manifest(rtl)))
    rtl = tmp_path_factory.mktemp("rtl_delta_ram")  # its state in block RAM (--state ram),
    api.generate(delta, rtl, lanes=4, state="ram", weights="ram")  # its weights loadable
    out.append((rtl, load_manifest(rtl)))
    return out


def test_every_generated_manifest_matches_the_schema(manifests):
    for rtl, m in manifests:
        check_schema(m, rtl)
    kinds = {(m["model"]["cell"], m["model"]["input"]["kind"], m["timing"]["zero_skipping"],
              "load" in m, m["timing"].get("paired_input_segments"), "delta" in m)
             for _, m in manifests}
    # each configuration is a different kind of core (the delta cores: ROM, loadable)
    assert len(kinds) == len(SWEEP) + 2
    assert any(m["timing"].get("paired_input_segments") for _, m in manifests)


def test_the_schema_has_no_key_no_configuration_writes(manifests):
    written = set().union(*(_keys(m) for _, m in manifests))
    schema = _schema_keys(json_schema())
    shape = {k for k in written if k.startswith("load.shape.")}
    assert schema - written == set(), "schema keys no sweep configuration writes"
    assert written - shape - schema == set(), "keys the schema does not name"


def test_docs_manifest_md_names_every_key():
    from pathlib import Path

    doc = (Path(__file__).resolve().parent.parent / "docs" / "manifest.md").read_text()
    leaves = {k.split(".")[-1] for k in _schema_keys(json_schema())} - {"[]"}
    missing = sorted(k for k in leaves if f"`{k}`" not in doc and f'"{k}"' not in doc)
    assert missing == [], f"docs/manifest.md does not name these schema keys: {missing}"


@pytest.mark.parametrize("edit, message", [
    (lambda m: m["timing"].update(spare_cycles=3),
     "field 'timing' does not match the manifest schema (hwgen/schemas/manifest.schema.json): "
     "Additional properties are not allowed ('spare_cycles' was unexpected)"),
    (lambda m: m["timing"].update(layer_issue_cycles=[0]),
     "field 'timing.layer_issue_cycles.0' does not match the manifest schema"),
    (lambda m: m["memory"]["state"]["stores"][0].update(mode="flops"),
     "field 'memory.state.stores.0.mode' does not match the manifest schema"),
    (lambda m: m["memory"].pop("tables"), "'tables' is a required property"),
    (lambda m: m["model"].update(input={"kind": "vector", "features": "5"}),
     "field 'model.input.features' does not match the manifest schema (hwgen/schemas/"
     "manifest.schema.json): '5' is not of type 'integer'"),
    (lambda m: m["reset"].update(synchronous=False), "field 'reset.synchronous'"),
])
def test_a_broken_manifest_is_refused_with_one_line(manifests, tmp_path, capsys, edit, message):
    src = manifests[0][0]
    rtl = tmp_path / "rtl"
    rtl.mkdir()
    for f in src.iterdir():
        if f.is_file():
            (rtl / f.name).write_bytes(f.read_bytes())
    m = json.loads((src / "manifest.json").read_text())
    edit(m)
    with pytest.raises(HwgenError, match="manifest schema") as e:
        check_schema(m, "edited")
    assert message in str(e.value) or message in str(e.value).replace('"', "'"), str(e.value)
    (rtl / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(HwgenError, match="does not match the manifest schema"):
        load_manifest(rtl)
    assert main(["sim", str(rtl), "--sequences", "1", "-q"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("hwgen: error: ") and err.count("\n") == 1, err
    assert "does not match the manifest schema" in err


def test_a_generator_that_writes_an_undeclared_key_fails(tmp_path, monkeypatch):
    """The check on write: a key added to the manifest without its schema entry is refused
    before any file is written."""
    from hwgen import export

    real = export.build_manifest
    monkeypatch.setattr(export, "build_manifest",
                        lambda *a: {**real(*a), "spare": {"threshold": 1}})
    with pytest.raises(HwgenError, match=r"field '\(top level\)' does not match the manifest "
                                         r"schema.*'spare' was unexpected"):
        api.generate(make_model("rnn", inputs=2, hidden=2, outputs=2), tmp_path / "r", lanes=1)
    assert not (tmp_path / "r" / "manifest.json").exists()
