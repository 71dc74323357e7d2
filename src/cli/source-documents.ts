import { readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import type { Chunk } from "../client/types.js";
import { formatFromPath, InputError, readRecords } from "./input-reader.js";
import { type FieldMapping, recordToChunk } from "./record-to-chunk.js";

/** A source's documents: each document id with its full chunk list, in the order read. */
export interface SourceDocuments {
  documents: Map<string, Chunk[]>;
  files: number;
  skippedEmpty: number;
}

/**
 * Reads a JSONL/CSV file, or every such file under a directory (recursively, in name order), into
 * documents. A record's document is its `documentField`; in a directory a record without one
 * belongs to its file (the path relative to the directory), so "one file, one document" needs no
 * field at all. A chunk id seen twice in one document keeps its last record.
 */
export async function readSourceDocuments(
  source: string,
  mapping: FieldMapping & { documentField: string },
): Promise<SourceDocuments> {
  const isDirectory = statSync(source).isDirectory();
  const files = isDirectory ? sourceFiles(source) : [source];
  const documents = new Map<string, Map<string, Chunk>>();
  let skippedEmpty = 0;
  for (const file of files) {
    const format = formatFromPath(file);
    if (format === undefined) throw new InputError(`${file}: not a .jsonl or .csv file`);
    const fallbackDocument = isDirectory ? relative(source, file) : undefined;
    for await (const record of readRecords(file, format)) {
      const mapped = recordToChunk(record.value, mapping);
      if (!mapped.ok) {
        if (mapped.reason === "empty_text") {
          skippedEmpty += 1;
          continue;
        }
        throw new InputError(`${file}:${record.line}: ${mapped.message}`);
      }
      const documentId = mapped.chunk.document_id ?? fallbackDocument;
      if (documentId === undefined || documentId === null) {
        throw new InputError(
          `${file}:${record.line}: no document: field '${mapping.documentField}' is missing (sync replaces whole documents)`,
        );
      }
      const key = String(documentId);
      const chunks = documents.get(key) ?? new Map<string, Chunk>();
      chunks.set(String(mapped.chunk.id), { ...mapped.chunk, document_id: key });
      documents.set(key, chunks);
    }
  }
  return {
    documents: new Map([...documents].map(([id, chunks]) => [id, [...chunks.values()]])),
    files: files.length,
    skippedEmpty,
  };
}

function sourceFiles(directory: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(directory, { withFileTypes: true }).sort((a, b) =>
    a.name.localeCompare(b.name),
  )) {
    const path = join(directory, entry.name);
    if (entry.isDirectory()) found.push(...sourceFiles(path));
    else if (entry.isFile() && formatFromPath(path) !== undefined) found.push(path);
  }
  return found;
}
