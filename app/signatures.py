"""A SavedModel's signatures, run as one graph in a TensorFlow session.

The request path calls the query tower once per micro-batch. Called eagerly
(`loaded.signatures[name](**tensors)`), each call resolves the function's captured
variables in Python, converts every input to an eager tensor and every output back, and
gives the interpreter lock up about 35 times: each time, the model thread waits for the
event loop to hand it back. Loaded into its own graph, the same signature is one C++
call: the numpy columns go in, numpy arrays come out. The graph is the SavedModel's own,
so the outputs are the same numbers.

The call is the session's C++ callable (`Session::MakeCallable`, the handle tf-keras's
graph-mode functions run through), not `Session.make_callable`: given a feed list, that
one runs `Session.run`'s Python path on every call (fetch and feed mappers, the graph
check), ~0.4 ms of the model thread's CPU for a batch of 17 of a ~1 ms call.
"""

from pathlib import Path
from typing import Any

import numpy as np


class Signature:
    """One signature: call it with numpy columns by input name, get numpy arrays by output
    name. Thread-safe (a session may be run from several threads)."""

    def __init__(self, session: Any, inputs: dict[str, Any], outputs: dict[str, Any]):
        self._inputs = sorted(inputs)
        self._outputs = sorted(outputs)
        self._dtypes = [inputs[name].dtype.as_numpy_dtype for name in self._inputs]
        self.output_sizes = {name: outputs[name].shape[-1] for name in self._outputs}
        self._run = _callable(
            session, [inputs[name] for name in self._inputs], [outputs[n] for n in self._outputs]
        )

    def __call__(self, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        # The C++ callable takes each array as it is: its dtype must be the placeholder's
        # (no copy when it already is).
        feeds = [
            np.asarray(columns[name], dtype)
            for name, dtype in zip(self._inputs, self._dtypes, strict=True)
        ]
        values = self._run(*feeds)
        return dict(zip(self._outputs, values, strict=True))


def _callable(session: Any, feeds: list[Any], fetches: list[Any]) -> Any:
    """The session's C++ callable for these feeds and fetches; `make_callable` (public,
    slower) where a TensorFlow no longer has it."""
    make = getattr(session, "_make_callable_from_options", None)
    if make is None:
        return session.make_callable(fetches, feeds)
    from tensorflow.core.protobuf import config_pb2

    options = config_pb2.CallableOptions(
        feed=[tensor.name for tensor in feeds], fetch=[tensor.name for tensor in fetches]
    )
    return make(options)


def load_signatures(path: Path) -> dict[str, Signature]:
    """Every signature of the SavedModel at `path`, in one graph and one session sized like
    TensorFlow's own thread pools (the serving settings set those at start)."""
    import tensorflow as tf  # heavy: imported when a version is loaded, not with the app

    graph = tf.Graph()
    with graph.as_default():
        loaded = tf.saved_model.load(str(path))
        ends = {}
        for name, function in loaded.signatures.items():
            spec = function.structured_input_signature[1]
            inputs = {key: tf.compat.v1.placeholder(s.dtype, s.shape) for key, s in spec.items()}
            ends[name] = (inputs, function(**inputs))
        initialise = [
            tf.compat.v1.global_variables_initializer(),  # restores the saved values
            tf.compat.v1.tables_initializer(),  # the lookup layers' vocabularies
        ]
    graph.finalize()  # nothing may add to it from here: runs are then safe in parallel
    session = tf.compat.v1.Session(graph=graph, config=_config(tf))
    session.run(initialise)
    return {name: Signature(session, *ends[name]) for name in ends}


def _config(tf: Any) -> Any:
    threads = tf.config.threading
    return tf.compat.v1.ConfigProto(
        intra_op_parallelism_threads=threads.get_intra_op_parallelism_threads(),
        inter_op_parallelism_threads=threads.get_inter_op_parallelism_threads(),
        allow_soft_placement=True,
    )
