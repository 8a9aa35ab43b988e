"""The forward half of the nnref contract as single-node (or few-node) ONNX models.

Shared by two runners: ``onnxref_backend`` (onnx.reference.ReferenceEvaluator) and
``onnxruntime_backend`` (onnxruntime's CPU provider). TABLE holds one Row per op record: its
forward builds a graph with onnx.helper (arrays as graph inputs, shape-like constants as
initializers) at opset OPSET / IR_VERSION and hands it to the runner; models and runner sessions
are cached per (op, attributes, shapes, dtype). Each runner module gets its contract functions
from ``table.contract_functions(TABLE, ..., run=table_run(its runner))``.

Conventions handled here (see conformance/divergences.toml):
- Pad: contract constant / reflect / replicate / circular are ONNX constant / reflect / edge /
  wrap; pads are [x1_begin, ..., xr_begin, x1_end, ..., xr_end] over the spatial axes.
- Conv / ConvTranspose take ONNX's own layouts (W (Co, C / G, *k); transposed W (C, Co / G, *k))
  and explicit begin/end pads (the contract's "same" is resolved to numbers first).
- MaxPool: contract pads and ceil_mode go to ONNX as they are (ONNX drops a ceil_mode window that
  starts in the right padding, as the contract does). ONNX Indices are flat over the whole
  (N, C, *S) tensor: the adapter keeps the offset inside the plane / volume. A window covering
  no input cell is not defined by ONNX: the adapter gives -inf and -1 there
  (onnx-maxpool-empty-window).
  NaN does not win its window in ONNX (onnx-maxpool-nan): inputs holding NaN raise Unsupported.
- AveragePool: count_include_pad, ceil_mode and symmetric pads as they are; divisor_override has
  no ONNX form (onnx-avgpool-no-divisor-override).
- LpPool is (sum |x| ** p) ** (1 / p) with an integer p: a non-integer p
  (onnx-lppool-integer-p) and an odd p with negative inputs (onnx-lppool-abs) raise Unsupported;
  ceil_mode's last windows are ONNX zero pads at the end, scaled by (K / count) ** (1 / p) with a
  Mul node (the contract's K / count inside the root).
- Adaptive pools: GlobalAveragePool / GlobalMaxPool when every output size is 1 (and no indices);
  otherwise one Slice per bin, reduced by ReduceMean or a MaxPool over the whole bin (its Indices
  turned into offsets inside the plane), concatenated and reshaped.
- BatchNormalization: eval mode with the running statistics; training_mode=1 otherwise. ONNX's
  momentum weights the old statistic (contract m -> ONNX 1 - m) and its running variance is the
  biased batch variance: the graph feeds running_var * (M - 1) / M and multiplies the output by
  M / (M - 1), which gives (1 - m) * old + m * var * M / (M - 1) (onnx-bn-running-var-biased).
  epsilon, momentum and Elu's alpha are float32 attributes (onnx-float32-attributes): rounded by
  onnx_float; effective_attributes gives the contract values the model really uses.
- LayerNormalization with axis = -len(normalized_shape) (default stash_type: measured exact
  enough in float64 on both runners). GroupNormalization (opset 21: scale and bias per channel)
  computes its variance as E[x^2] - E[x]^2 in stash_type (onnx-groupnorm-one-pass-variance):
  float32 data use it with a double stash_type, float64 data get the two-pass statistics from
  arithmetic nodes. InstanceNormalization for training (onnxruntime has no float64 kernel:
  onnxruntime-no-float64-kernel); eval is BatchNormalization with the running statistics, and
  the running-statistics update (unbiased per-instance variance, averaged over N) is ReduceMean
  / Sub / Mul / Add nodes with momentum a constant of x's dtype.
- Relu, Elu, Sigmoid; linear is Gemm (transB=1) for a 2-D x, else MatMul(x, Transpose(w)) + Add.
- ONNX has no automatic differentiation here: every *_backward raises Unsupported
  (onnx-no-autodiff).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from conformance.backends import Unsupported
from conformance.backends.arguments import (
    adaptive_bins,
    avg_divisors,
    avg_pool_geometry,
    bn_check,
    check_alpha,
    check_pad,
    conv_args,
    conv_transpose_args,
    instance_norm_check,
    linear_check,
    lp_norm_type,
    lp_pool_geometry,
    norm_affine,
    norm_groups,
    norm_real,
    normalized_axes,
    pad_pairs,
    pool_geometry,
    spatial_rank,
)
from conformance.backends.table import Row, Run

# Found by trying: a one-Relu model loads in onnxruntime 1.31.1 at opset 26 / IR 13; opsets 27
# and 28 (onnx 1.23.2's newest) fail in ValidateOpsetForDomain, IR 14 fails in Model::Model.
OPSET = 26
IR_VERSION = 13

_TYPES = {"float32": TensorProto.FLOAT, "float64": TensorProto.DOUBLE,
          "float16": TensorProto.FLOAT16, "bfloat16": TensorProto.BFLOAT16}
_FEED_NAMES = {"g": "gamma", "b": "b / beta", "rm": "running_mean", "rv": "running_var"}
_PAD_MODES = {"constant": "constant", "reflect": "reflect", "replicate": "edge",
              "circular": "wrap"}

# A model spec is hashable: (nodes, inputs, outputs, dtype, consts) with
# nodes = ((op_type, inputs, outputs, ((attr, value), ...)), ...), inputs = ((name, shape), ...),
# consts = ((name, dtype, shape, bytes), ...). Float attributes are kept as float.hex() strings
# wrapped in _F so that -0.0 and 0.0 (equal, same hash) are different keys.
Spec = tuple[Any, ...]
Runner = Callable[[Spec, dict[str, np.ndarray]], list[np.ndarray]]


class _F(str):
    """A float attribute in a spec (its float.hex(): -0.0 is not 0.0)."""


def fattr(v: float) -> _F:
    return _F(float(v).hex())


def const(name: str, value: Any, dtype: Any) -> tuple[str, str, tuple[int, ...], bytes]:
    a = np.ascontiguousarray(np.asarray(value, dtype=dtype))
    return (name, a.dtype.name, a.shape, a.tobytes())


def node(op: str, ins: tuple[str, ...] | list[str], outs: tuple[str, ...] | list[str],
         **attrs: Any) -> tuple[Any, ...]:
    frozen = tuple(sorted((k, fattr(v) if isinstance(v, float) else
                           tuple(v) if isinstance(v, list | tuple) else v)
                          for k, v in attrs.items()))
    return (op, tuple(ins), tuple(outs), frozen)


@functools.lru_cache(maxsize=8192)
def build_model(spec: Spec) -> onnx.ModelProto:
    """The ONNX model of a spec (cached)."""
    nodes, inputs, outputs, dtype, consts = spec
    onnx_nodes = []
    for op, ins, outs, attrs in nodes:
        kw = {k: float.fromhex(v) if isinstance(v, _F) else list(v) if isinstance(v, tuple)
              else v for k, v in attrs}
        onnx_nodes.append(helper.make_node(op, list(ins), list(outs), **kw))
    inits = [numpy_helper.from_array(np.frombuffer(b, dtype=dt).reshape(shape), name)
             for name, dt, shape, b in consts]
    graph = helper.make_graph(
        onnx_nodes, "nnref_case",
        [helper.make_tensor_value_info(n, _TYPES[dtype], list(s)) for n, s in inputs],
        [helper.make_tensor_value_info(n, _TYPES[dtype] if t is None else t, None)
         for n, t in outputs],
        initializer=inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                             ir_version=IR_VERSION)


def _run(run: Runner, nodes: list, feeds: dict[str, np.ndarray], outputs: list,
         consts: tuple = ()) -> list[np.ndarray]:
    """Build (cached) and run a graph: feeds are the graph inputs (all of one float dtype)."""
    dtype = next(iter(feeds.values())).dtype.name
    for k, v in feeds.items():
        if v.size == 0:
            raise ValueError(f"{_FEED_NAMES.get(k, k)} must not be empty, got shape {v.shape}")
    feeds = {k: np.ascontiguousarray(v) for k, v in feeds.items()}
    outs = tuple((o, None) if isinstance(o, str) else o for o in outputs)
    spec = (tuple(nodes), tuple((k, v.shape) for k, v in feeds.items()), outs, dtype,
            tuple(consts))
    return run(spec, feeds)


def _operand(a: np.ndarray, name: str, like: np.ndarray, shape: tuple[int, ...] | None = None
             ) -> np.ndarray:
    """A second array operand (float32 / float64 already: table.py checks every array argument):
    x's dtype (ONNX types must match), not empty and, if given, of that shape."""
    if a.dtype != like.dtype:
        raise ValueError(f"{name} must have x's dtype {like.dtype}, got {a.dtype}")
    if a.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {a.shape} (kernel / size 0)")
    if shape is not None and a.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {a.shape}")
    return a


