"""What the client and the server agree on besides TF Serving's protos: the message size cap and how a request names
a model (name, signature, version number or label). Both import it; neither imports the other."""

from __future__ import annotations

from tensorflow_serving.apis import model_pb2

MAX_MESSAGE_BYTES = 64 << 20


def model_spec(
    model: str, signature: str = "", version: int = 0, label: str = ""
) -> model_pb2.ModelSpec:
    spec = model_pb2.ModelSpec(name=model, signature_name=signature)
    if version:
        spec.version.value = version
    elif label:
        spec.version_label = label
    return spec
