"""Conditioning shared by the conditional families: class labels, prompts, guidance.

- `checks`: the Python-side validation of `sample(..., labels=, prompt=,
  guidance_scale=)` and the in-graph checks of the exported `labels` input,
  one implementation for the GAN, the VAE and the diffusion model.
- `text`: the byte-level transformer text encoder and the prompt tokenizer
  of text-conditional models.
"""

from keras_genmodels.conditioning import text  # noqa: F401 (registers its layers)
from keras_genmodels.conditioning.checks import (  # noqa: F401
    CONDITIONING_OPTIONS,
    check_guidance_scale,
    check_labels,
    check_num_classes,
    check_prompts,
    check_served_labels,
    labelled_pipeline,
)
