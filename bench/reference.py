"""The Python reference of npm run bench: onnxruntime (current PyPI release) on the same .onnx file,
the same texts, length-sorted batches, mean pooling. A second ceiling beside the Node one.

Usage: python reference.py CONFIG.json   (written by bench/python.ts; prints one JSON line)

With "compare": {label: model_file, ...} in the config it instead embeds the texts with each file
and reports every file's cosine to the first one's vectors (mean and min over the texts).

Session options are onnxruntime's defaults except the intra-op thread count (and any entries the
config names explicitly, reported as such): the reference is what a user of the library gets.
Timed: tokenization (tokenizers, the model's tokenizer.json), truncation to max_tokens with the
closing special token kept, forward passes, pooling and normalisation; CPU time of the process,
all threads (time.process_time).
"""
import json
import sys
import time

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer


def main() -> None:
    cfg = json.load(open(sys.argv[1], encoding="utf-8"))
    tokenizer = Tokenizer.from_file(cfg["tokenizer_file"])
    tokenizer.no_padding()
    # tokenizers truncates the content and keeps [CLS]/[SEP] (<s>/</s>), as the server does.
    tokenizer.enable_truncation(max_length=cfg["max_tokens"])
    options = ort.SessionOptions()
    options.intra_op_num_threads = cfg["threads"]
    for key, value in cfg.get("session_config", {}).items():
        options.add_session_config_entry(key, value)
    texts = [cfg["prefix"] + t for t in cfg["texts"]]
    pad_id = cfg["pad_id"]
    batch_size = cfg["batch_size"]

    def embed(session, batch_texts):
        input_names = {i.name for i in session.get_inputs()}
        started = time.process_time()
        ids = [e.ids for e in tokenizer.encode_batch(batch_texts)]
        tokenize_cpu = time.process_time() - started
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        vectors = [None] * len(ids)
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            length = max(len(ids[i]) for i in rows)
            input_ids = np.full((len(rows), length), pad_id, np.int64)
            mask = np.zeros((len(rows), length), np.int64)
            for r, i in enumerate(rows):
                input_ids[r, : len(ids[i])] = ids[i]
                mask[r, : len(ids[i])] = 1
            feeds = {"input_ids": input_ids, "attention_mask": mask}
            if "token_type_ids" in input_names:
                feeds["token_type_ids"] = np.zeros_like(input_ids)
            hidden = session.run(None, feeds)[0]
            pooled = (hidden * mask[:, :, None]).sum(1) / mask.sum(1, keepdims=True)
            pooled /= np.linalg.norm(pooled, axis=1, keepdims=True)
            for r, i in enumerate(rows):
                vectors[i] = pooled[r]
        return sum(len(x) for x in ids), tokenize_cpu, np.stack(vectors)

    def open_session(model_file):
        return ort.InferenceSession(model_file, options, providers=["CPUExecutionProvider"])

    if "compare" in cfg:
        first = None
        agreement = {}
        for label, model_file in cfg["compare"].items():
            vectors = embed(open_session(model_file), texts)[2]
            first = vectors if first is None else first
            cosines = (vectors * first).sum(axis=1)
            agreement[label] = {"mean": round(float(cosines.mean()), 6), "min": round(float(cosines.min()), 6)}
        print(json.dumps(agreement))
        return

    session = open_session(cfg["model_file"])
    embed(session, texts[: 2 * batch_size])  # warm-up
    cpu0, wall0 = time.process_time(), time.perf_counter()
    tokens, tokenize_cpu, vectors = embed(session, texts)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    if cfg.get("vectors_file"):
        np.save(cfg["vectors_file"], vectors)
    print(
        json.dumps(
            {
                "onnxruntime": ort.__version__,
                "tokens": tokens,
                "seconds": round(wall, 3),
                "cpu_seconds": round(cpu, 3),
                "tokenize_cpu_seconds": round(tokenize_cpu, 3),
                "tokens_per_s": round(tokens / wall),
                "tokens_per_cpu_s": round(tokens / cpu),
            }
        )
    )


if __name__ == "__main__":
    main()
