#!/usr/bin/env node
import { parseArgs } from "node:util";
import { RagEmbedError } from "../client/errors.js";
import {
  envName,
  flagName,
  SETTINGS_SCHEMA,
  type SettingKey,
  SettingsError,
  settingKeys,
} from "../config/settings.js";
import { ingestCommand } from "./ingest-command.js";
import { modelsCommand } from "./models-command.js";
import { searchCommand } from "./search-command.js";
import { serveCommand } from "./serve-command.js";
import { statusCommand } from "./status-command.js";
import { syncCommand } from "./sync-command.js";

/** Client commands: each parses its own flags and returns an exit code. */
const CLIENT_COMMANDS: Record<string, (argv: string[]) => Promise<number>> = {
  ingest: ingestCommand,
  sync: syncCommand,
  search: searchCommand,
  status: statusCommand,
  models: modelsCommand,
};

const USAGE = `Usage: rag-embed <command> [options]

Commands:
  serve               run the ingestion server (HTTP API + embedding pipeline; --role api|worker|all)
  worker              run only the embedding pipeline (same as serve --role worker)
  ingest FILE         send a JSONL or CSV file to a server, resumably, with progress
  sync SOURCE         make a collection hold a file's or directory's documents (--delete-missing, --dry-run)
  search "QUERY"      search a collection
  status              show a server's queue, throughput and dead letters
  models verify DIR   check a model directory's files and published sha256

Run 'rag-embed <command> --help' for a client command's options.

Every setting of 'serve' is a flag and an environment variable (flag wins):
${settingKeys()
  .map((key) => {
    const schema = SETTINGS_SCHEMA.properties[key] as { description?: string; default?: unknown };
    const fallback = schema.default === undefined ? "" : ` (default ${JSON.stringify(schema.default)})`;
    return `  --${flagName(key).padEnd(28)} ${envName(key).padEnd(28)} ${schema.description ?? ""}${fallback}`;
  })
  .join("\n")}
`;

async function main(argv: string[]): Promise<void> {
  const clientCommand = argv[0] === undefined ? undefined : CLIENT_COMMANDS[argv[0]];
  if (clientCommand) {
    try {
      process.exitCode = await clientCommand(argv.slice(1));
    } catch (error) {
      if (error instanceof RagEmbedError) {
        process.stderr.write(`rag-embed ${argv[0]}: ${error.message}\n`);
        process.exitCode = 1;
        return;
      }
      throw error;
    }
    return;
  }
  const options = Object.fromEntries(
    settingKeys().map((key) => [flagName(key), { type: "string" as const }]),
  );
  const { values, positionals } = parseArgs({
    args: argv,
    options: { ...options, help: { type: "boolean", short: "h" } },
    allowPositionals: true,
    strict: true,
  });
  const [command] = positionals;
  if (values.help || command === undefined || command === "help") {
    process.stdout.write(USAGE);
    return;
  }
  const flags: Partial<Record<SettingKey, string>> = {};
  for (const key of settingKeys()) {
    const value = (values as Record<string, string | boolean | undefined>)[flagName(key)];
    if (typeof value === "string") flags[key] = value;
  }
  switch (command) {
    case "serve":
      await serveCommand(flags);
      return;
    case "worker":
      await serveCommand({ ...flags, role: "worker" });
      return;
    default:
      throw new SettingsError(`Unknown command '${command}'. Run 'rag-embed --help'.`);
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`rag-embed: ${message}\n`);
  process.exit(2);
});
