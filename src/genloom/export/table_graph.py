"""A table codec's decode as ONNX nodes: encoded rows in, one output per column out (numbers as float64 with NaN
where missing, or int64 where a column of whole numbers never was; datetimes as seconds since 1970 UTC; categories and
text identifiers as strings; numeric identifiers as int64), so that a table generator runs where neither genloom nor
PyTorch is installed.

Written node by node with onnx.helper: no converter knows a fitted genloom codec (skl2onnx converts scikit-learn's
own transformers; the modes, quantiles, bounds, rare categories and identifiers here are the codec's). The arithmetic
is TabularCodec.decode's, step for step (the quantile transform's normal CDF to within an ulp; the rare categories'
draws come in as float32); tests/export/test_table_graph.py holds the two to agreement."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import onnx
import pandas as pd
from onnx import TensorProto, helper, numpy_helper

from ..data.table_codec import TabularCodec
from ..data.table_columns import OTHER, CategoricalColumn, IdentifierColumn, NumericalColumn
from ..data.normalisers import Moments, Modes, Quantiles, StandardNormaliser

OPSET = 20  # StringConcat
ROWS, DRAWS, FIRST = "rows", "draws", "first_row"  # the decode graph's inputs
NOISE, UNIFORMS = "noise", "uniforms"  # a generator's inputs (and FIRST)
MADE_ROWS, MADE_DRAWS = "table/rows", "table/draws"  # inside a generator: its encoded rows, the decode's draws
INNER_PREFIXES = ("table/", "/", "onnx::")  # the values inside: ours (Nodes), and torch's exporter's
MAX_DIGITS = 19  # an int64 has at most 19 digits


class Nodes:
    """Nodes appended to an ONNX graph, each output under a fresh name (`table/N`) so that none meets the
    graph's own names (or a column's: name_clash refuses those)."""

    def __init__(self, graph: onnx.GraphProto):
        self.graph, self.count = graph, 0

    def fresh(self) -> str:
        self.count += 1
        return f"table/{self.count}"

    def op(self, op_type: str, *inputs: str, **attributes: Any) -> str:
        output = self.fresh()
        self.graph.node.append(helper.make_node(op_type, list(inputs), [output], **attributes))
        return output

    def constant(self, value: Any, dtype: Any = None) -> str:
        name = self.fresh()
        array = np.array(value, dtype=dtype if dtype is not None else (object if _is_text(value) else None))
        self.graph.initializer.append(numpy_helper.from_array(array, name))
        return name

    def columns(self, block: str, start: int, stop: int) -> str:
        """block[:, start:stop]."""
        return self.op("Slice", block, self.constant([start], np.int64), self.constant([stop], np.int64),
                       self.constant([1], np.int64))

    def column(self, block: str, index: int) -> str:
        """block[:, index] as a vector."""
        return self.op("Squeeze", self.columns(block, index, index + 1), self.constant([1], np.int64))

    def argmax(self, block: str) -> str:
        return self.op("ArgMax", block, axis=1, keepdims=0)


def _is_text(value: Any) -> bool:
    """Whether a constant holds text: ONNX stores it as a string tensor, which numpy holds as objects."""
    return isinstance(value, str) or (isinstance(value, list) and any(isinstance(v, str) for v in value))


def modes_values(nodes: Nodes, state: Modes, block: str) -> str:
    """ModeNormaliser.decode: the offset within the chosen mode's +-4 sigma, in float64."""
    alpha = nodes.op("Cast", nodes.op("Clip", nodes.column(block, 0), nodes.constant(np.float32(-1)),
                                      nodes.constant(np.float32(1))), to=TensorProto.DOUBLE)
    mode = nodes.argmax(nodes.columns(block, 1, 1 + len(state.means)))
    scale = nodes.op("Gather", nodes.constant(4 * np.array(state.stds)), mode, axis=0)
    return nodes.op("Add", nodes.op("Mul", alpha, scale), nodes.op("Gather", nodes.constant(state.means), mode, axis=0))


