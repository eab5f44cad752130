"""Server-side batching for the local server (tf_gadn.serve), after TF Serving's BatchingSession
(tensorflow_serving/batching/batching_session.cc) and its shared batch scheduler: concurrent requests to the same
signature of the same version are queued, a worker collects up to `max_batch_size` rows or waits
`batch_timeout_micros`, runs one call on the inputs concatenated along the batch dimension and splits the outputs back.

Two modes:
- `strict` (the default, what tensorflow_model_server does): a batch is whatever arrived, whatever its shapes. Tasks
  whose inputs differ beyond the batch dimension fail the *whole* batch with FAILED_PRECONDITION (padding is off), an
  error while running the batch is copied to every request in it, and a batch is padded up to the next of
  `allowed_batch_sizes` with copies of the last request's first row. What passes here passes there.
- `lenient` (a local extension, `--batching_mode=lenient`): requests are grouped by shape and a failed batch is re-run
  one request at a time, so a bad request fails only itself. Kinder, but it hides what the real server would do.

`batching.config` is TF Serving's text-format BatchingParameters (`max_batch_size { value: 8 }` ...); only the fields
below are used. That proto is not in the tensorflow-serving-api wheel, so its fields are read directly.
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
MODES = ("strict", "lenient")


@dataclasses.dataclass(frozen=True)
class BatchingParameters:
    max_batch_size: int = 32
    batch_timeout_micros: int = 2000
    max_enqueued_batches: int = 100
    allowed_batch_sizes: tuple = ()
    pad_variable_length_inputs: bool = False
    mode: str = "strict"

    def __post_init__(self):
        # the checks of TF Serving's ValidateBatchingParameters (batching_util / server_core)
        if self.mode not in MODES:
            raise ValueError(f"batching mode must be one of {MODES}, got {self.mode!r}")
        sizes = list(self.allowed_batch_sizes)
        if sizes:
            if any(b <= a for a, b in zip(sizes, sizes[1:])):
                raise ValueError("allowed_batch_sizes entries must be monotonically increasing")
            if sizes[-1] != self.max_batch_size:
                raise ValueError(
                    "Last entry in allowed_batch_sizes must match max_batch_size; last entry was "
                    f"{sizes[-1]}; expected {self.max_batch_size}"
                )
        if self.pad_variable_length_inputs:
            raise ValueError(
                "pad_variable_length_inputs is not supported: zero padding would become part of an image"
            )

    def padded_size(self, rows: int) -> int:
        """The smallest allowed batch size that holds `rows` (TF Serving's RoundToLowestAllowedBatchSize)."""
        return next((size for size in self.allowed_batch_sizes if size >= rows), rows)


# what serving/batching.config ships and each export writes as its batching_params.pbtxt
SHIPPED = BatchingParameters(
    max_batch_size=8,
    batch_timeout_micros=2000,
    max_enqueued_batches=100,
    allowed_batch_sizes=(1, 2, 4, 8),
)
PER_MODEL_FILE = (
    "batching_params.pbtxt"  # in a version directory (--enable_per_model_batching_parameters)
)


def parse_batching_config(text: str, mode: str = "strict") -> BatchingParameters:
    text = re.sub(r"#.*", "", text)
    values: dict = {
        name: int(value) for name, value in re.findall(r"(\w+)\s*\{\s*value\s*:\s*(\d+)\s*\}", text)
    }
    allowed = tuple(int(v) for v in re.findall(r"allowed_batch_sizes\s*:\s*(\d+)", text))
    pad = re.search(r"pad_variable_length_inputs\s*:\s*(\w+)", text)
    known = {f.name for f in dataclasses.fields(BatchingParameters)}
    values = {k: v for k, v in values.items() if k in known}
    return BatchingParameters(
        **values,
        allowed_batch_sizes=allowed,
        pad_variable_length_inputs=bool(pad and pad.group(1) == "true"),
        mode=mode,
    )


def read_batching_config(path: str, mode: str = "strict") -> BatchingParameters:
    with open(path, encoding="utf-8") as f:
        return parse_batching_config(f.read(), mode)


def batching_params_text(params: BatchingParameters) -> str:
    """A BatchingParameters text proto (a model's `batching_params.pbtxt`, read by tensorflow_model_server with
    --enable_per_model_batching_parameters from the version directory)."""
    lines = [
        f"max_batch_size {{ value: {params.max_batch_size} }}",
        f"batch_timeout_micros {{ value: {params.batch_timeout_micros} }}",
        f"max_enqueued_batches {{ value: {params.max_enqueued_batches} }}",
    ]
    lines += [f"allowed_batch_sizes: {size}" for size in params.allowed_batch_sizes]
    lines.append("pad_variable_length_inputs: false")
    return "\n".join(lines) + "\n"


def rows(inputs: dict) -> int:
    """The shared 0th dimension of a request's inputs (TF Serving's batching demands one)."""
    sizes = {v.shape[0] if v.ndim else None for v in inputs.values()}
    if None in sizes:
        raise invalid("Batching Run() input tensors must have at least one dimension")
    if len(sizes) != 1:
        raise invalid("Batching Run() input tensors must have equal 0th-dimension size")
    return sizes.pop()


def shape_mismatch(name: str) -> ServingError:
    """TF Serving's message, verbatim (BatchingSession::MergeInputTensors; its missing spaces included)."""
    return ServingError(
        grpc.StatusCode.FAILED_PRECONDITION,
        f"Tensors with name '{name}' from different tasks have different shapes and padding is turned "
        "off.Set pad_variable_length_inputs to true, or ensure that all tensors with the same name"
        "have equal dimensions starting with the first dim.",
    )


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
        self.batches = self.rows = (
            0  # executed batches and their rows (monitoring endpoint, tests, benchmarks)
        )
        self.padding = 0  # rows added to reach an allowed batch size

    def run(self, key, function, inputs: dict, params: BatchingParameters | None = None) -> dict:
        """Queues one request; `params` are a model's own (per-model batching parameters), else the server's."""
        params = params or self.params
        task = _Task(inputs, rows(inputs), Future())
        if (
            task.rows > params.max_batch_size
        ):  # the shared batch scheduler's check (no large-batch splitting)
            raise invalid(
                f"Task size {task.rows} is larger than maximum input batch size {params.max_batch_size}"
            )
        with self.lock:
            if key not in self.queues:
                self.queues[key] = queue.Queue(params.max_enqueued_batches * params.max_batch_size)
                threading.Thread(
                    target=self._work,
                    args=(key, function, params),
                    daemon=True,
                    name=f"batch-{key}",
                ).start()
            try:
                self.queues[key].put_nowait(task)
            except queue.Full:
                raise ServingError(
                    grpc.StatusCode.UNAVAILABLE,
                    "The batch scheduling queue to which this task was submitted is full",
                ) from None
        return task.future.result()

    def _work(self, key, function, params: BatchingParameters) -> None:
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
            deadline = time.monotonic() + params.batch_timeout_micros / 1e6
            while total < params.max_batch_size:
                try:
                    task = tasks.get(timeout=max(deadline - time.monotonic(), 0))
                except queue.Empty:
                    break
                if total + task.rows > params.max_batch_size:
                    held = task  # opens the next batch
                    break
                batch.append(task)
                total += task.rows
            if params.mode == "strict":
                self._execute_strict(function, batch, params)
            else:
                groups: dict = {}
                for task in batch:
                    groups.setdefault(task.shape_key(), []).append(task)
                for group in groups.values():
                    self._execute_lenient(function, group)

    def _execute_strict(self, function, batch: list, params: BatchingParameters) -> None:
        """One run for the whole batch; its status, good or bad, is every request's (BatchingSession::ProcessBatch)."""
        try:
            reference = batch[0].inputs
            for task in batch[1:]:
                for name, value in task.inputs.items():
                    if value.shape[1:] != reference[name].shape[1:]:
                        raise shape_mismatch(name)
            total = sum(t.rows for t in batch)
            padding = params.padded_size(total) - total
            inputs = {}
            for name in reference:
                parts = [t.inputs[name] for t in batch]
                parts += [np.repeat(parts[-1][:1], padding, axis=0)] if padding else []
                inputs[name] = np.concatenate(parts)
            outputs = function(inputs)
            with self.lock:
                self.batches, self.rows, self.padding = (
                    self.batches + 1,
                    self.rows + total,
                    self.padding + padding,
                )
        except Exception as error:  # noqa: BLE001 - every caller's thread reports it (ServingError or INTERNAL)
            for task in batch:
                task.future.set_exception(error)
            return
        self._split(batch, outputs)

    def _execute_lenient(self, function, group: list) -> None:
        try:
            inputs = {k: np.concatenate([t.inputs[k] for t in group]) for k in group[0].inputs}
            outputs = function(inputs)
            with self.lock:
                self.batches, self.rows = self.batches + 1, self.rows + sum(t.rows for t in group)
        except ServingError as error:
            if len(group) > 1:
                for task in group:
                    self._execute_lenient(function, [task])
            else:
                group[0].future.set_exception(error)
            return
        except Exception as error:  # noqa: BLE001 - the caller's thread reports it as INTERNAL
            for task in group:
                task.future.set_exception(error)
            return
        self._split(group, outputs)

    @staticmethod
    def _split(group: list, outputs: dict) -> None:
        start = 0
        for task in group:
            task.future.set_result({k: v[start : start + task.rows] for k, v in outputs.items()})
            start += task.rows
