"""The autoregressive family: an RNN forecaster of real-valued sequences, and
byte-level language models (an RNN and a transformer with cached,
exportable generation) sharing `language_model.ByteLanguageModel`.

Importing the package registers every model class with `keras.saving`.
"""

from keras_genmodels.autoregressive.language_model import ByteLanguageModel
from keras_genmodels.autoregressive.rnn import RNNAutoregressive
from keras_genmodels.autoregressive.rnn_lm import RNNLanguageModel
from keras_genmodels.autoregressive.transformer import TransformerLM

__all__ = ["ByteLanguageModel", "RNNAutoregressive", "RNNLanguageModel", "TransformerLM"]
