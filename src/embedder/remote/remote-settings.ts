/**
 * EMBEDDER=remote settings → RemoteEmbedderOptions, refusing combinations that cannot work with an
 * error naming the settings to fix (at start-up, not at the first batch).
 */
import { type Settings, SettingsError } from "../../config/settings.js";
import type { RemoteEmbedderOptions } from "./remote-embedder.js";

export function remoteEmbedderOptions(settings: Settings): RemoteEmbedderOptions {
  const problems: string[] = [];
  const url = settings.embedderUrl;
  if (!url) {
    problems.push("EMBEDDER=remote needs EMBEDDER_URL (the engine's base URL)");
  } else if (!/^https?:$/.test(safeProtocol(url))) {
    problems.push(`EMBEDDER_URL must be an http(s) URL, got ${JSON.stringify(url)}`);
  }
  if (settings.embedderProtocol === "openai" && !settings.embedderModel) {
    problems.push("EMBEDDER_PROTOCOL=openai needs EMBEDDER_MODEL (the model name the engine serves)");
  }
  // The default EMBEDDING_MODEL is the local model's, not necessarily the remote one's: only a model
  // the user named is trusted as the tokenizer.
  if (!settings.embeddingModelSet && settings.embedderMaxTokens === undefined) {
    problems.push(
      "EMBEDDER=remote needs the model's token limit: set EMBEDDING_MODEL to its tokenizer (a local directory with tokenizer.json, or a Hugging Face id) to count exactly, or declare EMBEDDER_MAX_TOKENS to count by a conservative estimate",
    );
  }
  if (problems.length > 0) throw new SettingsError(`Invalid settings:\n  ${problems.join("\n  ")}`);
  return {
    protocol: settings.embedderProtocol,
    url: url!,
    apiKey: settings.embedderApiKey,
    model: settings.embedderModel,
    tokenizer: settings.embeddingModelSet ? settings.embeddingModel : null,
    cacheDir: settings.resolvedModelCacheDir,
    maxTokens: settings.embedderMaxTokens,
    profileOverrides: {
      passagePrefix: settings.embeddingPassagePrefix,
      queryPrefix: settings.embeddingQueryPrefix,
      maxTokens: settings.embeddingMaxTokens,
      pooling: settings.embeddingPooling,
    },
    rpm: settings.embedderRpm,
    tpm: settings.embedderTpm,
    maxBatch: settings.embedderMaxBatch,
    concurrency: settings.embedderConcurrency,
    timeoutMs: settings.embedderTimeoutMs,
    retryBaseMs: settings.retryBaseMs,
    retryMaxMs: settings.retryMaxMs,
  };
}

function safeProtocol(url: string): string {
  try {
    return new URL(url).protocol;
  } catch {
    return "";
  }
}
