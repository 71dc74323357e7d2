"""Builds int8 variants of a MatMulNBits (4-bit) model for npm run bench -- --only e5.

Usage: python e5_int8.py SOURCE.onnx OUT_DIR   (prints one JSON line naming the files it wrote)

The 4-bit file has no fp32 weights to quantize from, so they are recovered exactly: every
com.microsoft MatMulNBits (4 bits, blocks along K, one scale per block, default zero point 8, no
zero-point input) becomes a plain MatMul with W[k, n] = (nibble - 8) * scale, nibbles low first.
The word embedding (int8 codes, scale per 32 values, dequantized after the Gather) is left as it is.
That fp32 graph then goes through onnxruntime.quantization.quantize_dynamic, restricted to the
recovered MatMuls (the attention MatMuls between activations stay fp32), per output channel, once
with signed int8 weights (QInt8: onnxruntime's fast u8s8 kernels; may saturate on AVX2 hosts
without VNNI) and once with unsigned (QUInt8: u8u8, no saturation). Written only under OUT_DIR.
"""
import json
import os
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnxruntime.quantization import QuantType, quantize_dynamic


def dequantize_matmulnbits(model: onnx.ModelProto) -> list[str]:
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    replaced = []
    nodes = []
    for node in graph.node:
        if node.op_type != "MatMulNBits":
            nodes.append(node)
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if attrs.get("bits", 4) != 4 or len(node.input) > 3:
            raise SystemExit(f"{node.name}: only 4-bit MatMulNBits without zero points/g_idx are handled")
        k, n, block = attrs["K"], attrs["N"], attrs["block_size"]
        packed = numpy_helper.to_array(inits[node.input[1]])  # [N, blocks, block/2] uint8
        scales = numpy_helper.to_array(inits[node.input[2]]).astype(np.float32).reshape(n, -1)
        low = (packed & 0x0F).astype(np.int8)
        high = (packed >> 4).astype(np.int8)
        nibbles = np.stack([low, high], axis=-1).reshape(n, packed.shape[1], block)  # low nibble first
        weights = (nibbles.astype(np.float32) - 8.0) * scales[:, :, None]
        weights = weights.reshape(n, -1)[:, :k].T.copy()  # [K, N]
        name = f"{node.input[1]}_fp32"
        graph.initializer.append(numpy_helper.from_array(weights, name))
        matmul_name = f"{node.name or node.output[0]}_MatMul"
        nodes.append(helper.make_node("MatMul", [node.input[0], name], list(node.output), name=matmul_name))
        replaced.append(matmul_name)
    del graph.node[:]
    graph.node.extend(nodes)
    used = {i for node in graph.node for i in node.input}
    kept = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    return replaced


def main() -> None:
    source, out_dir = sys.argv[1], sys.argv[2]
    os.makedirs(out_dir, exist_ok=True)
    model = onnx.load(source)
    matmuls = dequantize_matmulnbits(model)
    fp32 = os.path.join(out_dir, "model_fp32.onnx")
    onnx.save(model, fp32)
    written = {"fp32": fp32, "matmuls": len(matmuls)}
    for label, weight_type in (("int8_s8", QuantType.QInt8), ("int8_u8", QuantType.QUInt8)):
        target = os.path.join(out_dir, f"model_{label}.onnx")
        quantize_dynamic(
            fp32,
            target,
            weight_type=weight_type,
            per_channel=True,
            op_types_to_quantize=["MatMul"],
            nodes_to_quantize=matmuls,
        )
        written[label] = target
    print(json.dumps(written))


if __name__ == "__main__":
    main()