def _flag(value: object, name: str) -> bool:
    """The contract's bool flags (ceil_mode, return_indices, count_include_pad, training)."""
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{name} must be a bool, got {value!r}")
    return bool(value)


def _real(value: object, name: str, low: float, high: float = math.inf) -> float:
    """eps / momentum: a real number (not a bool) in [low, high]."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.number) \
            or not low <= float(value) <= high:  # type: ignore[arg-type]
        raise ValueError(f"{name} must be a real number in [{low}, {high}], got {value!r}")
    return float(value)  # type: ignore[arg-type]


def onnx_float(v: float) -> float:
    """A FLOAT attribute as the model holds it (ONNX stores epsilon, momentum, alpha as float32;
    onnx-float32-attributes). The graph builders pass their float attributes through this."""
    return float(np.float32(v))


def effective_attributes(record: str, attrs: dict[str, float]) -> dict[str, float]:
    """The attribute values (as Python floats) that the ONNX model actually uses, for the
    contract parameters `attrs` of op record `record`: every graph holds eps (epsilon) and
    Elu's alpha as FLOAT attributes; batch_norm's graph holds ONNX's momentum 1 - m (instance
    norm's running-statistics update uses momentum as a constant of x's dtype: unchanged)."""
    out = dict(attrs)
    for name in ("eps", "alpha"):
        if name in out:
            out[name] = onnx_float(out[name])
    if record == "batch_norm" and "momentum" in out:
        out["momentum"] = 1 - onnx_float(1 - out["momentum"])
    return out


def spec_nodes(spec: Spec) -> list[tuple[str, dict[str, Any], int, bool]]:
    """(op_type, attributes as Python values, number of outputs, whether its first input is the
    graph input x) of each node of a spec: what the runners' known-bug predicates look at."""
    return [(op, {k: float.fromhex(v) if isinstance(v, _F) else v for k, v in attrs}, len(outs),
             ins[:1] == ("x",)) for op, ins, outs, attrs in spec[0]]


