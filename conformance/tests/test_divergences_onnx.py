"""The ONNX entries of conformance/divergences.toml still hold in the installed frameworks.

Each test builds the tiny model of its entry's reproducer, runs it on the framework directly
(onnx.reference.ReferenceEvaluator and / or onnxruntime's CPU provider, opset 26 / IR 13) and
asserts the exact numbers measured with onnx 1.23.2 and onnxruntime 1.31.1, so that it fails
when the framework changes; where the adapter raises the entry's id, the test checks that too.
Each test names its entry with ``@demonstrates``; test_divergences.py derives the map from id to
tests from these marks together with its own.
"""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest

from conformance.frameworks import require

from .divergence_marks import demonstrates


@pytest.fixture
def onnx():
    return require("onnx")


@pytest.fixture
def ort():
    return require("onnxruntime")


OPSET, IR_VERSION = 26, 13
F32, F64 = np.float32, np.float64
FLT_LOWEST = float(np.finfo(np.float32).min)  # -3.4028234663852886e+38


def _model(onnx, op, ins, outs, feeds, **attrs):
    """A one-node model; an output named "I" is int64, the others have the inputs' type."""
    from onnx import TensorProto, helper

    types = {np.dtype(F32): TensorProto.FLOAT, np.dtype(F64): TensorProto.DOUBLE}
    elem = types[next(iter(feeds.values())).dtype]
    node = helper.make_node(op, list(ins), list(outs), **attrs)
    graph = helper.make_graph(
        [node], "g",
        [helper.make_tensor_value_info(k, types[v.dtype], v.shape) for k, v in feeds.items()],
        [helper.make_tensor_value_info(o, TensorProto.INT64 if o == "I" else elem, None)
         for o in outs])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                             ir_version=IR_VERSION)


def _ref(onnx, model, feeds):
    from onnx.reference import ReferenceEvaluator

    return [np.asarray(o) for o in ReferenceEvaluator(model).run(None, feeds)]


def _session(ort, model):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])


def _ort(ort, model, feeds):
    return _session(ort, model).run(None, feeds)


def _raises(backend, bug_id, fn, *args, **kwargs):
    """The adapter `backend` raises Unsupported(bug_id) on this call (a known framework bug)."""
    from conformance.backends import Unsupported, load_backend

    with pytest.raises(Unsupported) as caught:
        getattr(load_backend(backend), fn)(*args, **kwargs)
    assert caught.value.divergence_id == bug_id


def _x(*values, dtype=F32, shape=None):
    a = np.array(values, dtype=dtype)
    return a.reshape(shape if shape is not None else (1, 1, -1))


# --------------------------------------------------------------------------- adapter ids


@pytest.mark.onnx
@demonstrates("onnx-no-autodiff")
def test_onnx_no_autodiff(onnx, ort):
    # onnxruntime wheels without the training package have no gradient; onnx.reference has no
    # kernel for the preview-training Gradient op.
    assert importlib.util.find_spec("onnxruntime.training") is None
    from onnx import helper
    from onnx.reference import ReferenceEvaluator

    node = helper.make_node("Gradient", ["x"], ["dx"], domain="ai.onnx.preview.training",
                            xs=["x"], y="x")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", 1, [1])],
                              [helper.make_tensor_value_info("dx", 1, [1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET),
                                                    helper.make_opsetid(
                                                        "ai.onnx.preview.training", 1)],
                              ir_version=IR_VERSION)
    with pytest.raises(Exception):  # noqa: B017 (ReferenceEvaluator has no Gradient kernel)
        ReferenceEvaluator(model).run(None, {"x": np.ones(1, F32)})


