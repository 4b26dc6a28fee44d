"""Drives `vigie serve` with the official KServe V2 client, tritonclient.http,
unchanged: health, metadata, readiness, and infer with tensors sent and
received both as JSON and in binary. Prints what it saw as one JSON document
for the Rust test to compare with `vigie predict`.

Usage: python tritonclient_check.py HOST:PORT MODEL < columns.json
where columns.json is {"student": [...], "balance": [...], "income": [...]}.
"""

import json
import sys

import numpy as np
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

url, model = sys.argv[1], sys.argv[2]
columns = json.load(sys.stdin)
client = httpclient.InferenceServerClient(url=url)
out = {
    "live": client.is_server_live(),
    "ready": client.is_server_ready(),
    "server": client.get_server_metadata()["name"],
    "model_ready": client.is_model_ready(model),
    "model_inputs": [i["name"] for i in client.get_model_metadata(model)["inputs"]],
}


def inputs(binary):
    tensors = []
    for name, values in columns.items():
        if all(isinstance(v, str) for v in values):
            array = np.array([v.encode() for v in values], dtype=np.object_)
            tensor = httpclient.InferInput(name, [len(values)], "BYTES")
        else:
            array = np.array(values, dtype=np.float64)
            tensor = httpclient.InferInput(name, [len(values)], "FP64")
        tensor.set_data_from_numpy(array, binary_data=binary)
        tensors.append(tensor)
    return tensors


def decoded(labels):
    return [l.decode() if isinstance(l, bytes) else str(l) for l in labels.tolist()]


for mode, binary in (("binary", True), ("json", False)):
    outputs = [
        httpclient.InferRequestedOutput("score", binary_data=binary),
        httpclient.InferRequestedOutput("label", binary_data=binary),
    ]
    result = client.infer(model, inputs(binary), outputs=outputs, request_id="tc-" + mode)
    out[mode] = {
        "scores": result.as_numpy("score").tolist(),
        "labels": decoded(result.as_numpy("label")),
        "id": result.get_response()["id"],
        "version": result.get_response()["model_version"],
    }

versioned = client.infer(model, inputs(True), model_version="1")
out["versioned_scores"] = versioned.as_numpy("score").tolist()

try:
    client.infer("no-such-model", inputs(True))
    out["unknown_model_error"] = None
except InferenceServerException as error:
    out["unknown_model_error"] = {"status": error.status(), "message": error.message()}

print(json.dumps(out))