def _flat(pads: tuple[tuple[int, int], ...]) -> list[int]:
    return [b for b, _ in pads] + [a for _, a in pads]


# ----------------------------------------------------------------------------------- padding


def _pad(x: np.ndarray, pad_width: object, mode: str, value: float, *,
         run: Runner) -> np.ndarray:
    pads = pad_pairs(pad_width, spatial_rank(x.shape), "pad_width")
    check_pad(x.shape, pads, mode)
    full = [0, 0] + [b for b, _ in pads] + [0, 0] + [a for _, a in pads]
    consts = [const("pads", full, np.int64)]
    ins = ["x", "pads"]
    if mode == "constant":
        consts.append(const("value", value, x.dtype))
        ins.append("value")
    (y,) = _run(run, [node("Pad", ins, ["y"], mode=_PAD_MODES[mode])], {"x": x}, ["y"], consts)
    return y


# ------------------------------------------------------------------------------- convolution


def _conv(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: object, padding: object,
          dilation: object, groups: int, *, run: Runner, rank: int) -> np.ndarray:
    w = _operand(w, "w", x)
    k, s, pads, d = conv_args(x.shape, w.shape, rank, stride, padding, dilation, groups)
    if w.size and any(n + bb + a - dd * (kk - 1) - 1 < 0 for n, (bb, a), kk, dd in
                      zip(x.shape[2:], pads, k, d, strict=True)):
        raise ValueError(f"w's kernel {k} (dilation {d}) is larger than the padded input "
                         f"{tuple(x.shape[2:])} with padding {pads}")
    feeds = {"x": x, "w": w}
    if b is not None:
        feeds["b"] = _operand(b, "b", x, (w.shape[0],))
    n = node("Conv", list(feeds), ["y"], kernel_shape=k, strides=s, pads=_flat(pads),
             dilations=d, group=int(groups))
    return _run(run, [n], feeds, ["y"])[0]