@pytest.mark.onnx
@demonstrates("onnxruntime-no-float64-kernel")
def test_onnxruntime_no_float64_kernel(onnx, ort):
    x = np.ones((1, 1, 4), F64)
    w = np.ones((1, 1, 2), F64)
    cases = [("Conv", {"x": x, "w": w}, {}), ("ConvTranspose", {"x": x, "w": w}, {}),
             ("AveragePool", {"x": x}, {"kernel_shape": [2]}),
             ("LpPool", {"x": x}, {"kernel_shape": [2]}),
             ("GlobalAveragePool", {"x": x}, {}), ("GlobalMaxPool", {"x": x}, {}),
             ("Elu", {"x": x}, {}),
             ("InstanceNormalization", {"x": x, "s": np.ones(1, F64), "b": np.zeros(1, F64)}, {})]
    for op, feeds, attrs in cases:
        with pytest.raises(ort.capi.onnxruntime_pybind11_state.NotImplemented,
                           match="Could not find an implementation"):
            _session(ort, _model(onnx, op, list(feeds), ["y"], feeds, **attrs))
    # the same ops in float32, and MaxPool / Relu / Sigmoid / BatchNormalization / MatMul in
    # float64, have kernels
    _session(ort, _model(onnx, "MaxPool", ["x"], ["y"], {"x": x}, kernel_shape=[2]))
    _session(ort, _model(onnx, "Conv", ["x", "w"], ["y"], {"x": x.astype(F32),
                                                            "w": w.astype(F32)}))
    # instance_norm: training is InstanceNormalization; eval, BatchNormalization, runs in float64
    from conformance.backends import load_backend

    _raises("onnxruntime", "onnxruntime-no-float64-kernel", "instance_norm", x)
    y = load_backend("onnxruntime").instance_norm(x, running_mean=np.zeros(1, F64),
                                                  running_var=np.ones(1, F64), training=False)
    assert y.dtype == F64 and y.shape == x.shape


@pytest.mark.onnx
@demonstrates("onnx-avgpool-no-divisor-override")
def test_onnx_avgpool_no_divisor_override(onnx, ort):
    assert "divisor_override" not in onnx.defs.get_schema("AveragePool", OPSET).attributes
    feeds = {"x": _x(1.0, 2.0)}
    model = _model(onnx, "AveragePool", ["x"], ["y"], feeds, kernel_shape=[2],
                   divisor_override=1)
    with pytest.raises(ort.capi.onnxruntime_pybind11_state.InvalidGraph,
                       match="Unrecognized attribute: divisor_override"):
        _session(ort, model)
    with pytest.raises(TypeError):
        _ref(onnx, model, feeds)


@pytest.mark.onnx
@demonstrates("onnx-lppool-integer-p")
def test_onnx_lppool_integer_p(onnx, ort):
    assert onnx.defs.get_schema("LpPool", OPSET).attributes["p"].type == \
        onnx.defs.OpSchema.AttrType.INT
    feeds = {"x": _x(1.0, 2.0)}
    model = _model(onnx, "LpPool", ["x"], ["y"], feeds, kernel_shape=[2], p=2.5)
    with pytest.raises(ort.capi.onnxruntime_pybind11_state.InvalidGraph,
                       match="Mismatched attribute type"):
        _session(ort, model)
    # onnx.reference runs it, as (sum |x| ** 2.5) ** (1 / 2.5): 2.1345563
    (y,) = _ref(onnx, model, feeds)
    assert y.ravel().tolist() == [np.float32((1 + 2 ** 2.5) ** 0.4).item()]


@pytest.mark.onnx
@demonstrates("onnx-lppool-abs")
def test_onnx_lppool_abs(onnx, ort):
    for p, x, want in ((1, _x(-1.0, -2.0), 3.0), (3, _x(-1.0, 2.0), np.float32(9 ** (1 / 3)))):
        feeds = {"x": x}
        model = _model(onnx, "LpPool", ["x"], ["y"], feeds, kernel_shape=[2], p=p)
        for run in (_ref(onnx, model, feeds), _ort(ort, model, feeds)):
            assert run[0].ravel().tolist() == [float(want)]
    # the contract: p = 1 gives -3, p = 3 gives (-1 + 8) ** (1 / 3) = 1.913