def quantile_values(nodes: Nodes, state: Quantiles, block: str) -> str:
    """QuantileNormaliser.decode: the normal's CDF in float32 (ONNX Runtime has no float64 Erf; it is within an ulp
    of scipy's ndtr of float32), then linear interpolation between evenly spaced quantiles in float64."""
    quantiles = np.array(state.quantiles if len(state.quantiles) > 1 else state.quantiles * 2)
    z = nodes.op("Mul", nodes.op("Clip", nodes.column(block, 0), nodes.constant(np.float32(-1)),
                                 nodes.constant(np.float32(1))), nodes.constant(np.float32(4 / np.sqrt(2))))
    cdf = nodes.op("Mul", nodes.op("Add", nodes.op("Erf", z), nodes.constant(np.float32(1))),
                   nodes.constant(np.float32(0.5)))
    position = nodes.op("Mul", nodes.op("Cast", cdf, to=TensorProto.DOUBLE), nodes.constant(float(len(quantiles) - 1)))
    last = nodes.constant(float(len(quantiles) - 2))
    below = nodes.op("Clip", nodes.op("Floor", position), nodes.constant(0.0), last)
    index = nodes.op("Cast", below, to=TensorProto.INT64)
    low = nodes.op("Gather", nodes.constant(quantiles), index, axis=0)
    high = nodes.op("Gather", nodes.constant(quantiles), nodes.op("Add", index, nodes.constant(np.int64(1))), axis=0)
    return nodes.op("Add", low, nodes.op("Mul", nodes.op("Sub", position, below), nodes.op("Sub", high, low)))


def standard_values(nodes: Nodes, state: Moments, block: str) -> str:
    """StandardNormaliser.decode, in float64."""
    scaled = nodes.op("Cast", nodes.column(block, 0), to=TensorProto.DOUBLE)
    return nodes.op("Add", nodes.op("Mul", scaled, nodes.constant(StandardNormaliser.SCALE * state.std)),
                    nodes.constant(state.mean))


NORMALISER_GRAPHS: dict[str, Callable[[Nodes, Any, str], str]] = {
    "modes": modes_values, "quantile": quantile_values, "standard": standard_values}


class Decoding:
    """What a column's nodes read: its block of the encoded rows, and the graph's draws and first row position."""

    def __init__(self, nodes: Nodes, rows: str, draws: str | None, first: str | None):
        self.nodes, self.rows, self.draws, self.first = nodes, rows, draws, first
        self.next_draw = 0

    def draw(self) -> str:
        """The next column of the draws (N,), as float64."""
        index, self.next_draw = self.next_draw, self.next_draw + 1
        return self.nodes.op("Cast", self.nodes.column(self.draws, index), to=TensorProto.DOUBLE)


def number_values(decoding: Decoding, column: NumericalColumn, block: str) -> str:
    """NumericalColumn.to_numbers: the normaliser's value within the training bounds, rounded for integers,
    NaN where the missing flag is set (float64)."""
    nodes, state = decoding.nodes, column.state
    x = nodes.op("Clip", NORMALISER_GRAPHS[state.numbers](nodes, state.transform, block),
                 nodes.constant(float(state.min)), nodes.constant(float(state.max)))
    if state.integer:
        x = nodes.op("Round", x)  # half to even, as numpy's round
    if not state.missing:
        return x
    width = sum(span.width for span in column.spans)
    missing = nodes.op("Equal", nodes.argmax(nodes.columns(block, width - 2, width)), nodes.constant(np.int64(1)))
    return nodes.op("Where", missing, nodes.constant(np.nan), x)


