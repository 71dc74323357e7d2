import { modelFingerprint } from "../domain/model-binding.js";
import { acceptedModelNames, servedModelName, servesModel } from "../domain/model-names.js";
import type { ModelInfo } from "../domain/types.js";
import type { Embedder } from "./embedder.js";

/** One model the server runs: its embedder, and its description once loaded. */
export interface ServedModel {
  embedder: Embedder;
  /** Null while the model loads. */
  info: ModelInfo | null;
}

interface Slot {
  servedName: string | undefined;
  info: ModelInfo | null;
}

/** A slot whose description is read from its owner each time (ModelRoster.solo). */
class LiveSlot implements Slot {
  readonly servedName = undefined;
  constructor(private readonly read: () => ModelInfo | null) {}
  get info(): ModelInfo | null {
    return this.read();
  }
  set info(_value: ModelInfo | null) {
    // Loaded by its owner.
  }
}

/**
 * The models one server runs (EMBEDDING_MODELS), the default first. Each has its own embedder (its
 * own process and threads); requests pick one by name, collections by their binding's fingerprint.
 * `withEmbedders` gives the same models behind other embedders (the HTTP side's guarded ones), sharing
 * what loading learned.
 */
export class ModelRoster {
  private constructor(
    private readonly slots: Slot[],
    private readonly embedders: Embedder[],
  ) {}

  static of(models: Array<{ embedder: Embedder; servedName?: string | undefined }>): ModelRoster {
    if (models.length === 0) throw new Error("a server runs at least one model");
    return new ModelRoster(
      models.map((m) => ({ servedName: m.servedName, info: null })),
      models.map((m) => m.embedder),
    );
  }

  /** One model whose description comes from elsewhere (an app built around one embedder). */
  static solo(embedder: Embedder, info: () => ModelInfo | null): ModelRoster {
    return new ModelRoster([new LiveSlot(info)], [embedder]);
  }

  /** The same models (and load state) behind other embedders, one per model, in order. */
  withEmbedders(wrap: (embedder: Embedder, index: number) => Embedder): ModelRoster {
    return new ModelRoster(this.slots, this.embedders.map(wrap));
  }

  get size(): number {
    return this.slots.length;
  }

  /** The default model: the seed endpoints, /model-info, requests naming no model, new collections. */
  get default(): ServedModel {
    return this.at(0);
  }

  all(): ServedModel[] {
    return this.slots.map((_, index) => this.at(index));
  }

  /** Loads every model at once (each in its own process); resolves with the default's description. */
  async load(onLoaded?: (info: ModelInfo) => void): Promise<ModelInfo> {
    await Promise.all(
      this.slots.map(async (slot, index) => {
        const loaded = await (this.embedders[index] as Embedder).load();
        slot.info = slot.servedName ? { ...loaded, servedName: slot.servedName } : loaded;
        onLoaded?.(slot.info);
      }),
    );
    return this.slots[0]?.info as ModelInfo;
  }

  /** The model a request names (served name, id, hub id or their base names), loaded or not. */
  byName(requested: string): ServedModel | undefined {
    const index = this.slots.findIndex((slot) =>
      slot.info !== null
        ? servesModel(slot.info, requested)
        : slot.servedName?.toLowerCase() === requested.trim().toLowerCase(),
    );
    return index < 0 ? undefined : this.at(index);
  }

  /** The loaded model whose profile has `fingerprint` (what a collection's binding records). */
  byFingerprint(fingerprint: string): ServedModel | undefined {
    const index = this.slots.findIndex(
      (slot) => slot.info !== null && modelFingerprint(slot.info) === fingerprint,
    );
    return index < 0 ? undefined : this.at(index);
  }

  /** True once every model has loaded. */
  loaded(): boolean {
    return this.slots.every((slot) => slot.info !== null);
  }

  /** The served names (loaded models) and every name each accepts, for a 404's details. */
  describeNames(): { available: string[]; aliases: string[] } {
    const loaded = this.slots.flatMap((slot) => (slot.info ? [slot.info] : []));
    return {
      available: this.slots.map((slot) =>
        slot.info ? servedModelName(slot.info) : (slot.servedName ?? "(loading)"),
      ),
      aliases: loaded.flatMap((info) => acceptedModelNames(info)),
    };
  }

  async close(): Promise<void> {
    await Promise.all(this.embedders.map((embedder) => embedder.close()));
  }

  private at(index: number): ServedModel {
    return { embedder: this.embedders[index] as Embedder, info: (this.slots[index] as Slot).info };
  }
}
