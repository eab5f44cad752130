"""Serving under hostile load (issue 10): 32 concurrent clients against `python -m tf_gadn.serve` (a subprocess, so
its memory is measured alone), 30% of requests hostile, without batching and with strict (TF Serving's) and lenient
batching. Prints p50/p99 latency of the good requests, errors on good requests, how the bad ones were answered, the
kernel's listen-queue overflows during the run and the server's RSS before/after (and its peak).

    /work/venv/bin/python benchmarks/serving_load.py                  # 20 s per mode, tiny random-weight GADN
    /work/venv/bin/python benchmarks/serving_load.py --seconds 60 --clients 32 --bad_fraction 0.3

Good requests alternate gRPC and REST `transfer` of one 32 px uint8 image; a third of the way into each run a
half-written version 2 (no variables/) appears in the model's base path (hot reload must keep version 1 serving). Bad ones are drawn from HOSTILE: a gRPC
tensor declaring 100,000 images, a 4200 x 4200 PNG with a bad-CRC chunk, an unknown model name, and over REST a
malformed or missing Content-Length, a body cut short by a client that goes away, 100,000-deep JSON, a version
beyond int64 and a float for an integer input. A bad request counts as "answered" when it gets an error status
(4xx, or a gRPC error other than UNKNOWN/INTERNAL) or the connection is closed for it, never a 200 or a 5xx.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import zlib

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serving import untrained_run  # noqa: E402  (benchmarks/serving.py)
from tf_gadn.serving import export  # noqa: E402
from tf_gadn.serving.protocol import model_spec  # noqa: E402
from tf_gadn.training.config import Config  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGE = np.random.default_rng(0).integers(0, 256, (1, 32, 32, 3)).astype(np.uint8)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int, field: str = "VmRSS:") -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field)) / 1024


def listen_overflows() -> int:
    """The kernel's count of connections dropped because an accept queue was full (all sockets of the machine)."""
    with open("/proc/net/netstat") as f:
        names, values = [line.split() for line in f if line.startswith("TcpExt:")][:2]
    return int(values[names.index("ListenOverflows")])


def proto(dtype, shape, **values):
    dims = [tensor_shape_pb2.TensorShapeProto.Dim(size=s) for s in shape]
    return tensor_pb2.TensorProto(
        dtype=dtype, tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=dims), **values
    )


def grpc_request(signature="transfer", model="gadn", **inputs):
    request = predict_pb2.PredictRequest(model_spec=model_spec(model, signature))
    for alias, value in inputs.items():
        tensor = value if isinstance(value, tensor_pb2.TensorProto) else tf.make_tensor_proto(value)
        request.inputs[alias].CopyFrom(tensor)
    return request


def png_bomb(side=4200) -> bytes:
    def chunk(kind, data, crc=None):
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) if crc is None else crc)
        )

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0))
        + chunk(b"tEXt", b"Comment\0x", crc=0)
        + chunk(b"IDAT", zlib.compress(b"\0" * (side * (side * 3 + 1))))
        + chunk(b"IEND", b"")
    )


