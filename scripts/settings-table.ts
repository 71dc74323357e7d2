/** Prints the README's settings table from the one settings schema: `npx tsx scripts/settings-table.ts`. */
import { envName, flagName, settingKeys, settingSchema } from "../src/config/settings.js";

const rows = settingKeys().map((key) => {
  const schema = settingSchema(key) as { description?: string; default?: unknown };
  const fallback =
    key === "embeddingThreads"
      ? "cores"
      : schema.default === undefined
        ? "—"
        : `\`${String(schema.default)}\``;
  return `| \`${envName(key)}\` | \`--${flagName(key)}\` | ${fallback} | ${schema.description ?? ""} |`;
});
process.stdout.write(`| env var | CLI flag | default | meaning |\n|---|---|---|---|\n${rows.join("\n")}\n`);
