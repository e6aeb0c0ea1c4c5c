"""Runs exported TF Lite files with `ai_edge_litert` and numpy only (no TensorFlow, no Keras)."""
