#!/usr/bin/python3
"""A KServe v2 client in Python, from our proto/ only: protoc's Python
messages and grpcio's generic unary calls (no cnnserve code). It does
ModelInfer with raw and typed FP32 contents and with PNG and JPEG BYTES
inputs against a running cnnserve, and checks each answer.

usage: kserve_python_client.py GENERATED_DIR HOST:PORT SOURCE_DIR
"""
import struct
import sys

sys.path.insert(0, sys.argv[1])
import grpc  # noqa: E402
import grpc_predict_v2_pb2 as pb  # noqa: E402

TARGET, SRC = sys.argv[2], sys.argv[3]
SERVICE = "/inference.GRPCInferenceService/"


def call(channel, method, request, response_type):
    rpc = channel.unary_unary(SERVICE + method,
                              request_serializer=lambda m: m.SerializeToString(),
                              response_deserializer=response_type.FromString)
    return rpc(request, timeout=30)


def top_labels(response):
    """Labels of the classification output, one per item ("score:index:label")."""
    return [s.decode().rsplit(":", 1)[1] for s in response.outputs[0].contents.bytes_contents]


def digit_tensor(path):
    """The 8x8 gray PNG sample as the model's 1x1x32x32 input, decoded by hand
    (zlib, filter type 0 rows), nearest-upsampled, scaled to [0, 1]."""
    import zlib
    data = open(path, "rb").read()
    pos, idat = 8, b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + length]
        pos += 12 + length
    raw = zlib.decompress(idat)
    rows = [raw[r * 9 + 1:r * 9 + 9] for r in range(8)]
    assert all(raw[r * 9] == 0 for r in range(8)), "sample rows are unfiltered"
    return [rows[y // 4][x // 4] / 255.0 for y in range(32) for x in range(32)]


def request(datatype, shape, classification=1):
    r = pb.ModelInferRequest(model_name="digits_lenet5", id="py-1")
    t = r.inputs.add(name="input", datatype=datatype)
    t.shape.extend(shape)
    out = r.outputs.add(name="logits")
    out.parameters["classification"].int64_param = classification
    return r


def main():
    failures = []
    channel = grpc.insecure_channel(TARGET)
    live = call(channel, "ServerLive", pb.ServerLiveRequest(), pb.ServerLiveResponse)
    meta = call(channel, "ModelMetadata", pb.ModelMetadataRequest(name="digits_lenet5"),
                pb.ModelMetadataResponse)
    print("live:", live.live, "input:", meta.inputs[0].name, list(meta.inputs[0].shape),
          "image formats:", meta.inputs[0].parameters["image_formats"].string_param)

    # FP32, raw and typed: digits 3 and 8 in one request of two items.
    pixels = [digit_tensor(f"{SRC}/samples/digit_{d}.png") for d in (3, 8)]
    raw = request("FP32", [2, 1, 32, 32])
    raw.raw_input_contents.append(struct.pack(f"<{2 * 1024}f", *(pixels[0] + pixels[1])))
    typed = request("FP32", [2, 1, 32, 32])
    typed.inputs[0].contents.fp32_contents.extend(pixels[0] + pixels[1])
    # BYTES: PNG files (raw, length-prefixed) and JPEG files (typed).
    pngs = [open(f"{SRC}/samples/digit_{d}.png", "rb").read() for d in (3, 8)]
    png = request("BYTES", [2])
    png.raw_input_contents.append(b"".join(struct.pack("<I", len(f)) + f for f in pngs))
    jpeg = request("BYTES", [2])
    jpeg.inputs[0].contents.bytes_contents.extend(
        open(f"{SRC}/tests/data/digit_{d}_32x32.jpg", "rb").read() for d in (3, 8))

    for name, req in (("raw FP32", raw), ("typed FP32", typed), ("PNG BYTES", png),
                      ("JPEG BYTES", jpeg)):
        resp = call(channel, "ModelInfer", req, pb.ModelInferResponse)
        got = top_labels(resp)
        print(f"{name}: id={resp.id} model={resp.model_name}/{resp.model_version} top={got}")
        if got != ["3", "8"] or resp.id != "py-1":
            failures.append(name)

    # A bad request gets INVALID_ARGUMENT with a message.
    bad = request("FP32", [1, 1, 32, 31])
    bad.raw_input_contents.append(b"\0" * 4 * 32 * 31)
    try:
        call(channel, "ModelInfer", bad, pb.ModelInferResponse)
        failures.append("bad shape accepted")
    except grpc.RpcError as e:
        print("bad shape:", e.code().name, e.details())
        if e.code() != grpc.StatusCode.INVALID_ARGUMENT:
            failures.append("bad shape code")

    if failures:
        print("FAIL:", ", ".join(failures))
        return 1
    print("PASS: Python KServe client interoperates")
    return 0


if __name__ == "__main__":
    sys.exit(main())
