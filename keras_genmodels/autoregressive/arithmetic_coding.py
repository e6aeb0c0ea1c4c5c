"""Arithmetic coding: a bit string from next-symbol probabilities, and back.

An arithmetic coder turns a sequence of symbols and, for each, the
distribution a model predicted for it, into a bit string of about
`sum_t -log2 p(x_t)` bits (plus two bits at the end and a rounding loss per
symbol that the integer frequencies make negligible here). A decoder that
is given the same distributions in the same order recovers the symbols. So a
model's bits per character is a real compressed size, and this module
measures it as one.

This is the integer coder of Witten, Neal and Cleary (1987): 32-bit `low`
and `high` bounds, renormalised one bit at a time, with the "pending bits"
(underflow) rule when the interval straddles the middle. Frequencies are
integers summing to at most `2 ** FREQUENCY_BITS` (every symbol at least 1,
so every symbol can be coded); both sides must quantise the probabilities
with `cumulative_frequencies`.

References:
    Witten, Neal and Cleary, "Arithmetic Coding for Data Compression",
    Communications of the ACM 30(6), 1987.
"""

import numpy as np

FREQUENCY_BITS = 24
_CODE_BITS = 32
_TOP = (1 << _CODE_BITS) - 1
_HALF = 1 << (_CODE_BITS - 1)
_QUARTER = 1 << (_CODE_BITS - 2)


def cumulative_frequencies(probabilities, frequency_bits=FREQUENCY_BITS):
    """Integer cumulative frequencies of a distribution, for the coder.

    Args:
        probabilities: 1-D array of non-negative weights (normalised here).
        frequency_bits: The frequencies sum to at most
            `2 ** frequency_bits`; at most 30 (the coder's interval is
            always wider than `2 ** 30`).

    Returns:
        1-D int64 array `c` of length `len(probabilities) + 1` with
        `c[0] = 0`; symbol `s` owns `[c[s], c[s + 1])`, at least 1 wide.
    """
    p = np.asarray(probabilities, "float64")
    if p.ndim != 1 or len(p) == 0:
        raise ValueError(
            f"`probabilities` must be a non-empty 1-D array. Received shape {p.shape}"
        )
    if not np.all(np.isfinite(p)) or np.any(p < 0) or p.sum() <= 0:
        raise ValueError(
            "`probabilities` must be finite, non-negative and not all zero. "
            f"Received min {p.min()}, sum {p.sum()}"
        )
    if not 1 <= frequency_bits <= _CODE_BITS - 2:
        raise ValueError(
            f"`frequency_bits` must be between 1 and {_CODE_BITS - 2}. "
            f"Received: {frequency_bits}"
        )
    spare = (1 << frequency_bits) - len(p)
    if spare < 0:
        raise ValueError(
            f"{len(p)} symbols do not fit in 2 ** {frequency_bits} frequencies."
        )
    frequencies = np.floor(p / p.sum() * spare).astype("int64") + 1
    return np.concatenate([[0], np.cumsum(frequencies)])


def _narrow(low, high, cumulative, symbol):
    """The part of `[low, high]` that `symbol` owns: the one step both sides share.

    Returns:
        `(low, high)` of the sub-interval, in proportion to `symbol`'s
        frequencies `[cumulative[symbol], cumulative[symbol + 1])`.
    """
    total = int(cumulative[-1])
    span = high - low + 1
    return (
        low + span * int(cumulative[symbol]) // total,
        low + span * int(cumulative[symbol + 1]) // total - 1,
    )


_MIDDLE = "middle"


def _rescale(low, high):
    """One renormalisation step of the interval, the same on both sides.

    Returns:
        `None` while the interval is wide (straddles the middle by more than
        a quarter). Otherwise `(case, offset, low, high)`: `case` is the bit
        0 or 1 when the interval lies in the lower or upper half, or
        `_MIDDLE` when it lies in the middle two quarters; `offset` is the
        amount taken off before the interval is doubled.
    """
    if high < _HALF:
        case, offset = 0, 0
    elif low >= _HALF:
        case, offset = 1, _HALF
    elif low >= _QUARTER and high < _HALF + _QUARTER:
        case, offset = _MIDDLE, _QUARTER
    else:
        return None
    return case, offset, 2 * (low - offset), 2 * (high - offset) + 1


class ArithmeticEncoder:
    """Codes symbols into bits; `finish()` returns the bytes.

    Example:

    ```python
    encoder = ArithmeticEncoder()
    for symbol, probabilities in zip(symbols, distributions):
        encoder.encode(cumulative_frequencies(probabilities), symbol)
    data = encoder.finish()
    ```
    """

    def __init__(self):
        self._low = 0
        self._high = _TOP
        self._pending = 0
        self._bits = []
        self._finished = False

    def _emit(self, bit):
        self._bits.append(bit)
        self._bits.extend([1 - bit] * self._pending)
        self._pending = 0

    def encode(self, cumulative, symbol):
        """Narrows the interval to `symbol`'s share of `cumulative`.

        Args:
            cumulative: Output of `cumulative_frequencies`.
            symbol: Int index, `0 <= symbol < len(cumulative) - 1`.
        """
        if self._finished:
            raise RuntimeError("The encoder is finished; start a new one.")
        symbol = int(symbol)
        if not 0 <= symbol < len(cumulative) - 1:
            raise ValueError(
                f"`symbol` must be in [0, {len(cumulative) - 1}). Received: {symbol}"
            )
        self._low, self._high = _narrow(self._low, self._high, cumulative, symbol)
        while (step := _rescale(self._low, self._high)) is not None:
            case, _, self._low, self._high = step
            if case == _MIDDLE:
                self._pending += 1  # Which half follows is not known yet.
            else:
                self._emit(case)

    def finish(self):
        """Ends the code (two more bits at most) and returns it as bytes."""
        if not self._finished:
            self._pending += 1
            self._emit(0 if self._low < _QUARTER else 1)
            self._finished = True
        bits = np.array(self._bits, "uint8")
        return np.packbits(bits).tobytes()


class ArithmeticDecoder:
    """Reads the symbols of an `ArithmeticEncoder`'s bytes back.

    Args:
        data: The encoder's bytes.
    """

    def __init__(self, data):
        self._bits = np.unpackbits(np.frombuffer(bytes(data), "uint8"))
        self._position = 0
        self._low = 0
        self._high = _TOP
        self._value = 0
        for _ in range(_CODE_BITS):
            self._value = 2 * self._value + self._next_bit()

    def _next_bit(self):
        bit = int(self._bits[self._position]) if self._position < len(self._bits) else 0
        self._position += 1
        return bit

    def decode(self, cumulative):
        """The next symbol, given the same `cumulative` the encoder used.

        Args:
            cumulative: Output of `cumulative_frequencies`.

        Returns:
            An int symbol index.
        """
        total = int(cumulative[-1])
        span = self._high - self._low + 1
        scaled = ((self._value - self._low + 1) * total - 1) // span
        symbol = int(np.searchsorted(cumulative, scaled, side="right")) - 1
        self._low, self._high = _narrow(self._low, self._high, cumulative, symbol)
        while (step := _rescale(self._low, self._high)) is not None:
            _, offset, self._low, self._high = step
            self._value = 2 * (self._value - offset) + self._next_bit()
        return symbol
