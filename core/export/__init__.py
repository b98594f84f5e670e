"""Exporting a trained model to run elsewhere: ONNX, and DeepFaceLive's .dfm (ONNX inside), checked
with ONNX Runtime; and the ONNX Runtime engine that `convert --engine onnx` swaps with.

Modules: options (the `export` job kind's declared options), graph (the functions traced), crop
(the crop an export expects, in DeepFaceLive's and FaceFusion's terms), onnx_file (jax2onnx, the
metadata, writing), verify (ONNX Runtime against JAX; DeepFaceLive's loader contract), job (the
`export` job), engine (an ONNX Runtime swapper). Imports core.train (the checkpoint reader),
core.faces and below; convert imports it for the engine.
"""