def _conv_t(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: object,
            padding: object, output_padding: object, groups: int, dilation: object, *,
            run: Runner, rank: int) -> np.ndarray:
    w = _operand(w, "w", x)
    geo = conv_transpose_args(x.shape, w.shape, rank, stride, padding, output_padding, groups,
                              dilation)
    feeds = {"x": x, "w": w}
    if b is not None:
        feeds["b"] = _operand(b, "b", x, (w.shape[1] * geo.groups,))
    attrs = dict(kernel_shape=geo.kernel, strides=geo.stride, dilations=geo.dilation,
                 group=geo.groups)
    if all(op < s for op, s in zip(geo.output_padding, geo.stride, strict=True)):
        n = node("ConvTranspose", list(feeds), ["y"], pads=list(geo.pads) * 2,
                 output_padding=geo.output_padding, **attrs)
        y = _run(run, [n], feeds, ["y"])[0]
    else:
        # onnx-convtranspose-output-padding-stride: both runtimes refuse output_padding >=
        # stride. The output_padding cells come from cropping less at the end (pads end
        # p - op) and, past the full output, from zero padding; the bias is added after.
        ends = [max(p - op, 0) for p, op in zip(geo.pads, geo.output_padding, strict=True)]
        ext = [max(op - p, 0) for p, op in zip(geo.pads, geo.output_padding, strict=True)]
        nodes = [node("ConvTranspose", ["x", "w"], ["t"], pads=[*geo.pads, *ends], **attrs),
                 node("Pad", ["t", "ext"], ["u" if b is not None else "y"])]
        consts = [const("ext", [0] * (rank + 2) + [0, 0, *ext], np.int64)]
        if b is not None:
            consts.append(const("bshape", [-1] + [1] * rank, np.int64))
            nodes += [node("Reshape", ["b", "bshape"], ["bb"]), node("Add", ["u", "bb"], ["y"])]
        y = _run(run, nodes, feeds, ["y"], consts)[0]
    if y.shape[2:] != geo.out:
        raise AssertionError(f"ConvTranspose gave {y.shape}, contract says {geo.out}")
    return y


# ------------------------------------------------------------------------------- max pooling


def _nan_check(x: np.ndarray, op: str) -> None:
    if np.isnan(x).any():
        raise Unsupported("onnx-maxpool-nan", f"ONNX {op}: NaN does not win its window")


def _max_pool(x: np.ndarray, kernel_size: object, stride: object, padding: object,
              dilation: object, ceil_mode: bool, return_indices: bool, *, run: Runner,
              rank: int) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    ceil_mode, return_indices = _flag(ceil_mode, "ceil_mode"), _flag(return_indices,
                                                                      "return_indices")
    geo = pool_geometry(x.shape, rank, kernel_size, stride, padding, dilation, ceil_mode)
    _nan_check(x, "MaxPool")
    outs = ["y", ("ind", TensorProto.INT64)] if return_indices else ["y"]
    n = node("MaxPool", ["x"], [o if isinstance(o, str) else o[0] for o in outs],
             kernel_shape=geo.kernel, strides=geo.stride, pads=_flat(geo.pads),
             dilations=geo.dilation, ceil_mode=int(bool(ceil_mode)))
    res = _run(run, [n], {"x": x}, outs)
    if res[0].shape[2:] != geo.out:
        raise AssertionError(f"MaxPool gave {res[0].shape}, contract says {geo.out}")
    hit = geo.hit  # onnx-maxpool-empty-window
    y = np.where(hit, res[0], np.array(-np.inf, x.dtype))
    if not return_indices:
        return y
    ind = np.where(hit, res[1] % math.prod(geo.size), -1).astype(np.int64)
    return y, ind


# --------------------------------------------------------------------------- average pooling


def _avg_pool(x: np.ndarray, kernel_size: object, stride: object, padding: object,
              ceil_mode: bool, count_include_pad: bool, divisor_override: int | None, *,
              run: Runner, rank: int) -> np.ndarray:
    ceil_mode = _flag(ceil_mode, "ceil_mode")
    count_include_pad = _flag(count_include_pad, "count_include_pad")
    geo = avg_pool_geometry(x.shape, rank, kernel_size, stride, padding, ceil_mode)
    avg_divisors(geo, bool(count_include_pad), divisor_override)  # the contract's checks
    if divisor_override is not None:
        raise Unsupported("onnx-avgpool-no-divisor-override",
                          "ONNX AveragePool has no divisor_override")
    n = node("AveragePool", ["x"], ["y"], kernel_shape=geo.kernel, strides=geo.stride,
             pads=_flat(geo.pads), ceil_mode=int(bool(ceil_mode)),
             count_include_pad=int(bool(count_include_pad)))
    y = _run(run, [n], {"x": x}, ["y"])[0]
    if y.shape[2:] != geo.out:
        raise AssertionError(f"AveragePool gave {y.shape}, contract says {geo.out}")
    return y


# --------------------------------------------------------------------------------- LP pooling


