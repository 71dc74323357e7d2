/**
 * The two wire protocols a remote engine speaks:
 * - openai: POST {base}/embeddings {model, input, encoding_format} → {data:[{index, embedding}]}
 *   (OpenAI, Infinity, vLLM, Ollama, LocalAI, TEI's /v1 route, this server's /v1/embeddings);
 * - tei: POST {base}/embed {inputs, normalize, truncate} → [[...], ...] (TEI's native route), with
 *   GET {base}/info describing the model and the server's limits.
 * Both answer vectors in input order; anything else is a malformed answer (retried: an engine mid-restart
 * or a proxy error page produces those).
 */
import { RemoteFailure } from "./remote-failure.js";

export type ProtocolName = "openai" | "tei";

export interface EngineProtocol {
  readonly name: ProtocolName;
  /** Where embed requests are POSTed. */
  readonly url: string;
  /** "POST <url>", naming the endpoint in errors and logs. */
  readonly endpoint: string;
  /** The JSON body asking for `inputs`. */
  body(inputs: readonly string[]): unknown;
  /** One vector per input, in input order, from a 200 answer. */
  vectors(answer: unknown, count: number): Float32Array[];
}

function malformed(endpoint: string, what: string): RemoteFailure {
  return new RemoteFailure("unavailable", `${endpoint} gave a malformed answer: ${what}`, 200, undefined);
}

function toVector(value: unknown, endpoint: string): Float32Array {
  if (typeof value === "string") {
    // base64 little-endian float32 (encoding_format "base64"), for engines that answer it regardless.
    const bytes = Buffer.from(value, "base64");
    const vector = new Float32Array(bytes.length / 4);
    for (let i = 0; i < vector.length; i++) vector[i] = bytes.readFloatLE(i * 4);
    return vector;
  }
  if (
    !Array.isArray(value) ||
    value.length === 0 ||
    !value.every((x) => typeof x === "number" && Number.isFinite(x))
  ) {
    throw malformed(endpoint, "an embedding is not a non-empty array of finite numbers");
  }
  return Float32Array.from(value as number[]);
}

/**
 * The openai protocol posts to `<baseUrl>/embeddings`, as the OpenAI SDKs do with their baseURL: most
 * engines want it to end in /v1 (OpenAI, vLLM, Ollama, LocalAI, TEI, this server), Infinity serves at its root.
 */
export function openAiProtocol(baseUrl: string, model: string): EngineProtocol {
  const url = `${baseUrl.replace(/\/+$/, "")}/embeddings`;
  const endpoint = `POST ${url}`;
  return {
    name: "openai",
    url,
    endpoint,
    body: (inputs) => ({ model, input: inputs, encoding_format: "float" }),
    vectors(answer, count) {
      const data: unknown =
        typeof answer === "object" && answer !== null ? Reflect.get(answer, "data") : undefined;
      if (!Array.isArray(data) || data.length !== count) {
        throw malformed(endpoint, `expected data with ${count} embeddings`);
      }
      const vectors = new Array<Float32Array | undefined>(count);
      data.forEach((item: unknown, position) => {
        const index: unknown =
          typeof item === "object" && item !== null ? Reflect.get(item, "index") : undefined;
        // `index` says which input an embedding belongs to; without it, answer order is input order.
        const at = typeof index === "number" ? index : position;
        if (!Number.isInteger(at) || at < 0 || at >= count || vectors[at]) {
          throw malformed(endpoint, `embedding index ${String(index)} is out of range or repeated`);
        }
        vectors[at] = toVector(
          typeof item === "object" && item !== null ? Reflect.get(item, "embedding") : undefined,
          endpoint,
        );
      });
      return vectors as Float32Array[];
    },
  };
}

export function teiProtocol(baseUrl: string): EngineProtocol {
  const url = `${baseUrl.replace(/\/+$/, "")}/embed`;
  const endpoint = `POST ${url}`;
  return {
    name: "tei",
    url,
    endpoint,
    // truncate: false — an input over the limit must be refused (422), never cut silently; the
    // adapter already cut every input to fit by the overflow policy.
    body: (inputs) => ({ inputs, normalize: true, truncate: false }),
    vectors(answer, count) {
      if (!Array.isArray(answer) || answer.length !== count) {
        throw malformed(endpoint, `expected an array of ${count} embeddings`);
      }
      return answer.map((row: unknown) => toVector(row, endpoint));
    },
  };
}

/** The part of TEI's GET /info the adapter uses. */
export interface TeiInfo {
  modelId: string | undefined;
  modelSha: string | undefined;
  maxInputLength: number | undefined;
  maxClientBatchSize: number | undefined;
}

export function parseTeiInfo(answer: unknown): TeiInfo {
  const field = (key: string): unknown =>
    typeof answer === "object" && answer !== null ? Reflect.get(answer, key) : undefined;
  const text = (key: string) => {
    const value = field(key);
    return typeof value === "string" && value.length > 0 ? value : undefined;
  };
  const count = (key: string) => {
    const value = field(key);
    return typeof value === "number" && Number.isInteger(value) && value > 0 ? value : undefined;
  };
  return {
    modelId: text("model_id"),
    modelSha: text("model_sha"),
    maxInputLength: count("max_input_length"),
    maxClientBatchSize: count("max_client_batch_size"),
  };
}