class Load:
    """The clients: each loops until the deadline, sending a bad request with probability `bad_fraction`."""

    def __init__(self, grpc_port: int, rest_port: int, bad_fraction: float):
        self.grpc_port, self.rest_port, self.bad_fraction = grpc_port, rest_port, bad_fraction
        self.channel = grpc.insecure_channel(
            f"127.0.0.1:{grpc_port}", options=[("grpc.max_send_message_length", 64 << 20)]
        )
        self.stub = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.good_grpc = grpc_request(image=IMAGE, artist_id=np.array([1], np.int32))
        self.good_json = json.dumps(
            {"instances": [{"image": IMAGE[0].tolist(), "artist_id": 1}]}
        ).encode()
        bomb = png_bomb()
        self.hostile = {
            "grpc 100000 images": lambda: self.grpc(
                grpc_request(
                    image=proto(types_pb2.DT_UINT8, [100000, 64, 64, 3], int_val=[1]),
                    artist_id=proto(types_pb2.DT_INT32, [100000], int_val=[0]),
                )
            ),
            "grpc png bomb": lambda: self.grpc(
                grpc_request(
                    "transfer_encoded",
                    image_bytes=np.array([bomb], object),
                    artist_id=np.array([0], np.int32),
                )
            ),
            "grpc unknown model": lambda: self.grpc(
                grpc_request(
                    model=f"probe{random.randrange(10**6)}",
                    image=IMAGE,
                    artist_id=np.array([1], np.int32),
                )
            ),
            "rest bad content-length": lambda: self.raw(
                b"POST /v1/models/gadn:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n{}"
            ),
            "rest no content-length": lambda: self.raw(
                b"POST /v1/models/gadn:predict HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            ),
            "rest body cut short": lambda: self.raw(
                b'POST /v1/models/gadn:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 900\r\n\r\n{"in',
                wait=False,
            ),
            "rest deep json": lambda: self.rest(
                "/v1/models/gadn:predict", b'{"instances": ' + b"[" * 100000 + b"]" * 100000 + b"}"
            ),
            "rest huge version": lambda: self.rest(
                "/v1/models/gadn/versions/99999999999999999999:predict", self.good_json
            ),
            "rest float for int": lambda: self.rest(
                "/v1/models/gadn:predict",
                json.dumps(
                    {"instances": [{"image": IMAGE[0].tolist(), "artist_id": 1.5}]}
                ).encode(),
            ),
        }
        self.lock = threading.Lock()
        self.latencies, self.good_errors, self.bad = [], [], {"answered": 0, "wrong": []}

    def grpc(self, request) -> str:
        try:
            self.stub.Predict(request, timeout=30)
        except grpc.RpcError as error:
            bad = error.code() in (
                grpc.StatusCode.UNKNOWN,
                grpc.StatusCode.INTERNAL,
                grpc.StatusCode.UNAVAILABLE,
                grpc.StatusCode.DEADLINE_EXCEEDED,
            )
            return f"gRPC {error.code().name}" if bad else "error"
        return "OK"

    def rest(self, path: str, body: bytes) -> str:
        try:
            with urllib.request.urlopen(
                urllib.request.Request(f"http://127.0.0.1:{self.rest_port}{path}", body), timeout=30
            ) as reply:
                reply.read()
                return "OK"
        except urllib.error.HTTPError as error:
            return "error" if error.code < 500 else f"HTTP {error.code}"
        except OSError as error:
            return f"{type(error).__name__}"

    def raw(self, data: bytes, wait: bool = True) -> str:
        with socket.create_connection(("127.0.0.1", self.rest_port), timeout=30) as sock:
            sock.sendall(data)
            if not wait:
                return "error"  # the client goes away mid-body; the server must simply drop the connection
            reply = sock.recv(64)
        return "error" if reply[9:10] == b"4" or not reply else f"HTTP {reply[9:12].decode()}"

    def client(self, deadline: float, seed: int) -> None:
        rng = random.Random(seed)
        while time.monotonic() < deadline:
            if rng.random() < self.bad_fraction:
                kind = rng.choice(list(self.hostile))
                outcome = self.hostile[kind]()
                with self.lock:
                    if outcome == "error":
                        self.bad["answered"] += 1
                    else:
                        self.bad["wrong"].append(f"{kind}: {outcome}")
                continue
            start = time.perf_counter()
            if rng.random() < 0.5:
                outcome = self.grpc(self.good_grpc)
            else:
                outcome = self.rest("/v1/models/gadn:predict", self.good_json)
            with self.lock:
                if outcome == "OK":
                    self.latencies.append(time.perf_counter() - start)
                else:
                    self.good_errors.append(outcome)

    def run(self, clients: int, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        threads = [threading.Thread(target=self.client, args=(deadline, i)) for i in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


def serve(config: str, batching: str):
    grpc_port, rest_port = free_port(), free_port()
    command = [
        sys.executable,
        "-m",
        "tf_gadn.serve",
        f"--model_config={config}",
        f"--port={grpc_port}",
        f"--rest_port={rest_port}",
        "--rest_read_timeout=2",
        "--file_system_poll_wait_seconds=0.5",
    ]
    if batching:
        batching_config = os.path.join(REPO, "serving", "batching.config")
        command += [
            "--enable_batching",
            f"--batching_parameters_file={batching_config}",
            f"--batching_mode={batching}",
        ]
    process = subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{rest_port}/v1/models/gadn", timeout=2).read()
            return process, grpc_port, rest_port
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError("the server did not start") from None
            time.sleep(0.5)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=20.0, help="load duration per mode")
    parser.add_argument("--bad_fraction", type=float, default=0.3)
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="serving_load_")
    config = Config(
        method="gadn",
        image_size=32,
        gadn_channels=(8, 16),
        gadn_blocks=(1, 1),
        gadn_fc_width=32,
        content_dim=8,
        style_dim=8,
    )
    untrained_run(os.path.join(work, "run"), config, 8)
    export.export(os.path.join(work, "run"), os.path.join(work, "exports"), "gadn")
    models_config = os.path.join(work, "models.config")
    with open(models_config, "w") as f:
        f.write(
            'model_config_list { config { name: "gadn" base_path: "exports/gadn" model_platform: "tensorflow" } }'
        )

    rows = []
    for batching in ("", "strict", "lenient"):
        process, grpc_port, rest_port = serve(models_config, batching)
        try:
            load = Load(grpc_port, rest_port, args.bad_fraction)
            for _ in range(20):  # warm-up: tracing, first allocations
                load.grpc(load.good_grpc)
                load.rest("/v1/models/gadn:predict", load.good_json)
            before = rss_mb(process.pid)
            with open(f"/proc/{process.pid}/clear_refs", "w") as f:
                f.write("5")  # peak RSS from here
            overflows = listen_overflows()
            # a third of the way in, a half-written version 2 (no variables/) appears: version 1 must keep serving
            base = os.path.join(work, "exports", "gadn")
            timer = threading.Timer(
                args.seconds / 3,
                shutil.copytree,
                (os.path.join(base, "1"), os.path.join(base, "2")),
                {"ignore": shutil.ignore_patterns("variables")},
            )
            timer.start()
            load.run(args.clients, args.seconds)
            timer.join()
            status = json.load(
                urllib.request.urlopen(f"http://127.0.0.1:{rest_port}/v1/models/gadn", timeout=30)
            )
            states = {
                v["version"]: (v["state"], bool(v["status"]["error_message"]))
                for v in status["model_version_status"]
            }
            print(
                f"{batching or 'no'} batching: versions after the run (state, load error): {states}"
            )
            shutil.rmtree(os.path.join(base, "2"))
            overflows = listen_overflows() - overflows
            after, peak = rss_mb(process.pid), rss_mb(process.pid, "VmHWM:")
        finally:
            process.terminate()
            process.wait(30)
        ms = np.array(load.latencies) * 1000
        bad_total = load.bad["answered"] + len(load.bad["wrong"])
        rows.append(
            (
                (f"batching {batching} (serving/batching.config)" if batching else "no batching"),
                len(ms),
                f"{np.percentile(ms, 50):.1f} / {np.percentile(ms, 99):.1f}",
                len(load.good_errors),
                f"{load.bad['answered']}/{bad_total}",
                overflows,
                f"{before:.0f} / {after:.0f} (peak {peak:.0f})",
            )
        )
        if load.good_errors or load.bad["wrong"]:
            print(
                "unexpected:", sorted(set(load.good_errors))[:5], sorted(set(load.bad["wrong"]))[:5]
            )

    print(
        f"\nServing under hostile load: {args.clients} clients, {args.bad_fraction:.0%} bad requests, "
        f"{args.seconds:.0f} s per mode; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
        f"TF {tf.__version__}"
    )
    print(
        "| mode | good requests | good p50 / p99 ms | errors on good | bad answered with an error | "
        "listen overflows | server RSS before / after MB |\n|---|---|---|---|---|---|---|"
    )
    for row in rows:
        print("| " + " | ".join(str(v) for v in row) + " |")


if __name__ == "__main__":
    main()
