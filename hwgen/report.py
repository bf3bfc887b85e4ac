"""Human-readable descriptions of models (used by ``hwgen inspect``)."""

from __future__ import annotations

from .numerics import derive_widths
from .spec import Model, TokenInput

__all__ = ["describe_model", "model_json", "weights_summary", "zero_fraction", "zero_skipping"]

#: Lane counts `zero_skipping` compares the dense and the sparse core at.
ZERO_SKIP_LANES = (8, 16)


def weights_summary(model: Model) -> str:
    """The weight encoding in a few words: that of the recurrent matrices, then any matrix
    encoded otherwise (a mixed-precision model), e.g. ``ternary (layer0.wx int8, head.w int8)``."""
    main = model.layers[0].wh.encoding
    other = [f"{name} {m.encoding.describe()}" for name, m in model.matrices()
             if m.encoding != main]
    return main.describe() + (f" ({', '.join(other)})" if other else "")


def zero_fraction(model: Model) -> float:
    """Fraction of zero weights over every weight matrix (head included)."""
    mats = [m for _, m in model.matrices()]
    n = sum(m.codes.size for m in mats)
    return float(sum(m.sparsity * m.codes.size for m in mats) / n) if n else 0.0


def zero_skipping(model: Model) -> dict:
    """What zero skipping (the sparse core, `hwgen.gateware.packing`) does for ``model``: the
    2:4-packable matrices and, at `ZERO_SKIP_LANES` lanes (those the model allows), cycles per
    timestep and weight-memory bits of the dense core and of the sparse core."""
    from .gateware.packing import packable
    from .gateware.plan import weight_memory_bits
    from .gateware.schedule import max_lanes, schedule

    packed = [name for name, m in model.matrices() if packable(m)]
    rows = []
    for lanes in ZERO_SKIP_LANES:
        if not packed or lanes > max_lanes(model):
            continue
        d, s = schedule(model, lanes, False), schedule(model, lanes, True)
        rows.append({"lanes": lanes,
                     "dense_cycles": d.cycles_per_timestep,
                     "sparse_cycles": s.cycles_per_timestep,
                     "dense_weight_bits": weight_memory_bits(model, d),
                     "sparse_weight_bits": weight_memory_bits(model, s)})
    return {"packable": packed, "by_lanes": rows}


def _zero_skip_lines(model: Model) -> list[str]:
    z = zero_skipping(model)
    if not z["packable"]:
        return ["zero skip   no matrix is 2:4 sparse (some group of 4 weights has 3 or 4 "
                "non-zeros): every zero takes a lane; train or import with --sparsity 2:4"]
    out = [f"zero skip   2:4 packable: {', '.join(z['packable'])}"]
    for r in z["by_lanes"]:
        d, s = r["dense_cycles"], r["sparse_cycles"]
        out.append(f"            P = {r['lanes']}: {s} cycles per timestep instead of {d} "
                   f"({d / s:.2f}x), weight memory {r['sparse_weight_bits']} bits instead of "
                   f"{r['dense_weight_bits']}")
    return out


def _row_scale_lines(model: Model) -> list[str]:
    """One line per matrix with per-row multipliers (issue 26): their range and width, and the
    real per-row scales they make (``row_mult * scale``)."""
    out = []
    for name, m in model.matrices():
        if m.row_mult is None:
            continue
        lo, hi = (int(m.row_mult.min()), int(m.row_mult.max())) if m.row_mult.size else (0, 0)
        v = m.scale.value
        out.append(f"{'row scales' if not out else '':<12}{name:<13} {m.row_mult.size} "
                   f"multipliers {lo}..{hi} (u{max(hi.bit_length(), 1)}), real row scales "
                   f"{lo * v:.4g}..{hi * v:.4g}")
    return out


def describe_model(model: Model) -> str:
    f = model.formats
    w = derive_widths(model)
    inp = model.input
    if isinstance(inp, TokenInput):
        inp_s = f"tokens: vocab {inp.vocab}, embedding {inp.dim} x {f.input.describe()}"
    else:
        inp_s = f"vectors: {inp.features} features, {f.input.describe()}"
    lines = [
        f"cell        {model.cell.value}, {model.num_layers} layer(s) x {model.hidden} hidden, "
        f"gates {'/'.join(model.cell.gates)}",
        f"input       {inp_s}",
        f"output      {model.outputs} logits (frac {f.output_frac}, width {w.logit_width})"
        + (", argmax" if model.head.argmax else ""),
        f"formats     state {f.state.describe()}, gates frac {f.gate_frac}, "
        f"sigmoid table 2^{f.sigmoid_in_width} -> u{f.sigmoid_frac + 1}.{f.sigmoid_frac}, "
        f"tanh table 2^{f.tanh_in_width} -> {f.state.describe()}"
        + (f", cell {f.cell.describe()}" if f.cell else ""),
        "matrices    name          shape        encoding                scale          "
        "N:M    zeros   bits",
    ]
    for name, m in model.matrices():
        s = m.scale
        scale = f"{s.mantissa}*2^{s.exponent}"
        nm = "dense" if m.nm is None else m.nm.describe()
        lines.append(
            f"            {name:<13} {str(m.shape[0]) + 'x' + str(m.shape[1]):<12} "
            f"{m.encoding.describe():<23} {scale:<14} {nm:<6} {m.sparsity:5.1%} "
            f"{m.memory_bits:>7}"
        )
    lines += _row_scale_lines(model)
    total = model.weight_memory_bits
    lines.append(f"weights     {total} bits ({total / 8192:.1f} KiB), "
                 f"{zero_fraction(model):.1%} zeros")
    lines += _zero_skip_lines(model)
    if model.embedding is not None:
        lines.append(f"embedding   {model.embedding.size * f.input.width} bits")
    for i, lw in enumerate(w.layers):
        lines.append(
            f"layer {i}     accumulators: input {lw.acc_x_width} bits, recurrent "
            f"{lw.acc_h_width} bits; pre-activation {lw.gate_width} bits"
        )
    lines.append(f"head        accumulator {w.head_acc_width} bits, logits {w.logit_width} bits")
    if model.meta:
        lines.append("meta        " + ", ".join(f"{k}: {v}" for k, v in sorted(model.meta.items())))
    return "\n".join(lines)


def model_json(model: Model) -> dict:
    """What `describe_model` says, as a JSON-ready dict (``hwgen inspect --json``)."""
    f = model.formats
    w = derive_widths(model)
    inp = model.input
    return {
        "cell": model.cell.value,
        "layers": model.num_layers,
        "hidden": model.hidden,
        "gates": list(model.cell.gates),
        "input": ({"kind": "tokens", "vocab": inp.vocab, "dim": inp.dim}
                  if isinstance(inp, TokenInput) else {"kind": "vector", "features": inp.features}),
        "outputs": model.outputs,
        "argmax": model.head.argmax,
        "formats": f.to_json(),
        "matrices": [
            {"name": name, "shape": list(m.shape), "encoding": m.encoding.to_json(),
             "scale": m.scale.to_json(), "sparsity": m.sparsity,
             "nm": None if m.nm is None else m.nm.describe(), "bits": m.memory_bits,
             "row_mult": None if m.row_mult is None else m.row_mult.tolist()}
            for name, m in model.matrices()
        ],
        "weight_bits": model.weight_memory_bits,
        "zero_fraction": zero_fraction(model),
        "zero_skipping": zero_skipping(model),
        "widths": w.to_json(),
        "input_normalization": bool(model.meta.get("input_norm")),
        "meta": model.meta,
    }