def _lp_pool(x: np.ndarray, norm_type: float, kernel_size: object, stride: object,
             ceil_mode: bool, *, run: Runner, rank: int) -> np.ndarray:
    p = lp_norm_type(norm_type)
    geo = lp_pool_geometry(x.shape, rank, kernel_size, stride, _flag(ceil_mode, "ceil_mode"))
    if p != int(p):
        raise Unsupported("onnx-lppool-integer-p", f"ONNX LpPool's p is an int, got {p}")
    if int(p) % 2 and (x < 0).any():
        raise Unsupported("onnx-lppool-abs", "ONNX LpPool sums |x| ** p: an odd p loses the "
                          "sign of negative inputs")
    nodes = [node("LpPool", ["x"], ["s"], p=int(p), kernel_shape=geo.kernel, strides=geo.stride,
                  pads=_flat(geo.floor_pads))]
    counts = avg_divisors(geo, True, None)
    consts = []
    if (counts != math.prod(geo.kernel)).any():
        scale = (math.prod(geo.kernel) / counts) ** (1.0 / p)
        consts.append(const("scale", scale, x.dtype))
        nodes.append(node("Mul", ["s", "scale"], ["y"]))
    else:
        nodes[0] = node("LpPool", ["x"], ["y"], **dict(nodes[0][3]))
    y = _run(run, nodes, {"x": x}, ["y"], consts)[0]
    if y.shape[2:] != geo.out:
        raise AssertionError(f"LpPool gave {y.shape}, contract says {geo.out}")
    return y


# -------------------------------------------------------------------------- adaptive pooling


def _adaptive(kind: str, x: np.ndarray, output_size: object, return_indices: bool, *,
              run: Runner, rank: int) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    out, bins = adaptive_bins(x.shape, rank, output_size)
    return_indices = _flag(return_indices, "return_indices")
    if kind == "max":
        _nan_check(x, "MaxPool / GlobalMaxPool")
    n_, c_ = x.shape[:2]
    if all(o == 1 for o in out) and not return_indices:
        op = "GlobalAveragePool" if kind == "avg" else "GlobalMaxPool"
        return _run(run, [node(op, ["x"], ["y"])], {"x": x}, ["y"])[0]
    axes = list(range(2, 2 + rank))
    consts = [const("axes", axes, np.int64), const("shape", [n_, c_, 1], np.int64),
              const("oshape", [n_, c_, *out], np.int64)]
    nodes, ys, inds, starts_all = [], [], [], []
    for j, cell in enumerate(np.ndindex(*out)):
        lo = [bins[a][i][0] for a, i in enumerate(cell)]
        hi = [bins[a][i][1] for a, i in enumerate(cell)]
        starts_all.append((lo, hi))
        consts += [const(f"lo{j}", lo, np.int64), const(f"hi{j}", hi, np.int64)]
        nodes.append(node("Slice", ["x", f"lo{j}", f"hi{j}", "axes"], [f"s{j}"]))
        if kind == "avg":
            nodes.append(node("ReduceMean", [f"s{j}", "axes"], [f"r{j}"], keepdims=1))
        else:
            pool_outs = [f"r{j}", f"i{j}"] if return_indices else [f"r{j}"]
            nodes.append(node("MaxPool", [f"s{j}"], pool_outs,
                              kernel_shape=[h - low for low, h in zip(lo, hi, strict=True)]))
            inds.append(f"i{j}")
        nodes.append(node("Reshape", [f"r{j}", "shape"], [f"v{j}"]))
        ys.append(f"v{j}")
    nodes += [node("Concat", ys, ["cat"], axis=2), node("Reshape", ["cat", "oshape"], ["y"])]
    outs: list = ["y"]
    if return_indices:
        nodes += [node("Concat", inds, ["icat"], axis=2),
                  node("Reshape", ["icat", "oshape"], ["ind"])]
        outs.append(("ind", TensorProto.INT64))
    res = _run(run, nodes, {"x": x}, outs, consts)
    if kind == "avg" or not return_indices:
        return res[0]
    # Each bin's Indices are flat over its (N, C, *bin) slice: offsets inside the bin, then
    # inside the plane / volume.
    raw = res[1].reshape(n_, c_, -1)
    ind = np.empty_like(raw)
    for j, (lo, hi) in enumerate(starts_all):
        shape = tuple(h - low for low, h in zip(lo, hi, strict=True))
        local = np.unravel_index(raw[:, :, j] % math.prod(shape), shape)
        flat = np.zeros(raw.shape[:2], np.int64)
        for coord, low, size in zip(local, lo, x.shape[2:], strict=True):
            flat = flat * size + coord + low
        ind[:, :, j] = flat
    return res[0], ind.reshape(n_, c_, *out).astype(np.int64)


# ------------------------------------------------------------------------------- batch norm


