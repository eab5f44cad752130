"""Server-side batching for the local server (tf_gadn.serve), after TF Serving's BatchingSession: concurrent requests
to the same signature of the same version are queued, a worker collects up to `max_batch_size` rows or waits
`batch_timeout_micros`, runs one call on the inputs concatenated along the batch dimension and splits the outputs
back. One request's bad input must not fail its neighbours, so a failed batch is re-run one request at a time.

`batching.config` is TF Serving's text-format BatchingParameters (`max_batch_size { value: 8 }` ...); only the fields
below are used. That proto is not in the tensorflow-serving-api wheel, so its flat wrapper fields are read directly.
"""
from __future__ import annotations

import dataclasses
import queue
import re
import threading
import time
from concurrent.futures import Future

import grpc
import numpy as np

from tf_gadn.serving.models import ServingError, invalid

IDLE_EXIT_SECONDS = 5.0


@dataclasses.dataclass(frozen=True)
class BatchingParameters:
    max_batch_size: int = 32
    batch_timeout_micros: int = 2000
    max_enqueued_batches: int = 100


def read_batching_config(path: str) -> BatchingParameters:
    with open(path, encoding="utf-8") as f:
        text = re.sub(r"#.*", "", f.read())
    values = {name: int(value) for name, value in re.findall(r"(\w+)\s*\{\s*value\s*:\s*(\d+)\s*\}", text)}
    known = {f.name for f in dataclasses.fields(BatchingParameters)}
    return BatchingParameters(**{k: v for k, v in values.items() if k in known})


def rows(inputs: dict) -> int:
    """The shared 0th dimension of a request's inputs (TF Serving's batching demands one)."""
    sizes = {v.shape[0] if v.ndim else None for v in inputs.values()}
    if None in sizes:
        raise invalid("Batching Run() input tensors must have at least one dimension")
    if len(sizes) != 1:
        raise invalid("Batching Run() input tensors must have equal 0th-dimension size")
    return sizes.pop()


@dataclasses.dataclass
class _Task:
    inputs: dict
    rows: int
    future: Future

    def shape_key(self):
        """Requests batch together only if every input agrees beyond the batch dimension."""
        return tuple((k, v.shape[1:], v.dtype.str) for k, v in sorted(self.inputs.items()))


class Batcher:
    """One queue and one worker thread per (model, version, signature) in use; workers exit when idle."""

    def __init__(self, params: BatchingParameters):
        self.params = params
        self.queues: dict = {}
        self.lock = threading.Lock()
        self.batches = self.rows = 0   # executed batches and their rows (monitoring endpoint, tests, benchmarks)

    def run(self, key, function, inputs: dict) -> dict:
        task = _Task(inputs, rows(inputs), Future())
        with self.lock:
            if key not in self.queues:
                self.queues[key] = queue.Queue(self.params.max_enqueued_batches * self.params.max_batch_size)
                threading.Thread(target=self._work, args=(key, function), daemon=True, name=f"batch-{key}").start()
            try:
                self.queues[key].put_nowait(task)
            except queue.Full:
                raise ServingError(grpc.StatusCode.UNAVAILABLE, "The batch scheduling queue to which this task was "
                                                                "submitted is full") from None
        return task.future.result()

    def _work(self, key, function) -> None:
        tasks = self.queues[key]
        held = None
        while True:
            first = held
            held = None
            if first is None:
                try:
                    first = tasks.get(timeout=IDLE_EXIT_SECONDS)
                except queue.Empty:
                    with self.lock:
                        if tasks.empty():
                            del self.queues[key]
                            return
                    continue
            batch, total = [first], first.rows
            deadline = time.monotonic() + self.params.batch_timeout_micros / 1e6
            while total < self.params.max_batch_size:
                try:
                    task = tasks.get(timeout=max(deadline - time.monotonic(), 0))
                except queue.Empty:
                    break
                if total + task.rows > self.params.max_batch_size:
                    held = task   # opens the next batch
                    break
                batch.append(task)
                total += task.rows
            groups: dict = {}
            for task in batch:
                groups.setdefault(task.shape_key(), []).append(task)
            for group in groups.values():
                self._execute(function, group)

    def _execute(self, function, group: list) -> None:
        try:
            inputs = {k: np.concatenate([t.inputs[k] for t in group]) for k in group[0].inputs}
            outputs = function(inputs)
            with self.lock:
                self.batches, self.rows = self.batches + 1, self.rows + sum(t.rows for t in group)
        except ServingError as error:
            if len(group) > 1:
                for task in group:
                    self._execute(function, [task])
            else:
                group[0].future.set_exception(error)
            return
        except Exception as error:  # noqa: BLE001 - the caller's thread reports it as INTERNAL
            for task in group:
                task.future.set_exception(error)
            return
        start = 0
        for task in group:
            task.future.set_result({k: v[start:start + task.rows] for k, v in outputs.items()})
            start += task.rows
