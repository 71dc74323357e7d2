/** Published sizes and sha256 of model files, to check a local model directory against. */
export interface KnownFile {
  size: number;
  sha256: string;
}

export interface KnownModel {
  /** Hub ids and directory names this entry answers to (matched case-insensitively, by last segment too). */
  names: string[];
  files: Record<string, KnownFile>;
}

export type KnownModelTable = readonly KnownModel[];

export const KNOWN_MODELS: KnownModelTable = [
  {
    names: ["Xenova/all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2", "all-MiniLM-L6-v2"],
    files: {
      "onnx/model_quantized.onnx": {
        size: 22_972_370,
        sha256: "afdb6f1a0e45b715d0bb9b11772f032c399babd23bfc31fed1c170afc848bdb1",
      },
      "onnx/model.onnx": {
        size: 90_387_606,
        sha256: "759c3cd2b7fe7e93933ad23c4c9181b7396442a2ed746ec7c1d46192c469c46e",
      },
    },
  },
];

/** The entry for the first candidate name that matches (full id, or its last path segment). */
export function findKnownModel(
  candidates: Array<string | undefined>,
  table: KnownModelTable,
): KnownModel | undefined {
  const norm = (name: string) => name.trim().toLowerCase().replace(/\/+$/, "");
  const last = (name: string) => norm(name).split("/").pop() ?? "";
  for (const candidate of candidates) {
    if (!candidate) continue;
    for (const model of table) {
      if (model.names.some((n) => norm(n) === norm(candidate))) return model;
    }
    for (const model of table) {
      if (model.names.some((n) => last(n) === last(candidate))) return model;
    }
  }
  return undefined;
}
