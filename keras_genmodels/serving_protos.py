"""The few protobuf messages an export writes and `inspect` reads, by hand.

TensorFlow Serving's warm-up file holds `tensorflow.serving.PredictionLog`
records, and a SavedModel's `saved_model.pb` holds its signatures. Neither the
`tensorflow-serving-api` package (not a runtime dependency) nor TensorFlow
(whose import also imports Keras) is needed to write or read them: this module
speaks the protobuf wire format for exactly the fields used, with numpy only.
It also reads TFRecord files (the warm-up file's framing) with their CRC-32C
checks.

Field numbers, as in tensorflow_serving/apis/*.proto and
tensorflow/core/protobuf/*.proto (`tests/test_export_warmup.py` and
`tests/test_inspect.py` check the encoding and decoding with the generated
`_pb2` messages):

- `PredictionLog`: 6 `predict_log`; `PredictLog`: 1 `request`;
  `PredictRequest`: 1 `model_spec`, 2 `inputs` (map string -> TensorProto);
  `ModelSpec`: 1 `name`, 3 `signature_name`.
- `SavedModel`: 2 `meta_graphs`; `MetaGraphDef`: 1 `meta_info_def` (4
  `tags`), 5 `signature_def` (map string -> SignatureDef); `SignatureDef`: 1
  `inputs`, 2 `outputs` (maps string -> TensorInfo), 3 `method_name`;
  `TensorInfo`: 1 `name`, 2 `dtype`, 3 `tensor_shape`, 4/5 sparse/composite;
  `TensorShapeProto`: 2 `dim` (`Dim`: 1 `size`), 3 `unknown_rank`.
- `TensorProto`: 1 `dtype`, 2 `tensor_shape`, 4 `tensor_content`, 5 float, 6
  double, 7 int, 8 string, 10 int64, 11 bool, 13 half, 16 uint32, 17 uint64.
"""

import struct

import numpy as np

#: TensorFlow `DataType` enum values -> names (`tf.as_dtype(n).name`).
DTYPE_NAMES = {
    1: "float32", 2: "float64", 3: "int32", 4: "uint8", 5: "int16", 6: "int8",
    7: "string", 8: "complex64", 9: "int64", 10: "bool", 14: "bfloat16",
    17: "uint16", 18: "complex128", 19: "float16", 20: "resource", 21: "variant",
    22: "uint32", 23: "uint64",
}
#: Names -> numpy dtypes of the types a request may carry (`object`: bytes).
NUMPY_DTYPES = {
    "float32": np.float32, "float64": np.float64, "int32": np.int32,
    "uint8": np.uint8, "int16": np.int16, "int8": np.int8, "string": object,
    "int64": np.int64, "bool": np.bool_, "uint16": np.uint16,
    "float16": np.float16, "uint32": np.uint32, "uint64": np.uint64,
}
# TensorProto's repeated value field of each type: (field number, decoder).
_INT_VAL, _HALF_VAL = 7, 13
_VALUE_FIELDS = {
    "float32": (5, "f"), "float64": (6, "d"), "int32": (7, "v"), "uint8": (7, "v"),
    "int16": (7, "v"), "int8": (7, "v"), "uint16": (7, "v"), "int64": (10, "v"),
    "bool": (11, "v"), "float16": (13, "v"), "uint32": (16, "v"), "uint64": (17, "v"),
}