@pytest.mark.onnx
@demonstrates("onnx-maxpool-nan")
def test_onnx_maxpool_nan(onnx, ort):
    first, last = {"x": _x(np.nan, 1.0)}, {"x": _x(1.0, np.nan)}
    plain = _model(onnx, "MaxPool", ["x"], ["y"], first, kernel_shape=[2], strides=[2])
    indexed = _model(onnx, "MaxPool", ["x"], ["y", "I"], first, kernel_shape=[2], strides=[2])
    # onnxruntime float32 without Indices: NaN never wins
    assert _ort(ort, plain, first)[0].ravel().tolist() == [1.0]
    assert _ort(ort, plain, last)[0].ravel().tolist() == [1.0]
    # with Indices (and onnx.reference's strided path): the first cell is kept unless beaten
    y, i = _ort(ort, indexed, last)
    assert (y.ravel().tolist(), i.ravel().tolist()) == ([1.0], [0])
    y, i = _ort(ort, indexed, first)
    assert np.isnan(y).all() and i.ravel().tolist() == [0]
    y, i = _ref(onnx, indexed, last)
    assert (y.ravel().tolist(), i.ravel().tolist()) == ([1.0], [0])
    assert np.isnan(_ref(onnx, plain, first)[0]).all()
    # onnx.reference's stride-1 path drops NaN altogether; onnxruntime's GlobalMaxPool too
    s1 = {"x": _x(np.nan, 1.0, 2.0)}
    assert _ref(onnx, _model(onnx, "MaxPool", ["x"], ["y"], s1, kernel_shape=[2]),
                s1)[0].ravel().tolist() == [1.0, 2.0]
    g = {"x": _x(np.nan, 1.0, shape=(1, 1, 1, 2))}
    assert _ort(ort, _model(onnx, "GlobalMaxPool", ["x"], ["y"], g), g)[0].ravel().tolist() \
        == [1.0]


@pytest.mark.onnx
@demonstrates("onnx-maxpool-empty-window")
def test_onnx_maxpool_empty_window(onnx, ort):
    # L = 1, kernel 2, dilation 2, pads 1: window 0 covers cells -1 and 1 (no input cell)
    feeds = {"x": _x(7.0)}
    kw = {"kernel_shape": [2], "dilations": [2], "pads": [1, 1]}
    y, i = _ort(ort, _model(onnx, "MaxPool", ["x"], ["y", "I"], feeds, **kw), feeds)
    assert (y.ravel().tolist(), i.ravel().tolist()) == ([FLT_LOWEST], [-1])
    (y,) = _ort(ort, _model(onnx, "MaxPool", ["x"], ["y"], feeds, **kw), feeds)
    assert y.ravel().tolist() == [FLT_LOWEST]
    y, i = _ref(onnx, _model(onnx, "MaxPool", ["x"], ["y", "I"], feeds, **kw), feeds)
    assert np.isnan(y).all() and i.ravel().tolist() == [-1]


@pytest.mark.onnx
@demonstrates("onnx-maxpool-flat-indices")
def test_onnx_maxpool_flat_indices(onnx, ort):
    # two planes (N = 2): ONNX Indices count over the whole (N, C, L) tensor
    feeds = {"x": np.array([[[1.0, 2.0]], [[4.0, 3.0]]], F32)}
    model = _model(onnx, "MaxPool", ["x"], ["y", "I"], feeds, kernel_shape=[2], strides=[2])
    for y, i in (_ort(ort, model, feeds), _ref(onnx, model, feeds)):
        assert (y.ravel().tolist(), i.ravel().tolist()) == ([2.0, 4.0], [1, 2])
    # the contract's per-plane offsets are [1, 0]


@pytest.mark.onnx
@demonstrates("onnx-bn-running-var-biased")
def test_onnx_bn_running_var_biased(onnx, ort):
    c = np.zeros(1, F32)
    feeds = {"x": np.array([[1.0], [3.0]], F32), "s": c + 1, "b": c, "m": c, "v": c}
    model = _model(onnx, "BatchNormalization", list(feeds), ["y", "rm", "rv"], feeds,
                   training_mode=1, momentum=0.25)
    for _, rm, rv in (_ort(ort, model, feeds), _ref(onnx, model, feeds)):
        # 0.25 * old + 0.75 * batch, biased batch variance 1 (torch: 0.75 * 2 = 1.5 unbiased)
        assert (rm.tolist(), rv.tolist()) == ([1.5], [0.75])


