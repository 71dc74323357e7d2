import { AppError } from "../../domain/errors.js";
import { servedModelName } from "../../domain/model-names.js";
import type { ModelInfo } from "../../domain/types.js";
import { EmbeddingsBody, MAX_EMBEDDING_INPUTS as MAX_INPUTS } from "../../wire/requests.js";
import { EmbeddingsResponse, ModelList } from "../../wire/responses.js";
import { type App, type AppDeps, requireModel, rosterOf, servedModel } from "../app-deps.js";
import { answers } from "../route-responses.js";
import { overlongTexts } from "../token-limits.js";

/**
 * OpenAI-compatible embeddings (`POST /v1/embeddings`, `GET /v1/models`), so the official `openai`
 * clients (baseURL `<server>/v1`) and tools built on them work unchanged. Texts are embedded on the
 * query side (the profile's query prefix, e5: "query: "), never queued: the answer carries the vectors.
 */

/** Float32 little-endian bytes, base64: what OpenAI's `encoding_format: "base64"` returns. */
export function float32Base64(vector: Float32Array): string {
  const bytes = Buffer.alloc(vector.length * 4);
  for (let i = 0; i < vector.length; i++) bytes.writeFloatLE(vector[i] ?? 0, i * 4);
  return bytes.toString("base64");
}

function texts(input: EmbeddingsBody["input"]): string[] {
  if (typeof input === "string") return [input];
  if (input.some((item) => typeof item !== "string")) {
    throw new AppError(
      "invalid_request",
      "Token arrays are not supported as input: send the text itself (a string or an array of strings). " +
        "LangChain's OpenAIEmbeddings sends token ids unless told not to: set check_embedding_ctx_length=False " +
        "(Python; this server tokenizes with its own model and applies the length limit itself).",
      {
        details: {
          param: "input",
          hint: "LangChain: OpenAIEmbeddings(..., check_embedding_ctx_length=False)",
        },
      },
    );
  }
  return input as string[];
}

function modelObject(model: ModelInfo) {
  return {
    id: servedModelName(model),
    object: "model" as const,
    created: 0,
    owned_by: "rag-embedding-server",
  };
}

export function registerOpenAiRoutes(app: App, deps: AppDeps): void {
  app.post(
    "/v1/embeddings",
    {
      schema: {
        summary: "Create embeddings (OpenAI-compatible)",
        description:
          "Embeds texts on the query side and answers the vectors directly (nothing is queued or stored). Over-long input is refused (422 text_too_long) unless overflow is truncate.",
        tags: ["openai"],
        body: EmbeddingsBody,
        response: answers(EmbeddingsResponse),
      },
    },
    async (request) => {
      const body = request.body;
      const { embedder, info: model } = servedModel(deps, body.model);
      if (body.dimensions !== undefined && body.dimensions !== model.dimension) {
        throw new AppError(
          "invalid_request",
          `dimensions ${body.dimensions} is not supported: the model '${servedModelName(model)}' gives ${model.dimension}-dimensional vectors`,
          { details: { param: "dimensions", supported: [model.dimension] } },
        );
      }
      const inputs = texts(body.input);
      if (inputs.length === 0) throw new AppError("empty_batch", "input is empty");
      if (inputs.length > MAX_INPUTS) {
        throw new AppError("payload_too_large", `At most ${MAX_INPUTS} inputs per request`);
      }
      const blank = inputs.flatMap((text, index) => (text.trim() === "" ? [index] : []));
      if (blank.length > 0) {
        throw new AppError("empty_text", `${blank.length} input(s) have no text to embed`, {
          details: { param: "input", indexes: blank.slice(0, 100) },
        });
      }
      const policy =
        body.overflow ?? (deps.limits.defaultOverflow.policy === "truncate" ? "truncate" : "reject");
      if (policy === "reject") {
        const overlong = await overlongTexts(
          embedder,
          inputs,
          "query",
          model.prefixes.query,
          model.maxTokens,
        );
        if (overlong.length > 0) {
          throw new AppError(
            "text_too_long",
            `${overlong.length} input(s) exceed the model's ${model.maxTokens}-token limit; send shorter text or "overflow": "truncate"`,
            { details: { max_tokens: model.maxTokens, inputs: overlong.slice(0, 1000) } },
          );
        }
      }
      const result = await embedder.embed(
        inputs,
        "query",
        inputs.map(() => ({ policy: "truncate" as const, overlapTokens: 0 })),
      );
      const truncated = result.truncatedTokens.reduce((sum, t) => sum + t, 0);
      if (truncated > 0) {
        request.log.info(
          { inputs: result.truncatedTokens.filter((t) => t > 0).length, truncatedTokens: truncated },
          "embeddings input truncated (overflow truncate)",
        );
      }
      const base64 = body.encoding_format === "base64";
      const promptTokens = result.tokens.reduce((sum, t) => sum + t, 0);
      return {
        object: "list" as const,
        data: result.vectors.map((vector, index) => ({
          object: "embedding" as const,
          index,
          embedding: base64 ? float32Base64(vector) : Array.from(vector),
        })),
        model: servedModelName(model),
        usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
      };
    },
  );

  app.get(
    "/v1/models",
    {
      schema: {
        summary: "List models (OpenAI-compatible)",
        tags: ["openai"],
        response: answers(ModelList),
      },
    },
    async () => {
      requireModel(deps);
      const models = rosterOf(deps).all();
      return {
        object: "list" as const,
        data: models.flatMap(({ info }) => (info === null ? [] : [modelObject(info)])),
      };
    },
  );
}
