import assert from "node:assert/strict";

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const NAME = "[a-zA-Z_:][a-zA-Z0-9_:]*";
const LABEL = `[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"`;
const SAMPLE = new RegExp(
  `^(${NAME})(?:\\{((?:${LABEL})(?:,(?:${LABEL}))*)?,?\\})? (-?[0-9.eE+-]+|[+-]Inf|NaN)(?: -?[0-9]+)?$`,
  // Values are Go floats (strconv.ParseFloat): NaN and Inf in any case; prom-client writes "Nan".
  "i",
);
const HELP = new RegExp(`^# HELP (${NAME}) .*$`);
const TYPE = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`);

/**
 * Strict parse of the Prometheus text exposition format (0.0.4): every line is HELP, TYPE or a
 * sample; every sample belongs to a family whose TYPE came before it; histogram samples carry the
 * _bucket/_sum/_count suffixes and buckets an `le` label.
 */
export function parsePrometheus(text: string): { samples: Sample[]; types: Map<string, string> } {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  assert.ok(text.endsWith("\n"), "ends with a newline");
  for (const [index, line] of text.split("\n").entries()) {
    if (line === "") continue;
    const where = `line ${index + 1}: ${line}`;
    if (line.startsWith("#")) {
      const type = TYPE.exec(line);
      if (type) {
        assert.ok(!types.has(type[1]!), `TYPE declared once (${where})`);
        types.set(type[1]!, type[2]!);
        continue;
      }
      assert.match(line, HELP, `a HELP or TYPE comment (${where})`);
      continue;
    }
    const match = SAMPLE.exec(line);
    assert.ok(match, `a valid sample line (${where})`);
    const [, name, labelText, rawValue] = match;
    const labels: Record<string, string> = {};
    for (const pair of (labelText ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[pair[1]!] = pair[2]!;
    }
    const family = [name!, name!.replace(/_(bucket|sum|count|total)$/, "")].find((n) => types.has(n));
    assert.ok(family, `sample of a declared family (${where})`);
    if (types.get(family) === "histogram") {
      assert.match(name!, /_(bucket|sum|count)$/, `histogram sample suffix (${where})`);
      if (name!.endsWith("_bucket")) assert.ok("le" in labels, `bucket has le (${where})`);
    }
    const raw = rawValue!.toLowerCase();
    const value = raw === "+inf" ? Infinity : raw === "-inf" ? -Infinity : Number(rawValue);
    assert.ok(raw === "nan" || !Number.isNaN(value), `numeric value (${where})`);
    samples.push({ name: name!, labels, value });
  }
  return { samples, types };
}

export function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const found = samples.filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  return found.reduce((sum, s) => sum + s.value, 0);
}