@pytest.mark.onnx
@demonstrates("onnx-bn-training-outputs")
def test_onnx_bn_training_outputs(onnx, ort):
    c = np.zeros(1, F32)
    feeds = {"x": np.array([[1.0], [3.0]], F32), "s": c + 1, "b": c, "m": c, "v": c + 1}
    model = _model(onnx, "BatchNormalization", list(feeds), ["y"], feeds, training_mode=1)
    with pytest.raises(ort.capi.onnxruntime_pybind11_state.Fail,
                       match="number of op outputs should be 3 when Training_mode = True"):
        _session(ort, model)
    with pytest.raises(onnx.shape_inference.InferenceError):
        onnx.shape_inference.infer_shapes(model, strict_mode=True)
    assert _ref(onnx, model, feeds)[0].ravel().tolist() == [
        np.float32(-1 / math.sqrt(1 + 1e-5)).item(), np.float32(1 / math.sqrt(1 + 1e-5)).item()]


@pytest.mark.onnx
@demonstrates("onnx-float32-attributes")
def test_onnx_float32_attributes(onnx, ort):
    one = np.ones(1, F64)
    feeds = {"x": np.array([[1.0]]), "s": one, "b": one * 0, "m": one * 0, "v": one * 0}
    model = _model(onnx, "BatchNormalization", list(feeds), ["y"], feeds, epsilon=1e-5)
    assert model.graph.node[0].attribute[0].f == float(np.float32(1e-5)) != 1e-5
    for (y,) in (_ort(ort, model, feeds), _ref(onnx, model, feeds)):
        assert y.ravel().tolist() == [1 / math.sqrt(float(np.float32(1e-5)))]
    assert 1 / math.sqrt(float(np.float32(1e-5))) - 1 / math.sqrt(1e-5) == pytest.approx(
        4.0e-6, rel=0.01)  # relative 1.26e-8: 1e-5 is stored as 9.99999974738e-06
    x = {"x": np.array([-1.0])}
    (y,) = _ref(onnx, _model(onnx, "Elu", ["x"], ["y"], x, alpha=0.1), x)
    assert y.tolist() == [float(np.float32(0.1)) * math.expm1(-1.0)]


@pytest.mark.onnx
@demonstrates("onnx-convtranspose-output-padding-stride")
def test_onnx_convtranspose_output_padding_stride(onnx, ort):
    # stride 1, dilation 2, output_padding 1: valid for torch (op < max(s, d)); ONNX's output
    # size formula gives (2 - 1) * 1 + 1 + (1 - 1) * 2 + 1 = 3
    feeds = {"x": _x(1.0, 2.0), "w": _x(1.0)}
    model = _model(onnx, "ConvTranspose", ["x", "w"], ["y"], feeds, kernel_shape=[1],
                   dilations=[2], output_padding=[1])
    with pytest.raises(ort.capi.onnxruntime_pybind11_state.InvalidArgument,
                       match=r"output_padding \(1\) may be too large for stride \(1\)"):
        _ort(ort, model, feeds)
    with pytest.raises(ValueError, match="expected size of input's dimension 2"):
        _ref(onnx, model, feeds)


# -------------------------------------------------------------------------- framework bugs


@pytest.mark.onnx
@demonstrates("onnx-ref-maxpool-pads")
def test_onnx_ref_maxpool_pads(onnx, ort):
    feeds = {"x": _x(1.0, 2.0, 3.0)}
    end = _model(onnx, "MaxPool", ["x"], ["y"], feeds, kernel_shape=[2], pads=[0, 1])
    assert _ref(onnx, end, feeds)[0].ravel().tolist() == [2.0, 3.0]
    assert _ort(ort, end, feeds)[0].ravel().tolist() == [2.0, 3.0, 3.0]
    begin = _model(onnx, "MaxPool", ["x"], ["y"], feeds, kernel_shape=[2], pads=[1, 0])
    with pytest.raises(IndexError):
        _ref(onnx, begin, feeds)
    assert _ort(ort, begin, feeds)[0].ravel().tolist() == [1.0, 2.0, 3.0]
    # rank 2: pads read as (top, bottom, left, right) instead of ONNX's (top, left, bottom,
    # right): [0, 1, 0, 0] (one column on the left) becomes one row at the bottom
    x2 = {"x": _x(1.0, 2.0, 3.0, 4.0, shape=(1, 1, 2, 2))}
    m2 = _model(onnx, "MaxPool", ["x"], ["y"], x2, kernel_shape=[2, 2], pads=[0, 1, 0, 0])
    assert _ort(ort, m2, x2)[0].tolist() == [[[[3.0, 4.0]]]]
    assert _ref(onnx, m2, x2)[0].tolist() == [[[[4.0], [4.0]]]]
    # the strided path (stride 2) honours the pads
    s2 = _model(onnx, "MaxPool", ["x"], ["y"], feeds, kernel_shape=[2], strides=[2],
                pads=[1, 0])
    assert _ref(onnx, s2, feeds)[0].ravel().tolist() == [1.0, 3.0]
    _raises("onnx-ref", "onnx-ref-maxpool-pads", "max_pool1d", feeds["x"], 2, 1, 1)
    _raises("onnx-ref", "onnx-ref-maxpool-pads", "max_pool2d", np.ones((2, 2, 1, 1), F32), 2,
            1, 1, ceil_mode=True)


