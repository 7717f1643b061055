"""Checkpoint → model folder of ONNX stage graphs (FP32 and mixed FP16) + ``manifest.json``.

Needs the ``export`` extra (torch, onnx, onnxsim, onnxruntime). Modules:
:mod:`~jamsdk.export.torch2onnx` (stage wrappers, tracing, onnxsim),
:mod:`~jamsdk.export.fp16` (mixed-precision conversion, FP32 islands),
:mod:`~jamsdk.export.checks` (TensorRT hygiene rules, ``trt103_ops.json``),
:mod:`~jamsdk.export.verify` (ONNX Runtime vs PyTorch),
:mod:`~jamsdk.export.samples` (inputs and a synthetic clip),
:mod:`~jamsdk.export.pipeline` (``jamsdk export``). The manifest itself is :mod:`jamsdk.manifest`
(torch-free, shared with the runtime).
"""
