"""The explorer's web server: the static page (package data), the data set's test drawings as contents, and a
pass-through of TF Serving's REST API (`/v1/...`) to `upstream`, so the page stays same-origin in front of any TF
Serving (which sends no CORS headers) and tells "server down" from a model error."""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import urllib.error
import urllib.request

from waitress import create_server, wasyncore

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
STATIC_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
}
MAX_DRAWINGS = 48  # contents offered from the test split (the page shows them as a strip)
MAX_BODY_BYTES = 16 << 20  # uploads travel base64 inside JSON
UPSTREAM_TIMEOUT_SECONDS = 60
_JSON = "application/json"


def read_drawings(data_dir: str, limit: int = MAX_DRAWINGS) -> list[dict]:
    """Up to `limit` encoded drawings with their artist, from the test split (the train split when there is none),
    spread over the artists: round-robin by artist in file order."""
    import tensorflow as tf

    from tf_gadn.data import records

    if not data_dir:
        return []
    by_artist: dict[str, list[bytes]] = {}
    for split in records.SPLITS[
        ::-1
    ]:  # test first; its shards exist but are empty without --test_split
        try:
            paths = records.shard_paths(data_dir, split)
        except FileNotFoundError:
            continue
        for serialized in tf.data.TFRecordDataset(paths).take(limit * 50):
            example = records.parse_example(serialized)
            by_artist.setdefault(example["artist"].numpy().decode(), []).append(
                example["image"].numpy()
            )
        if by_artist:
            break
    drawings, row = [], 0
    while len(drawings) < limit and any(row < len(v) for v in by_artist.values()):
        drawings += [
            {"artist": a, "image": v[row]} for a, v in sorted(by_artist.items()) if row < len(v)
        ]
        row += 1
    return drawings[:limit]


def _image_type(data: bytes) -> str:
    return (
        "image/png"
        if data.startswith(b"\x89PNG")
        else "image/jpeg"
        if data.startswith(b"\xff\xd8")
        else "application/octet-stream"
    )


class ExplorerApp:
    """WSGI: `/` the page, `/static/<file>`, `/explorer/config.json`, `/explorer/drawings/<i>`, `/v1/...` proxied."""

    def __init__(self, upstream: str, model: str, drawings: list[dict]):
        self.upstream = upstream if "://" in upstream else f"http://{upstream}"
        self.model, self.drawings = model, drawings

    def __call__(self, environ, start_response):
        status, body, content_type = self.route(environ)
        if not isinstance(body, bytes):
            body = json.dumps(body).encode()
        start_response(
            f"{status} {'OK' if status == 200 else 'Error'}",
            [
                ("Content-Type", content_type),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-store"),
            ],
        )
        return [body]

    def route(self, environ) -> tuple[int, object, str]:
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        if path.startswith("/v1/"):
            return self.proxy(environ, method, path)
        if method != "GET":
            return 405, {"error": f"{method} {path} is not allowed"}, _JSON
        if path in ("/", "/index.html"):
            path = "/static/index.html"
        if path == "/explorer/config.json":
            return (
                200,
                {"model": self.model, "drawings": [{"artist": d["artist"]} for d in self.drawings]},
                _JSON,
            )
        match = re.fullmatch(r"/explorer/drawings/(\d+)", path)
        if match and int(match.group(1)) < len(self.drawings):
            data = self.drawings[int(match.group(1))]["image"]
            return 200, data, _image_type(data)
        match = re.fullmatch(r"/static/([a-z_]+\.[a-z]+)", path)  # names only: no path traversal
        if match and os.path.isfile(os.path.join(STATIC_DIR, match.group(1))):
            name = match.group(1)
            with open(os.path.join(STATIC_DIR, name), "rb") as f:
                return (
                    200,
                    f.read(),
                    STATIC_TYPES.get(os.path.splitext(name)[1], "application/octet-stream"),
                )
        return 404, {"error": f"not found: {path}"}, _JSON

    def proxy(self, environ, method: str, path: str) -> tuple[int, object, str]:
        """TF Serving's answer as it is (status and JSON body); 502 with a sentence when the server is unreachable."""
        body = None
        if method == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length)
        query = environ.get("QUERY_STRING", "")
        request = urllib.request.Request(
            self.upstream + path + (f"?{query}" if query else ""),
            data=body,
            method=method,
            headers={"Content-Type": _JSON},
        )
        try:
            with urllib.request.urlopen(request, timeout=UPSTREAM_TIMEOUT_SECONDS) as response:
                return response.status, response.read(), response.headers.get("Content-Type", _JSON)
        except urllib.error.HTTPError as e:
            return e.code, e.read(), e.headers.get("Content-Type", _JSON)
        except (
            urllib.error.URLError,
            OSError,
        ) as e:  # refused, reset, timed out: the server is down or gone
            reason = getattr(e, "reason", e)
            return (
                502,
                {"error": f"the serving API at {self.upstream} is down or unreachable ({reason})"},
                _JSON,
            )


class ExplorerServer:
    """The page on host:port (0 picks a free port: read .port), served by waitress in a thread."""

    def __init__(
        self,
        upstream: str,
        model: str,
        data_dir: str = "",
        host: str = "127.0.0.1",
        port: int = 8080,
    ):
        self.app = ExplorerApp(upstream, model, read_drawings(data_dir))
        self.host, self.port = host, port
        self._http = self._thread = None

    def start(self) -> ExplorerServer:
        self._http = create_server(
            self.app,
            host=self.host,
            port=self.port,
            threads=8,
            max_request_body_size=MAX_BODY_BYTES,
            ident="tf_gadn.explorer",
        )
        self.port = self._http.effective_port
        self._thread = threading.Thread(target=self._http.run, name="explorer", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Closes the sockets inside waitress's event loop (as tf_gadn.serving.server does): closing them from this
        thread could pull a socket from under a running select()."""
        if self._http is not None:
            http = self._http
            try:
                http.trigger.pull_trigger(lambda: wasyncore.close_all(http._map))
            except OSError:  # the loop already ended and closed its trigger
                wasyncore.close_all(http._map, ignore_all=True)
            self._thread.join(10)
            http.task_dispatcher.shutdown()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def run_data_dir(model_dir: str) -> str:
    """The run's data set: its config's data_dir as given, or relative to the checkout that holds runs/<run>."""
    from tf_gadn.training import checkpoints

    data_dir = checkpoints.load_run_info(model_dir)[0].data_dir
    for candidate in (
        data_dir,
        os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(model_dir))), data_dir),
    ):
        if data_dir and os.path.isdir(candidate):
            return candidate
    if data_dir:
        logging.warning(
            "data set %r of %s not found: the page offers uploads and samples only",
            data_dir,
            model_dir,
        )
    return ""


def export_and_serve(model_dir: str, work_dir: str, name: str = ""):
    """Exports a run into work_dir and starts the local TF-Serving-compatible server on free ports.
    Returns (server, model name, the run's data_dir)."""
    from tf_gadn.serving import export, server

    final = export.export(model_dir, os.path.join(work_dir, "exports"), name)
    name = os.path.basename(os.path.dirname(final))
    config = os.path.join(work_dir, "models.config")
    with open(config, "w", encoding="utf-8") as f:
        f.write(
            f'model_config_list {{ config {{ name: "{name}" base_path: "exports/{name}" '
            f'model_platform: "tensorflow" }} }}\n'
        )
    return (
        server.LocalServer(config, port=0, rest_port=0, poll_seconds=0).start(),
        name,
        run_data_dir(model_dir),
    )