def number_output(decoding: Decoding, column: NumericalColumn, block: str) -> tuple[str, int]:
    """The column's numbers: int64 where the training column held whole numbers in an integer dtype and none was
    missing (the codec's dtype), else float64."""
    state, x = column.state, number_values(decoding, column, block)
    if state.integer and not state.missing and pd.api.types.is_integer_dtype(pd.api.types.pandas_dtype(state.dtype)):
        return decoding.nodes.op("Cast", x, to=TensorProto.INT64), TensorProto.INT64
    return x, TensorProto.DOUBLE


def date_output(decoding: Decoding, column: NumericalColumn, block: str) -> tuple[str, int]:
    """DatetimeColumn.decode up to the timestamps: seconds since 1970 (UTC), whole in the column's unit."""
    nodes = decoding.nodes
    unit = nodes.constant(float(column.state.unit))
    seconds = number_values(decoding, column, block)
    return nodes.op("Mul", nodes.op("Round", nodes.op("Div", seconds, unit)), unit), TensorProto.DOUBLE


def text_of(value: Any) -> str:
    """A category as the graph's strings hold it: its text, and "" for a missing value."""
    return "" if value is None else str(value)


def category_output(decoding: Decoding, column: CategoricalColumn, block: str) -> tuple[str, int]:
    """CategoricalColumn.decode: the arg-max slot's category; the shared slot of the rare ones gives a rare category
    drawn by its frequency at the row's draw."""
    nodes, state = decoding.nodes, column.state
    slot = nodes.argmax(block)
    values = nodes.op("Gather", nodes.constant([text_of(v) for v in column.slots]), slot, axis=0)
    if not state.rare:
        return values, TensorProto.STRING
    cumulative = np.cumsum(state.rare_weights)
    passed = nodes.op("LessOrEqual", nodes.constant((cumulative / cumulative[-1])[None, :]),
                      nodes.op("Unsqueeze", decoding.draw(), nodes.constant([1], np.int64)))
    count = nodes.op("ReduceSum", nodes.op("Cast", passed, to=TensorProto.INT64), nodes.constant([1], np.int64),
                     keepdims=0)
    drawn = nodes.op("Min", count, nodes.constant(np.int64(len(cumulative) - 1)))
    rare = nodes.op("Gather", nodes.constant([text_of(v) for v in state.rare]), drawn, axis=0)
    grouped = nodes.op("Equal", slot, nodes.constant(np.int64(column.slots.index(OTHER))))
    return nodes.op("Where", grouped, rare, values), TensorProto.STRING


def identifier_output(decoding: Decoding, column: IdentifierColumn, block: str) -> tuple[str, int]:
    """IdentifierColumn.decode: new ids numbered on from the training ids by row position, written with the
    training ids' prefix and at least their digits."""
    nodes, state = decoding.nodes, column.state
    count = nodes.op("Gather", nodes.op("Shape", decoding.rows), nodes.constant(np.int64(0)), axis=0)
    start = nodes.op("Add", decoding.first, nodes.constant(np.int64(state.start)))
    ids = nodes.op("Range", start, nodes.op("Add", start, count), nodes.constant(np.int64(1)))
    if state.numeric:
        return ids, TensorProto.INT64
    powers = nodes.constant(10 ** np.arange(1, MAX_DIGITS, dtype=np.int64)[None, :])
    wider = nodes.op("GreaterOrEqual", nodes.op("Unsqueeze", ids, nodes.constant([1], np.int64)), powers)
    digits = nodes.op("Add", nodes.op("ReduceSum", nodes.op("Cast", wider, to=TensorProto.INT64),
                                      nodes.constant([1], np.int64), keepdims=0), nodes.constant(np.int64(1)))
    zeros = nodes.op("Max", nodes.op("Sub", nodes.constant(np.int64(state.digits)), digits),
                     nodes.constant(np.int64(0)))
    padding = nodes.op("Gather", nodes.constant(["0" * k for k in range(max(state.digits, 1))]), zeros, axis=0)
    number = nodes.op("StringConcat", padding, nodes.op("Cast", ids, to=TensorProto.STRING))
    return nodes.op("StringConcat", nodes.constant(state.prefix), number), TensorProto.STRING


