"""Runs exported TF Lite files with `ai_edge_litert` and numpy only.

The reference loops for app developers, one module per family whose
generation is a loop of interpreter calls:

- `keras_genmodels.litert.diffusion`: `diffusion_sample(path, noise, ...)`
  runs a DDPM file's `solver_step` (DPM-Solver++(2M), a fixed number of
  calls per image);
- `keras_genmodels.litert.text`: `generate_text(path, prompt,
  max_new_tokens, temperature, top_k, seed)` runs a transformer LM file's
  key/value-cache `prefill` and `decode`.

Each module imports only numpy and `ai_edge_litert` and nothing of this
package, so the file can be copied into an app as it is. Imported through
the package (`from keras_genmodels.litert import text`), the package's own
`__init__` still loads TensorFlow to register the model classes; an app
that must not pay for that loads the file by path, as the tests do.
"""
