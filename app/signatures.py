"""A SavedModel's signatures, run as one graph in a TensorFlow session.

The request path calls the query tower once per micro-batch. Called eagerly
(`loaded.signatures[name](**tensors)`), each call resolves the function's captured
variables in Python, converts every input to an eager tensor and every output back, and
gives the interpreter lock up about 35 times: each time, the model thread waits for the
event loop to hand it back. Loaded into its own graph and run through a session callable
(`Session.make_callable`), the same signature is one C++ call: the numpy columns go in,
numpy arrays come out, and the lock is given up 3 times. The graph is the SavedModel's
own, so the outputs are the same numbers.
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
        self.output_sizes = {name: outputs[name].shape[-1] for name in self._outputs}
        self._run = session.make_callable(
            [outputs[name] for name in self._outputs], [inputs[name] for name in self._inputs]
        )

    def __call__(self, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        values = self._run(*[columns[name] for name in self._inputs])
        return dict(zip(self._outputs, values, strict=True))


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
