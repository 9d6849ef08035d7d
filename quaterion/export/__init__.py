"""Exports of trained models for serving outside Quaterion (ONNX: extra `quaterion[onnx]`)."""

from quaterion.export.onnx import OnnxSimilarityModel, export_onnx, onnx_inputs

__all__ = ["OnnxSimilarityModel", "export_onnx", "onnx_inputs"]
