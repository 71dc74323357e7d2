/**
 * Payload fields the server itself reads or writes, beside the client's own.
 */

/**
 * Fields that hold a chunk's own text: the native API's `text` and the seed API's `contents`. The
 * windows of a split chunk leave them out (each keeps its own text under WINDOW_TEXT_FIELD), so a long
 * text is stored once rather than once per window.
 */
export const CHUNK_TEXT_FIELDS: readonly string[] = ["text", "contents"];

/** The field holding a window's own text, a substring of its chunk's text. */
export const WINDOW_TEXT_FIELD = "window_text";