def _batch_norm(x: np.ndarray, gamma: np.ndarray | None, beta: np.ndarray | None,
                running_mean: np.ndarray | None, running_var: np.ndarray | None,
                training: bool, momentum: float, eps: float, *,
                run: Runner) -> np.ndarray | tuple[np.ndarray, np.ndarray, np.ndarray]:
    training = _flag(training, "training")
    momentum, eps = _real(momentum, "momentum", 0.0, 1.0), _real(eps, "eps", 0.0)
    m = bn_check(x, running_mean, running_var, training)
    c, dt = x.shape[1], x.dtype
    feeds = {"x": x,
             "g": np.ones(c, dt) if gamma is None else _operand(gamma, "gamma", x, (c,)),
             "b": np.zeros(c, dt) if beta is None else _operand(beta, "beta", x, (c,))}
    if not training:
        feeds["rm"] = _operand(running_mean, "running_mean", x, (c,))
        feeds["rv"] = _operand(running_var, "running_var", x, (c,))
        n = node("BatchNormalization", ["x", "g", "b", "rm", "rv"], ["y"], epsilon=onnx_float(eps))
        return _run(run, [n], feeds, ["y"])[0]
    if running_mean is None:
        # onnx-bn-training-outputs: ONNX's shape inference wants all three outputs in training
        # mode (the spec calls the running statistics optional); they are dropped here.
        consts = [const("rm", np.zeros(c), dt), const("rv", np.ones(c), dt)]
        n = node("BatchNormalization", ["x", "g", "b", "rm", "rv"], ["y", "nm", "nv"],
                 epsilon=onnx_float(eps), momentum=onnx_float(1 - momentum), training_mode=1)
        return _run(run, [n], feeds, ["y", "nm", "nv"], consts)[0]
    # onnx-bn-running-var-biased: feed rv * (M - 1) / M, multiply the output by M / (M - 1).
    feeds["rm"] = _operand(running_mean, "running_mean", x, (c,))
    feeds["rv"] = _operand(running_var, "running_var", x, (c,))
    consts = [const("down", (m - 1) / m, dt), const("up", m / (m - 1), dt)]
    nodes = [node("Mul", ["rv", "down"], ["rv_in"]),
             node("BatchNormalization", ["x", "g", "b", "rm", "rv_in"], ["y", "nm", "nv_b"],
                  epsilon=onnx_float(eps), momentum=onnx_float(1 - momentum), training_mode=1),
             node("Mul", ["nv_b", "up"], ["nv"])]
    y, nm, nv = _run(run, nodes, feeds, ["y", "nm", "nv"], consts)
    return y, nm, nv


# ------------------------------------------------------------ layer, group, instance norm


def _ones_zeros(gamma: np.ndarray | None, beta: np.ndarray | None, shape: tuple[int, ...],
                dtype: Any) -> dict[str, np.ndarray]:
    """The Scale and B inputs: gamma and beta, or ones and zeros for None."""
    return {"g": np.ones(shape, dtype) if gamma is None else gamma,
            "b": np.zeros(shape, dtype) if beta is None else beta}


def _layer_norm(x: np.ndarray, normalized_shape: object, gamma: np.ndarray | None,
                beta: np.ndarray | None, eps: float, *, run: Runner) -> np.ndarray:
    axes = normalized_axes(x.shape, normalized_shape)
    norm_affine(gamma, "gamma", axes, x)
    norm_affine(beta, "beta", axes, x)
    eps = norm_real(eps, "eps", 0.0)
    feeds = {"x": x, **_ones_zeros(gamma, beta, axes, x.dtype)}
    n = node("LayerNormalization", ["x", "g", "b"], ["y"], axis=-len(axes),
             epsilon=onnx_float(eps))
    return _run(run, [n], feeds, ["y"])[0]


