"""tf.distribute glue: which strategy a run uses and which process writes.

Only the chief writes (task `chief`, or worker 0 where the cluster has no
chief), as Keras' and TensorFlow's own multi-worker conventions do. Under
`MirroredStrategy` and the default strategy the one process is the chief.
"""

from __future__ import annotations

import json
import os

from monitor.errors import MonitorError

STRATEGIES = ("default", "mirrored", "multiworker")


def tf_config_task(environ=os.environ) -> tuple[str, int, bool] | None:
    """`(task_type, task_index, cluster_has_chief)` from `TF_CONFIG`, or None if unset.

    Read without TensorFlow, so train.py can check a multi-worker run before it
    loads. Raises MonitorError for a TF_CONFIG that is not what TensorFlow reads.
    """
    raw = environ.get("TF_CONFIG")
    if not raw:
        return None
    try:
        config = json.loads(raw)
        cluster, task = config["cluster"], config["task"]
        task_type, index = str(task["type"]), int(task["index"])
        members = cluster[task_type]
    except (ValueError, KeyError, TypeError) as err:
        raise MonitorError(
            f"TF_CONFIG is not valid ({type(err).__name__}: {err}): it must be JSON like "
            '{"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", "index": 0}}'
        ) from None
    if not 0 <= index < len(members):
        raise MonitorError(f"TF_CONFIG task index {index} is not in its cluster's {task_type!r} list")
    return task_type, index, "chief" in cluster


def strategy_is_chief(strategy) -> bool:
    """Whether this process writes under `strategy` (True outside multi-worker training)."""
    extended = getattr(strategy, "extended", None)
    should = getattr(extended, "should_save_summary", True)
    return bool(should)


def model_strategy(model):
    """The strategy `model` was built under (the current one for an object without one)."""
    import tensorflow as tf

    return getattr(model, "distribute_strategy", None) or tf.distribute.get_strategy()


def is_default_strategy(strategy) -> bool:
    """Whether `strategy` is TensorFlow's default one (no replicas: any thread may run its steps)."""
    return "Default" in type(strategy).__name__


def model_is_chief(model) -> bool:
    """`strategy_is_chief` of the strategy `model` was built under."""
    return strategy_is_chief(model_strategy(model))


def make_strategy(name: str):
    """The `tf.distribute` strategy for train.py's `--strategy`.

    `mirrored`: every local GPU, else every logical CPU device (one unless the
    process split its CPU with `tf.config.set_logical_device_configuration`,
    as `bench/distribute.py` does). `multiworker`: the cluster
    in `TF_CONFIG`. `default`: TensorFlow's default (no) strategy.
    """
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise MonitorError(f"unknown strategy {name!r}: choose one of {', '.join(STRATEGIES)}")


def enable_keras_multiworker(model) -> None:
    """Let Keras 3's `fit`/`evaluate` run `model` under MultiWorkerMirroredStrategy.

    Keras 3 (3.15 included) fails there before the first step: keras-team/keras#20585.
    Two places average values across workers the wrong way: `_maybe_symbolic_build`
    reduces the first *input batch* across workers only to learn its shapes, and
    `reduce_per_replica` asks for a cross-worker MEAN along axis 0 of *scalar*
    logs. This takes one local replica's batch for the shapes (on `model` only),
    and averages scalar logs over replicas with `axis=None` (Keras' TensorFlow
    trainer, once per process). Nothing changes outside multi-worker training.
    """
    import tensorflow as tf
    from keras.src import tree
    from keras.src.backend.tensorflow import trainer

    strategy = model.distribute_strategy
    if not trainer._collective_all_reduce_multi_worker(strategy):
        return

    def local_batch(value):
        if isinstance(value, tf.distribute.DistributedValues):
            return strategy.experimental_local_results(value)[0]
        return value

    def maybe_symbolic_build(iterator=None, data_batch=None):
        if iterator is not None:
            for _, _, it in iterator:
                data_batch = tree.map_structure(local_batch, next(it))
                break
        with strategy.scope():
            model._symbolic_build(data_batch=data_batch)

    model._maybe_symbolic_build = maybe_symbolic_build
    if getattr(trainer.reduce_per_replica, "_monitor_fixed", False):
        return
    original = trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and trainer._collective_all_reduce_multi_worker(strategy):
            def reduce_one(v):
                first = v.values[0] if trainer._is_per_replica_instance(v) else v
                if tf.is_tensor(first) and first.shape.rank == 0:
                    return strategy.reduce("MEAN", v, axis=None)
                return original(v, strategy, reduction)

            return tree.map_structure(reduce_one, values)
        return original(values, strategy, reduction)

    reduce_per_replica._monitor_fixed = True
    trainer.reduce_per_replica = reduce_per_replica