@pytest.mark.onnx
@demonstrates("onnx-ref-maxpool-indices")
def test_onnx_ref_maxpool_indices(onnx, ort):
    feeds = {"x": _x(1.0, 2.0, 4.0, 3.0, shape=(1, 1, 2, 2))}
    model = _model(onnx, "MaxPool", ["x"], ["y", "I"], feeds, kernel_shape=[2, 2])
    y, i = _ref(onnx, model, feeds)
    assert (y.ravel().tolist(), i.ravel().tolist()) == ([4.0], [4])  # outside a 4-cell plane
    y, i = _ort(ort, model, feeds)
    assert (y.ravel().tolist(), i.ravel().tolist()) == ([4.0], [2])
    # and per plane, not over the whole tensor, in the same (stride-1) path
    two = {"x": np.array([[[1.0, 3.0, 2.0]], [[5.0, 4.0, 6.0]]], F32)}
    m1 = _model(onnx, "MaxPool", ["x"], ["y", "I"], two, kernel_shape=[2])
    assert _ref(onnx, m1, two)[1].ravel().tolist() == [1, 1, 0, 2]
    assert _ort(ort, m1, two)[1].ravel().tolist() == [1, 1, 3, 5]
    _raises("onnx-ref", "onnx-ref-maxpool-indices", "max_pool2d", feeds["x"], 2, 1,
            return_indices=True)


@pytest.mark.onnx
@demonstrates("onnx-ref-maxpool-signed-zero")
def test_onnx_ref_maxpool_signed_zero(onnx, ort):
    feeds = {"x": _x(-0.0, 0.0)}
    model = _model(onnx, "MaxPool", ["x"], ["y"], feeds, kernel_shape=[2])
    assert np.signbit(_ref(onnx, model, feeds)[0]).ravel().tolist() == [False]
    assert np.signbit(_ort(ort, model, feeds)[0]).ravel().tolist() == [True]


@pytest.mark.onnx
@demonstrates("onnx-ref-avgpool-ceil-mode")
def test_onnx_ref_avgpool_ceil_mode(onnx, ort):
    feeds = {"x": _x(1.0, 2.0, 3.0, 4.0)}
    model = _model(onnx, "AveragePool", ["x"], ["y"], feeds, kernel_shape=[3], strides=[3],
                   ceil_mode=1)
    assert _ref(onnx, model, feeds)[0].ravel().tolist() == [1.5, 3.0]
    assert _ort(ort, model, feeds)[0].ravel().tolist() == [2.0, 4.0]
    _raises("onnx-ref", "onnx-ref-avgpool-ceil-mode", "avg_pool1d", feeds["x"], 3, 3,
            ceil_mode=True)


@pytest.mark.onnx
@demonstrates("onnx-ref-pool-drops-nan")
def test_onnx_ref_pool_drops_nan(onnx, ort):
    feeds = {"x": _x(np.nan, 1.0, 2.0)}
    model = _model(onnx, "AveragePool", ["x"], ["y"], feeds, kernel_shape=[2])
    assert _ref(onnx, model, feeds)[0].ravel().tolist() == [1.0, 1.5]
    y = _ort(ort, model, feeds)[0].ravel()
    assert np.isnan(y[0]) and y[1] == 1.5
    _raises("onnx-ref", "onnx-ref-pool-drops-nan", "avg_pool1d", feeds["x"], 2, 1,
            count_include_pad=False)
    _raises("onnx-ref", "onnx-ref-pool-drops-nan", "lp_pool1d", feeds["x"], 2, 2)