def _group_norm(x: np.ndarray, num_groups: int, gamma: np.ndarray | None,
                beta: np.ndarray | None, eps: float, *, run: Runner) -> np.ndarray:
    groups = norm_groups(x, num_groups)
    c = x.shape[1]
    norm_affine(gamma, "gamma", (c,), x)
    norm_affine(beta, "beta", (c,), x)
    eps = norm_real(eps, "eps", 0.0)
    feeds = {"x": x, **_ones_zeros(gamma, beta, (c,), x.dtype)}
    if x.dtype == np.float32:
        # onnx-groupnorm-one-pass-variance: GroupNormalization's variance is E[x^2] - E[x]^2
        # in stash_type; in double it is exact enough for float32 data (the float default
        # is not).
        n = node("GroupNormalization", ["x", "g", "b"], ["y"], num_groups=groups,
                 epsilon=onnx_float(eps), stash_type=TensorProto.DOUBLE)
        return _run(run, [n], feeds, ["y"])[0]
    # float64: the two-pass statistics from arithmetic nodes on the (N, G, m) view, then
    # per-channel scale and bias (eps a float32 value, as the attribute would hold it).
    consts = [const("groups", [x.shape[0], groups, -1], np.int64),
              const("xshape", x.shape, np.int64), const("last", [2], np.int64),
              const("cshape", [c] + [1] * (x.ndim - 2), np.int64),
              const("eps", onnx_float(eps), x.dtype)]
    nodes = [node("Reshape", ["x", "groups"], ["rows"]),
             node("ReduceMean", ["rows", "last"], ["mu"], keepdims=1),
             node("Sub", ["rows", "mu"], ["d"]), node("Mul", ["d", "d"], ["d2"]),
             node("ReduceMean", ["d2", "last"], ["var"], keepdims=1),
             node("Add", ["var", "eps"], ["ve"]), node("Sqrt", ["ve"], ["sd"]),
             node("Div", ["d", "sd"], ["xhat_rows"]),
             node("Reshape", ["xhat_rows", "xshape"], ["xhat"]),
             node("Reshape", ["g", "cshape"], ["gc"]), node("Reshape", ["b", "cshape"], ["bc"]),
             node("Mul", ["xhat", "gc"], ["scaled"]), node("Add", ["scaled", "bc"], ["y"])]
    return _run(run, nodes, feeds, ["y"], consts)[0]


def _instance_norm(x: np.ndarray, gamma: np.ndarray | None, beta: np.ndarray | None,
                   running_mean: np.ndarray | None, running_var: np.ndarray | None,
                   training: bool, momentum: float, eps: float, *,
                   run: Runner) -> np.ndarray | tuple[np.ndarray, np.ndarray, np.ndarray]:
    m = instance_norm_check(x, running_mean, running_var, training)
    for name, value in (("gamma", gamma), ("beta", beta), ("running_mean", running_mean),
                        ("running_var", running_var)):
        norm_affine(value, name, (x.shape[1],), x)
    momentum, eps = norm_real(momentum, "momentum", 0.0, 1.0), norm_real(eps, "eps", 0.0)
    feeds = {"x": x, **_ones_zeros(gamma, beta, (x.shape[1],), x.dtype)}
    if not training:  # every instance normalised by the running statistics: batch norm's eval
        feeds.update(rm=running_mean, rv=running_var)  # type: ignore[arg-type]
        n = node("BatchNormalization", ["x", "g", "b", "rm", "rv"], ["y"],
                 epsilon=onnx_float(eps))
        return _run(run, [n], feeds, ["y"])[0]
    nodes = [node("InstanceNormalization", ["x", "g", "b"], ["y"], epsilon=onnx_float(eps))]
    if running_mean is None:
        return _run(run, nodes, feeds, ["y"])[0]
    # The running statistics' update, from arithmetic nodes: per-instance mean and biased
    # variance over the spatial axes (two passes), the variance made unbiased (m / (m - 1)),
    # both averaged over N, then (1 - momentum) * old + momentum * new.
    feeds.update(rm=running_mean, rv=running_var)  # type: ignore[arg-type]
    consts = [const("spatial", list(range(2, x.ndim)), np.int64),
              const("batch_spatial", [0, *range(2, x.ndim)], np.int64),
              const("keep", 1 - momentum, x.dtype), const("mom", momentum, x.dtype),
              const("unbias", m / (m - 1), x.dtype)]
    nodes += [node("ReduceMean", ["x", "spatial"], ["mu"], keepdims=1),
              node("Sub", ["x", "mu"], ["d"]), node("Mul", ["d", "d"], ["d2"]),
              node("ReduceMean", ["d2", "spatial"], ["var"], keepdims=1),
              node("Mul", ["var", "unbias"], ["uvar"]),
              node("ReduceMean", ["mu", "batch_spatial"], ["mu_c"], keepdims=0),
              node("ReduceMean", ["uvar", "batch_spatial"], ["var_c"], keepdims=0)]
    for old, batch, new in (("rm", "mu_c", "nm"), ("rv", "var_c", "nv")):
        nodes += [node("Mul", [old, "keep"], [f"{old}_kept"]),
                  node("Mul", [batch, "mom"], [f"{batch}_m"]),
                  node("Add", [f"{old}_kept", f"{batch}_m"], [new])]
    y, nm, nv = _run(run, nodes, feeds, ["y", "nm", "nv"], consts)
    return y, nm, nv


# ----------------------------------------------------------------- activations, dense layer


