"""The DDPM's own held-out figures: noise-prediction loss, sliced Wasserstein.

`DDPM.evaluation_metrics` reports these; the figures every points or image
family gets on a named data set (mode coverage, classifier-FID) come from
`keras_genmodels.evaluation.registry`.
"""

import numpy as np
import tensorflow as tf

from keras_genmodels.evaluation.registry import toy_set
from keras_genmodels.evaluation.sliced_wasserstein import sliced_wasserstein


def noise_prediction_loss(model, dataset, batch_size, seed):
    """The simple loss of `model` on a test split, at uniform random `t`.

    Batch `i` draws its timesteps with the seed `[seed, 2 i]` and its noise
    with `[seed, 2 i + 1]`, so the figure is a function of `seed`.

    Args:
        model: A `DDPM`.
        dataset: Unbatched test-split dataset; a class-conditional model
            is scored on `(image, label)` pairs, conditioned on the label.
        batch_size: Examples per batch.
        seed: Int seed of the timesteps and noise.

    Returns:
        `(mean loss per example, number of examples)`.
    """
    from keras_genmodels import progress

    total, count = 0.0, 0
    batches = progress.track_test_batches(
        model, dataset, batch_size, "Diffusion noise-prediction loss"
    )
    for i, batch in enumerate(batches):
        x, raw_condition = model.split_batch(batch)
        x_0 = model.to_process_space(x)
        n = tf.shape(x_0)[0]
        t = tf.random.stateless_uniform(
            [n], [seed, 2 * i], 0, model.timesteps, dtype=tf.int32
        )
        noise = tf.random.stateless_normal(tf.shape(x_0), [seed, 2 * i + 1])
        total += float(model.noise_loss(x_0, t, noise, raw_condition=raw_condition)) * int(n)
        count += int(n)
    return total / count, count


def sliced_wasserstein_figures(model, dataset, dataset_name, num_samples, num_steps, seed):
    """Sliced Wasserstein distances of model samples and of data to test points.

    The model's samples are compared with the first `num_samples` test
    points, and the reference figure is the same distance between two
    independent draws of data: the next `num_samples` test points (or, if
    the split is too small, a fresh draw of `num_samples` points of the named
    2-D toy set, compared with all the test points there are). Without a
    named toy set, a split with fewer than `2 * num_samples` points is cut
    into two halves, the first compared with as many model samples, the
    second the reference.

    Args:
        model: A `DDPM` of points.
        dataset: Unbatched test-split dataset.
        dataset_name: The data set's name (`None` if unknown).
        num_samples: Points compared.
        num_steps: Reverse steps of the samples (`None`: the default).
        seed: Int seed of the samples, the toy-set draw and the projections.

    Returns:
        Dict: `sliced_wasserstein`, `sliced_wasserstein_data`,
        `sliced_wasserstein_ratio`, `num_samples` (model samples drawn) and
        `num_test_points` (test points they are compared with).
    """
    from keras_genmodels import progress

    points = np.concatenate(
        [np.asarray(b) for b in model.prepare_dataset(dataset, 4096, shuffle=False)]
    )
    test = points[:num_samples]
    reference = points[num_samples : 2 * num_samples]
    toy = toy_set(dataset_name)
    if len(reference) < num_samples and toy is not None:
        reference, _ = toy.sample(num_samples, seed=seed + 1000)
    if len(reference) < len(test):  # Fall back to two halves of the split.
        half = len(points) // 2
        if half == 0:
            raise ValueError(
                "The sliced Wasserstein figures need at least 2 test points "
                "(one half compared with the samples, the other as the data "
                f"reference) or a named 2-D set. Received: {len(points)} test "
                f"point(s), dataset_name={dataset_name!r}"
            )
        test, reference = points[:half], points[half : 2 * half]
    # As many samples as reference points: both distances to `test` then
    # compare equally many points with it.
    steps = num_steps or model.sampling_steps or model.timesteps
    bar = progress.Progress(
        1,
        f"Sampling {len(reference):,} points ({steps} reverse steps) for the "
        "sliced Wasserstein distance",
        "sampling call",
    )
    samples = model.sample(len(reference), seed=seed, num_steps=num_steps)
    bar.advance(1)
    model_distance = sliced_wasserstein(samples, test, seed=seed)
    data_distance = sliced_wasserstein(reference, test, seed=seed)
    return {
        "sliced_wasserstein": model_distance,
        "sliced_wasserstein_data": data_distance,
        "sliced_wasserstein_ratio": model_distance / data_distance,
        "num_samples": int(len(samples)),
        "num_test_points": int(len(test)),
    }