@pytest.mark.onnx
@demonstrates("onnx-ref-globalmaxpool-axes")
def test_onnx_ref_globalmaxpool_axes(onnx, ort):
    feeds = {"x": np.array([[[1.0, 2.0], [4.0, 3.0]]], F32)}  # (N, C, L) = (1, 2, 2)
    model = _model(onnx, "GlobalMaxPool", ["x"], ["y"], feeds)
    y = _ref(onnx, model, feeds)[0]
    assert (y.shape, y.ravel().tolist()) == ((1, 1), [4.0])  # max over C and L
    y = _ort(ort, model, feeds)[0]
    assert (y.shape, y.ravel().tolist()) == ((1, 2, 1), [2.0, 4.0])
    x3 = {"x": np.arange(8, dtype=F32).reshape(1, 1, 2, 2, 2)}
    assert _ref(onnx, _model(onnx, "GlobalMaxPool", ["x"], ["y"], x3), x3)[0].shape == \
        (1, 1, 2, 1, 1, 1)
    _raises("onnx-ref", "onnx-ref-globalmaxpool-axes", "adaptive_max_pool1d", feeds["x"], 1)
    _raises("onnx-ref", "onnx-ref-globalmaxpool-axes", "adaptive_max_pool3d", x3["x"], 1)


@pytest.mark.onnx
@demonstrates("onnx-ref-convtranspose-groups")
def test_onnx_ref_convtranspose_groups(onnx, ort):
    feeds = {"x": np.array([[[1.0], [2.0]]], F32), "w": np.array([[[1.0], [2.0]],
                                                                  [[10.0], [20.0]]], F32)}
    model = _model(onnx, "ConvTranspose", ["x", "w"], ["y"], feeds, group=2)
    with pytest.raises(ValueError, match="cannot reshape array"):
        _ref(onnx, model, feeds)
    assert _ort(ort, model, feeds)[0].ravel().tolist() == [1.0, 2.0, 20.0, 40.0]
    _raises("onnx-ref", "onnx-ref-convtranspose-groups", "conv_transpose1d", feeds["x"],
            feeds["w"], groups=2)


@pytest.mark.onnx
@demonstrates("onnx-ref-relu-signed-zero")
def test_onnx_ref_relu_signed_zero(onnx, ort):
    feeds = {"x": np.array([-0.0, np.nan], F32)}
    model = _model(onnx, "Relu", ["x"], ["y"], feeds)
    y = _ref(onnx, model, feeds)[0]
    assert not np.signbit(y[0]) and np.isnan(y[1])
    y = _ort(ort, model, feeds)[0]
    assert np.signbit(y[0]) and np.isnan(y[1])


@pytest.mark.onnx
@demonstrates("onnxruntime-sigmoid-accuracy")
def test_onnxruntime_sigmoid_accuracy(onnx, ort):
    x = np.array([-15.98976, -17.0, -18.0, -20.0], F32)
    y = _ort(ort, _model(onnx, "Sigmoid", ["x"], ["y"], {"x": x}), {"x": x})[0]
    assert y.tolist() == [np.float32(2.3841858e-07).item(), np.float32(8.940697e-08).item(),
                          0.0, 0.0]  # true: 1.137e-07, 4.140e-08, 1.523e-08, 2.061e-09
    x64 = np.array([-40.0, -100.0])
    assert _ort(ort, _model(onnx, "Sigmoid", ["x"], ["y"], {"x": x64}), {"x": x64})[0] \
        .tolist() == [0.0, 0.0]  # true: 4.248e-18, 3.720e-44
    y = _ref(onnx, _model(onnx, "Sigmoid", ["x"], ["y"], {"x": x}), {"x": x})[0]
    assert np.all(np.abs(y - 1 / (1 + np.exp(-x.astype(F64)))) < 1e-14)
    _raises("onnxruntime", "onnxruntime-sigmoid-accuracy", "sigmoid", x)
    _raises("onnxruntime", "onnxruntime-sigmoid-accuracy", "sigmoid", x64)