# ----------------------------------------------------------------------
# Wire format.
# ----------------------------------------------------------------------
def _varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(buffer, pos):
    result = shift = 0
    while True:
        if pos >= len(buffer):
            raise ValueError("A protobuf message ends inside a varint.")
        byte = buffer[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _signed(value):
    """A varint read as a 64-bit two's complement integer (int32/int64 fields)."""
    return value - (1 << 64) if value >= 1 << 63 else value


def message_field(number, payload):
    """Encodes a length-delimited field (a message, `bytes` or `str`)."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    return _varint(number << 3 | 2) + _varint(len(payload)) + bytes(payload)


def fields(buffer):
    """Yields `(field number, wire type, value)` for each field of a message.

    Varints come as ints, fixed-size fields as their raw bytes, and
    length-delimited fields as `bytes`.
    """
    buffer = memoryview(buffer)
    pos = 0
    while pos < len(buffer):
        key, pos = _read_varint(buffer, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _read_varint(buffer, pos)
        elif wire == 1:
            value, pos = bytes(buffer[pos:pos + 8]), pos + 8
        elif wire == 2:
            size, pos = _read_varint(buffer, pos)
            value, pos = bytes(buffer[pos:pos + size]), pos + size
        elif wire == 5:
            value, pos = bytes(buffer[pos:pos + 4]), pos + 4
        else:
            raise ValueError(f"Unsupported protobuf wire type {wire} (field {number}).")
        if pos > len(buffer):
            raise ValueError(f"A protobuf message ends inside field {number}.")
        yield number, wire, value


def _map_entries(entries):
    """`{key: value bytes}` of the serialized entries of a `map<string, M>`."""
    result = {}
    for entry in entries:
        key, value = "", b""
        for number, _, item in fields(entry):
            if number == 1:
                key = item.decode("utf-8")
            elif number == 2:
                value = item
        result[key] = value
    return result


def _grouped(buffer):
    grouped = {}
    for number, wire, value in fields(buffer):
        grouped.setdefault(number, []).append((wire, value))
    return grouped


# ----------------------------------------------------------------------
# PredictionLog (TF Serving's warm-up records).
# ----------------------------------------------------------------------
def prediction_log(model_name, signature_name, tensors):
    """Serializes a `PredictionLog` holding one `PredictRequest`.

    Args:
        model_name: `model_spec.name` (TF Serving ignores it in warm-up).
        signature_name: `model_spec.signature_name`.
        tensors: `{input name: serialized TensorProto bytes}`.

    Returns:
        The serialized `tensorflow.serving.PredictionLog`.
    """
    spec = message_field(1, model_name) + message_field(3, signature_name)
    inputs = b"".join(
        message_field(2, message_field(1, name) + message_field(2, tensor))
        for name, tensor in sorted(tensors.items())
    )
    request = message_field(1, spec) + inputs
    return message_field(6, message_field(1, request))


def parse_prediction_log(data):
    """Reads a serialized `PredictionLog` written by `prediction_log`.

    Returns:
        `(model_name, signature_name, {input name: TensorProto bytes})`.
    """
    logs = [v for n, w, v in fields(data) if n == 6 and w == 2]
    if not logs:
        raise ValueError("The PredictionLog holds no predict_log (field 6).")
    requests = [v for n, w, v in fields(logs[-1]) if n == 1 and w == 2]
    if not requests:
        raise ValueError("The PredictLog holds no request (field 1).")
    request = _grouped(requests[-1])
    name = signature = ""
    for _, spec in request.get(1, []):
        for number, _, value in fields(spec):
            if number == 1:
                name = value.decode("utf-8")
            elif number == 3:
                signature = value.decode("utf-8")
    inputs = _map_entries(value for _, value in request.get(2, []))
    return name, signature or "serving_default", inputs


# ----------------------------------------------------------------------
# TensorProto -> numpy.
# ----------------------------------------------------------------------
def _shape(buffer):
    """`[sizes]` of a `TensorShapeProto` (-1 unknown), or `None` (unknown rank)."""
    dims = []
    for number, _, value in fields(buffer):
        if number == 3 and value:
            return None
        if number == 2:
            size = 0
            for dim_number, dim_wire, dim_value in fields(value):
                if dim_number == 1 and dim_wire == 0:
                    size = _signed(dim_value)
            dims.append(size)
    return dims


def _numbers(entries, kind):
    """The values of a repeated scalar field, packed or not."""
    values = []
    for wire, value in entries:
        if kind in "fd":
            width = 4 if kind == "f" else 8
            values.extend(struct.unpack(f"<{len(value) // width}{kind}", value))
        elif wire == 2:  # A packed run of varints.
            pos = 0
            while pos < len(value):
                item, pos = _read_varint(value, pos)
                values.append(_signed(item))
        else:
            values.append(_signed(value))
    return values


def tensor_to_numpy(data):
    """Decodes a serialized `TensorProto` into a numpy array.

    Follows `tf.make_ndarray`: `tensor_content` holds the raw little-endian
    values; otherwise the typed value field does, and fewer values than the
    shape needs are padded with the last one. Strings come as an object
    array of `bytes`.

    Args:
        data: The serialized `TensorProto`.

    Returns:
        A numpy array.
    """
    grouped = _grouped(data)
    dtype = DTYPE_NAMES.get(grouped.get(1, [(0, 0)])[-1][1], "invalid")
    if dtype not in NUMPY_DTYPES:
        raise ValueError(f"Cannot decode a TensorProto of dtype {dtype!r}.")
    shape = _shape(grouped[2][-1][1]) if 2 in grouped else []
    if shape is None or any(size < 0 for size in shape):
        raise ValueError(f"A TensorProto must have a known shape. Received: {shape}")
    size = int(np.prod(shape, dtype=np.int64))
    content = b"".join(value for _, value in grouped.get(4, []))
    if dtype == "string":
        values = [value for _, value in grouped.get(8, [])]
    elif content:
        array = np.frombuffer(content, dtype=np.dtype(NUMPY_DTYPES[dtype]).newbyteorder("<"))
        return array.astype(NUMPY_DTYPES[dtype]).reshape(shape)
    else:
        number, kind = _VALUE_FIELDS[dtype]
        values = _numbers(grouped.get(number, []), kind)
        if dtype == "float16":
            values = np.array(values, np.uint16).view(np.float16).tolist()
    if len(values) > size:
        raise ValueError(f"A TensorProto of shape {shape} holds {len(values)} values.")
    if values and len(values) < size:
        values = values + [values[-1]] * (size - len(values))
    array = np.empty(size, dtype=NUMPY_DTYPES[dtype])
    if values:
        array[:] = values
    elif dtype == "string":
        array[:] = [b""] * size
    else:
        array[:] = 0
    return array.reshape(shape)


# ----------------------------------------------------------------------
# SavedModel signatures.
# ----------------------------------------------------------------------
def _tensor_info(buffer):
    info = {"dtype": "invalid", "shape": None}
    for number, _, value in fields(buffer):
        if number == 2:
            info["dtype"] = DTYPE_NAMES.get(value, f"dtype-{value}")
        elif number == 3:
            info["shape"] = _shape(value)
        elif number in (4, 5):
            info["composite"] = True
    return info


def signature_defs(saved_model, tag="serve"):
    """The signatures of a serialized `SavedModel` (`saved_model.pb`).

    Args:
        saved_model: The bytes of `saved_model.pb`.
        tag: The meta graph to read (`serve`, what TF Serving loads).

    Returns:
        `{signature: {"method_name": str, "inputs": {name: {"dtype": str,
        "shape": [int, -1 unknown] or None}}, "outputs": {...}}}`, sorted by
        name, including TensorFlow's internal `__saved_model_init_op`.
    """
    graphs = [v for n, w, v in fields(saved_model) if n == 2 and w == 2]
    for graph in graphs:
        grouped = _grouped(graph)
        tags = [
            value.decode("utf-8")
            for _, info in grouped.get(1, [])
            for number, _, value in fields(info)
            if number == 4
        ]
        if tag in tags or len(graphs) == 1:
            break
    else:
        raise ValueError(f"The SavedModel has no meta graph tagged {tag!r}.")
    result = {}
    for name, body in sorted(_map_entries(v for _, v in grouped.get(5, [])).items()):
        signature = _grouped(body)
        result[name] = {
            "method_name": b"".join(v for _, v in signature.get(3, [])).decode("utf-8"),
            "inputs": {
                k: _tensor_info(v)
                for k, v in sorted(_map_entries(x for _, x in signature.get(1, [])).items())
            },
            "outputs": {
                k: _tensor_info(v)
                for k, v in sorted(_map_entries(x for _, x in signature.get(2, [])).items())
            },
        }
    return result


# ----------------------------------------------------------------------
# TFRecord files.
# ----------------------------------------------------------------------
def _crc32c_table():
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC32C = _crc32c_table()


def masked_crc32c(data):
    """TFRecord's checksum: CRC-32C (Castagnoli), rotated and offset."""
    crc = 0xFFFFFFFF
    for byte in bytes(data):
        crc = _CRC32C[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    crc ^= 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def read_tfrecords(path):
    """Reads the records of an uncompressed TFRecord file, checking each CRC.

    Args:
        path: The file.

    Returns:
        A list of `bytes`, one per record.
    """
    with open(path, "rb") as f:
        data = f.read()
    records, pos = [], 0
    while pos < len(data):
        header = data[pos:pos + 12]
        if len(header) < 12:
            raise ValueError(f"{path} is truncated: a record header ends at byte {len(data)}.")
        (length,), (length_crc,) = struct.unpack("<Q", header[:8]), struct.unpack("<I", header[8:])
        record = data[pos + 12:pos + 12 + length]
        footer = data[pos + 12 + length:pos + 16 + length]
        if masked_crc32c(header[:8]) != length_crc or len(footer) < 4:
            raise ValueError(f"{path} is damaged or truncated at byte {pos}.")
        if masked_crc32c(record) != struct.unpack("<I", footer)[0]:
            raise ValueError(f"{path} is damaged: record {len(records)} fails its CRC.")
        records.append(record)
        pos += 16 + length
    return records
