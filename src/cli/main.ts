#!/usr/bin/env node
import { parseArgs } from "node:util";
import {
  envName,
  flagName,
  SETTINGS_SCHEMA,
  type SettingKey,
  SettingsError,
  settingKeys,
} from "../config/settings.js";
import { serveCommand } from "./serve-command.js";

const USAGE = `Usage: rag-embed <command> [options]

Commands:
  serve      run the ingestion server (HTTP API + embedding pipeline)

Every setting is a flag and an environment variable (flag wins):
${settingKeys()
  .map((key) => {
    const schema = SETTINGS_SCHEMA.properties[key] as { description?: string; default?: unknown };
    const fallback = schema.default === undefined ? "" : ` (default ${JSON.stringify(schema.default)})`;
    return `  --${flagName(key).padEnd(28)} ${envName(key).padEnd(28)} ${schema.description ?? ""}${fallback}`;
  })
  .join("\n")}
`;

async function main(argv: string[]): Promise<void> {
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
    default:
      throw new SettingsError(`Unknown command '${command}'. Run 'rag-embed --help'.`);
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`rag-embed: ${message}\n`);
  process.exit(2);
});