@pytest.mark.onnx
@demonstrates("onnxruntime-maxpool-neg-inf")
def test_onnxruntime_maxpool_neg_inf(onnx, ort):
    feeds = {"x": _x(-np.inf, -np.inf)}
    plain = _model(onnx, "MaxPool", ["x"], ["y"], feeds, kernel_shape=[2])
    assert _ort(ort, plain, feeds)[0].ravel().tolist() == [FLT_LOWEST]
    assert _ref(onnx, plain, feeds)[0].ravel().tolist() == [-np.inf]
    y, i = _ort(ort, _model(onnx, "MaxPool", ["x"], ["y", "I"], feeds, kernel_shape=[2]),
                feeds)
    assert (y.ravel().tolist(), i.ravel().tolist()) == ([-np.inf], [0])
    g = {"x": _x(-np.inf, -np.inf, shape=(1, 1, 1, 2))}
    assert _ort(ort, _model(onnx, "GlobalMaxPool", ["x"], ["y"], g), g)[0].ravel().tolist() \
        == [FLT_LOWEST]
    d = {"x": _x(-np.inf, -np.inf, dtype=F64)}
    assert _ort(ort, _model(onnx, "MaxPool", ["x"], ["y"], d, kernel_shape=[2]), d)[0] \
        .ravel().tolist() == [-np.inf]
    _raises("onnxruntime", "onnxruntime-maxpool-neg-inf", "max_pool1d", feeds["x"], 2)
    _raises("onnxruntime", "onnxruntime-maxpool-neg-inf", "adaptive_max_pool2d", g["x"], 1)



@pytest.mark.onnx
@demonstrates("onnx-groupnorm-one-pass-variance")
def test_onnx_groupnorm_one_pass_variance(onnx, ort):
    from onnx import TensorProto

    def run(x, **stash):
        feeds = {"x": x, "s": np.ones(1, x.dtype), "b": np.zeros(1, x.dtype)}
        model = _model(onnx, "GroupNormalization", ["x", "s", "b"], ["y"], feeds, num_groups=1,
                       epsilon=0.0, **stash)
        with np.errstate(all="ignore"):  # the evaluator divides by a zero variance
            return [r(model, feeds)[0].ravel().tolist() for r in (
                lambda m, f: _ort(ort, m, f), lambda m, f: _ref(onnx, m, f))]

    wide = _x(1e8, 1e8 + 2, dtype=F64)  # variance 1: y = [-1, 1]
    half = [-0.7071067811865475, 0.7071067811865475]  # E[x^2] - E[x]^2 = 2
    assert run(wide, stash_type=TensorProto.DOUBLE) == [half, half]
    assert all(np.isnan(y).all() for y in run(wide))  # the default stash_type: float
    assert run(_x(4096.0, 4097.0)) == [[-np.inf, np.inf]] * 2  # float32: variance 0
    # the adapters: two-pass statistics for float64, GroupNormalization (double stash) for
    # float32
    from conformance.backends import load_backend

    for backend in ("onnx-ref", "onnxruntime"):
        module = load_backend(backend)
        assert module.group_norm(wide, 1, eps=0.0).ravel().tolist() == [-1.0, 1.0]
        assert module.group_norm(_x(4096.0, 4097.0), 1, eps=0.0).ravel().tolist() == [-1.0, 1.0]


@pytest.mark.onnx
def test_the_reproducers_use_the_adapters_opset(onnx):
    from conformance.backends import onnx_backend

    assert (onnx_backend.OPSET, onnx_backend.IR_VERSION) == (OPSET, IR_VERSION)


@pytest.mark.onnx
@demonstrates("onnx-ref-low-precision-storage-arithmetic")
def test_onnx_reference_sums_bfloat16_in_bfloat16(onnx, ort):
    """The backend's avg_pool on the evaluator: 2048 + 1 - 2048 summed in bfloat16 is 0 (exact
    1/3); NumPy sums float16 in float32, so float16 gets 0.33325."""
    import ml_dtypes

    from conformance.backends import load_backend

    backend = load_backend("onnx-ref")
    x = np.array([[[2048.0, 1.0, -2048.0]]])
    assert backend.avg_pool1d(x.astype(ml_dtypes.bfloat16), 3).astype(F32).item() == 0.0
    assert backend.avg_pool1d(x.astype(np.float16), 3).item() == np.float16(1 / 3)