COLUMN_GRAPHS: dict[str, Callable[[Decoding, Any, str], tuple[str, int]]] = {
    "numerical": number_output, "datetime": date_output, "categorical": category_output,
    "boolean": category_output, "identifier": identifier_output}


def name_clash(codec: TabularCodec) -> str | None:
    """Why the table graphs cannot name their outputs as the columns (a graph's values have one name each), or
    None: a column named as a graph input, or as the names of values inside the graphs."""
    inputs = (ROWS, DRAWS, FIRST, NOISE, UNIFORMS)
    for column in codec.columns:
        if column.name in inputs or column.name.startswith(INNER_PREFIXES):
            return (f"the column {column.name!r} takes a name the graphs use (the inputs {', '.join(inputs)}, or names "
                    f"that begin {', '.join(INNER_PREFIXES)}); rename it in the data to export them")
    return None


def draws_needed(codec: TabularCodec) -> int:
    """Uniform draws per row the decode takes: one per categorical column with rare categories."""
    return sum(isinstance(column, CategoricalColumn) and bool(column.state.rare) for column in codec.columns)


def needs_first_row(codec: TabularCodec) -> bool:
    """Whether the decode numbers new identifiers, which it does from the first row's position (an input)."""
    return any(isinstance(column, IdentifierColumn) for column in codec.columns)


def add_decode(graph: onnx.GraphProto, codec: TabularCodec, rows: str, draws: str | None = None,
               first: str | None = None) -> None:
    """Append the codec's decode of `rows` (N, width) float32 to `graph`, each column a graph output named as the
    column; `draws` (N, draws_needed) float32 in [0, 1) and `first` (the first row's position, an int64 scalar)
    where the codec needs them."""
    decoding, start, outputs = Decoding(Nodes(graph), rows, draws, first), 0, {}
    for column in codec.columns:
        width = sum(span.width for span in column.spans)
        block = decoding.nodes.columns(rows, start, start + width) if width else rows
        output, dtype = COLUMN_GRAPHS[column.kind](decoding, column, block)
        graph.node.append(helper.make_node("Identity", [output], [column.name]))
        outputs[column.name] = helper.make_tensor_value_info(column.name, dtype, ["rows"])
        start += width
    graph.output.extend(outputs[name] for name in codec.order or outputs)  # in the table's order, as decode's


def decode_graph(codec: TabularCodec) -> onnx.ModelProto:
    """The codec's decode alone: encoded rows in (`rows`; `draws` and `first_row` where needed), columns out."""
    inputs = [helper.make_tensor_value_info(ROWS, TensorProto.FLOAT, ["rows", codec.layout.shape[0]])]
    if draws_needed(codec):
        inputs.append(helper.make_tensor_value_info(DRAWS, TensorProto.FLOAT, ["rows", draws_needed(codec)]))
    if needs_first_row(codec):
        inputs.append(helper.make_tensor_value_info(FIRST, TensorProto.INT64, []))
    graph = helper.make_graph([], "genloom-table-decode", inputs, [])
    add_decode(graph, codec, ROWS, DRAWS if draws_needed(codec) else None, FIRST if needs_first_row(codec) else None)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    onnx.checker.check_model(model)
    return model


def decode_outputs(path: Path, codec: TabularCodec) -> None:
    """Rewrite the graph at `path`, whose outputs are encoded rows (MADE_ROWS) and the decode's uniforms
    (MADE_DRAWS), so that it ends in the codec's columns instead (taking `first_row` as a further input where the codec
    needs it)."""
    model = onnx.load(str(path))
    del model.graph.output[:]
    first = FIRST if needs_first_row(codec) else None
    if first:
        model.graph.input.append(helper.make_tensor_value_info(first, TensorProto.INT64, []))
    add_decode(model.graph, codec, MADE_ROWS, MADE_DRAWS, first)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