def _unary(op: str, x: np.ndarray, *, run: Runner, **attrs: Any) -> np.ndarray:
    return _run(run, [node(op, ["x"], ["y"], **attrs)], {"x": x}, ["y"])[0]


def _relu(x: np.ndarray, *, run: Runner) -> np.ndarray:
    return _unary("Relu", x, run=run)


def _elu(x: np.ndarray, alpha: float, *, run: Runner) -> np.ndarray:
    return _unary("Elu", x, run=run, alpha=onnx_float(check_alpha(alpha)))


def _sigmoid(x: np.ndarray, *, run: Runner) -> np.ndarray:
    return _unary("Sigmoid", x, run=run)


def _linear(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, *, run: Runner) -> np.ndarray:
    w = _operand(w, "w", x)
    b = None if b is None else _operand(b, "b", x)
    linear_check(x, w, b)
    feeds = {"x": x, "w": w} if b is None else {"x": x, "w": w, "b": b}
    if x.ndim == 2:
        nodes = [node("Gemm", list(feeds), ["y"], transB=1)]
    else:
        nodes = [node("Transpose", ["w"], ["wt"], perm=[1, 0]),
                 node("MatMul", ["x", "wt"], ["y" if b is None else "xw"])]
        if b is not None:
            nodes.append(node("Add", ["xw", "b"], ["y"]))
    return _run(run, nodes, feeds, ["y"])[0]


def _adaptive_avg(x: np.ndarray, output_size: object, *, run: Runner, rank: int) -> np.ndarray:
    return _adaptive("avg", x, output_size, False, run=run, rank=rank)


def _adaptive_max(x: np.ndarray, output_size: object, return_indices: bool, *, run: Runner,
                  rank: int) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    return _adaptive("max", x, output_size, return_indices, run=run, rank=rank)


# ---------------------------------------------------------------------------------- the table


def _row(forward: Callable[..., Any], doc: str) -> Row:
    return Row(forward, backward_unsupported="onnx-no-autodiff", doc=doc)


TABLE: dict[str, Row] = {
    "pad": _row(_pad, "Pad (constant / reflect / edge / wrap), spatial axes only."),
    "conv": _row(_conv, "Conv with explicit begin / end pads."),
    "conv_transpose": _row(_conv_t, "ConvTranspose; output_padding >= stride by less cropping "
                           "and a Pad."),
    "max_pool": _row(_max_pool, "MaxPool; Indices made offsets inside the plane / volume, "
                     "-inf and -1 for windows covering no input."),
    "avg_pool": _row(_avg_pool, "AveragePool with count_include_pad and ceil_mode."),
    "lp_pool": _row(_lp_pool, "LpPool (integer p), times (K / count) ** (1 / p) for "
                    "ceil_mode's last windows."),
    "adaptive_avg_pool": _row(_adaptive_avg, "GlobalAveragePool, or a ReduceMean per bin "
                              "(Slice) concatenated."),
    "adaptive_max_pool": _row(_adaptive_max, "GlobalMaxPool, or a MaxPool over each bin (Slice) "
                              "concatenated."),
    "batch_norm": _row(_batch_norm, "BatchNormalization (training_mode=1 for training; the "
                       "running variance made unbiased)."),
    "layer_norm": _row(_layer_norm, "LayerNormalization, axis = -len(normalized_shape)."),
    "group_norm": _row(_group_norm, "float32: GroupNormalization (opset 21: per-channel scale "
                       "and bias; double stash_type); float64: two-pass ReduceMean / Sub / Mul / "
                       "Sqrt / Div nodes."),
    "instance_norm": _row(_instance_norm, "InstanceNormalization; eval is BatchNormalization with "
                          "the running statistics; their update from ReduceMean / Sub / Mul / "
                          "Add nodes."),
    "relu": _row(_relu, "Relu."),
    "elu": _row(_elu, "Elu (alpha a float32 attribute)."),
    "sigmoid": _row(_sigmoid, "Sigmoid."),
    "linear": _row(_linear, "Gemm (transB=1) for 2-D x, else MatMul(x, Transpose(w)) + Add."),
}


def table_run(runner: Runner) -> Run:
    """The run hook of table.contract_functions for one runner (runner(spec, feeds) -> outputs):
    a forward of TABLE builds its graph and `runner` executes it; the forwards of ranked
    families (conv1d / conv2d / conv3d) also get the rank their name fixes."""
    def run(forward: Callable[..., Any], rank: int | None, arguments: dict[str, Any]) -> Any:
        if rank is None:
            return forward(**arguments, run=runner)
        return forward(**arguments, run=runner, rank=rank)
    return run