@pytest.mark.onnx
@demonstrates("onnxruntime-no-bfloat16")
def test_onnxruntime_has_no_bfloat16_kernels(onnx, ort):
    from onnx import TensorProto, helper

    from conformance.backends import Unsupported, load_backend

    node = helper.make_node("Relu", ["x"], ["y"])
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.BFLOAT16, [1, 2])],
        [helper.make_tensor_value_info("y", TensorProto.BFLOAT16, [1, 2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              ir_version=IR_VERSION)
    with pytest.raises(ort.capi.onnxruntime_pybind11_state.NotImplemented,
                       match=r"Could not find an implementation for Relu"):
        ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    import ml_dtypes

    with pytest.raises(Unsupported, match="onnxruntime-no-bfloat16"):
        load_backend("onnxruntime").relu(np.zeros((1, 2), ml_dtypes.bfloat16))


@pytest.mark.onnx
@demonstrates("onnxruntime-no-low-precision-kernel")
def test_onnxruntime_names_the_op_without_a_low_precision_kernel(onnx, ort):
    """The session builder's refusal becomes Unsupported naming the op (reached by bfloat16
    graphs, which the backend refuses first; the float16 graphs of the suite's ops build)."""
    from conformance.backends import Unsupported
    from conformance.backends.onnx_backend import node
    from conformance.backends.onnxruntime_backend import _session

    spec = ((node("Relu", ["x"], ["y"]),), (("x", (1, 2)),), (("y", None),), "bfloat16", ())
    refused = _session(spec)
    assert isinstance(refused, Unsupported)
    assert refused.divergence_id == "onnxruntime-no-low-precision-kernel"
    assert "Relu" in str(refused)
    spec16 = ((node("Relu", ["x"], ["y"]),), (("x", (1, 2)),), (("y", None),), "float16", ())
    assert not isinstance(_session(spec16), Unsupported)


@pytest.mark.onnx
@demonstrates("onnxruntime-float16-norm-rounding")
def test_onnxruntime_float16_group_norm_leaves_float32_accumulation(onnx, ort):
    """The registry's sampled case: 2.5x the float32-accumulation, one-rounding bound."""
    import nnref

    from conformance import low_precision as lp
    from conformance.backends import load_backend
    from conformance.ops.group_norm import GroupNormCase

    case = GroupNormCase((3, 4, 1), 2, kind="normal")
    storage = np.dtype(np.float16)
    low, a64 = lp.rounded_inputs(lp.shaped(case.arrays(F32, 1795839325), "near zero",
                                           1 / 256), storage)
    want = case.call(nnref, "forward", a64)
    got = case.call(load_backend("onnxruntime"), "forward", dict(low))
    bound = lp.allowed(case, a64, "forward", lp.Arithmetic(storage), want)["y"]
    assert float(np.max(np.abs(got["y"].astype(np.float64) - want["y"]) / bound)) > 1.5


@pytest.mark.onnx
@demonstrates("onnx-ref-low-precision-statistics")
def test_onnx_reference_float16_group_norm_overflows(onnx, ort):
    """A group of 108 values near 800 in float16: its sum passes 65504, NaN (the exact result is
    finite); a group of two, [800, 800.5]: [0, 1.414] (exact [-1, 1]). The backend refuses."""
    from conformance.backends import Unsupported, load_backend, onnxref_backend
    from conformance.backends.table import Row, contract_functions

    plain = contract_functions(
        {k: Row(v.forward, v.backward, v.unsupported, v.backward_unsupported, v.doc)
         for k, v in onnxref_backend.TABLE.items()}, "onnx.reference",
        run=onnxref_backend.table_run(onnxref_backend.run), module="plain",
        storage=("float16",))
    x = (800.0 + 0.5 * np.arange(108.0)).reshape(1, 1, 108).astype(np.float16)
    assert np.isnan(plain["group_norm"](x, 1)).all()
    pair = plain["group_norm"](np.array([[[800.0, 800.5]]], np.float16), 1)
    assert pair.astype(np.float32).ravel().tolist() == [0.0, 1.4140625]
    with pytest.raises(Unsupported, match="onnx-ref-low-precision-statistics"):
        load_backend("onnx-ref").group_norm(x, 1)
