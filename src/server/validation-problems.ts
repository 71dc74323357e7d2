import { ERROR_CODES, type ErrorCode } from "../domain/errors.js";

/**
 * Readable validation errors. A JSON-schema validator reports a failed union (anyOf) as one error per
 * branch plus one for the union: `overflow: "bogus"` gave "must be equal to constant" three times and
 * never said which values were allowed. Here each union collapses into what the client needs to
 * read: "body/overflow must be one of: split, truncate, reject" when no branch matched the value's
 * kind, or the problems of the branch that did match it (the one whose errors go deepest into the
 * value), so `[{"contents": 42}]` says "body/0/contents must be a string", not "body must be an object".
 */

/** One check that failed, as the validator reports it, with the failing schema node's annotations. */
export interface RawValidationError {
  keyword: string;
  instancePath: string;
  schemaPath: string;
  params: Record<string, unknown>;
  message?: string;
  /** `x-error-code` of the failing node: the catalog code this failure gets (e.g. empty_batch). */
  errorCode?: ErrorCode;
  /** `x-error-message` of the failing node: replaces the validator's wording. */
  errorMessage?: string;
}

export interface ValidationProblem {
  /** Where: the request part and a JSON pointer into it, e.g. `body/chunks/0/text`. */
  path: string;
  message: string;
  /** The values the field may take, when it is an enumeration. */
  allowed?: unknown[];
  code?: ErrorCode;
}

/** The `x-error-*` annotations of the schema node a validator's `schemaPath` (`#/properties/a`) names. */
export function annotationsAt(
  schema: unknown,
  schemaPath: string,
): Pick<RawValidationError, "errorCode" | "errorMessage"> {
  let node: unknown = schema;
  for (const part of schemaPath.replace(/^#\/?/, "").split("/").filter(Boolean)) {
    if (node === null || typeof node !== "object") return {};
    node = (node as Record<string, unknown>)[part.replace(/~1/g, "/").replace(/~0/g, "~")];
  }
  if (node === null || typeof node !== "object") return {};
  const code = (node as Record<string, unknown>)["x-error-code"];
  const message = (node as Record<string, unknown>)["x-error-message"];
  return {
    ...(typeof code === "string" && (ERROR_CODES as readonly string[]).includes(code)
      ? { errorCode: code as ErrorCode }
      : {}),
    ...(typeof message === "string" ? { errorMessage: message } : {}),
  };
}

/**
 * The validator stops after a few errors (TypeBox: 8), and a union reports itself after its branches,
 * so a union's own error can be cut off while its branches' are there. Adds the missing ones (at the
 * shallowest place a branch failed), so the branches are still read as alternatives.
 */
export function completeUnions<E extends Omit<RawValidationError, "errorCode" | "errorMessage">>(
  errors: E[],
): Array<E | Omit<RawValidationError, "errorCode" | "errorMessage">> {
  const reported = new Set(errors.filter((e) => e.keyword === "anyOf").map((e) => e.schemaPath));
  const missing = new Map<string, string>();
  for (const error of errors) {
    const parts = error.schemaPath.split("/anyOf/");
    for (let i = 1; i < parts.length; i++) {
      const union = parts.slice(0, i).join("/anyOf/");
      if (reported.has(union)) continue;
      const known = missing.get(union);
      if (known === undefined || segments(error.instancePath) < segments(known)) {
        missing.set(union, error.instancePath);
      }
    }
  }
  return [
    ...errors,
    ...[...missing].map(([schemaPath, instancePath]) => ({
      keyword: "anyOf",
      schemaPath,
      instancePath,
      params: {},
    })),
  ];
}

/** The code, one-line message and per-field problems of a failed validation of one request part. */
export function describeValidation(
  errors: RawValidationError[],
  part: string,
): { code: ErrorCode; message: string; problems: ValidationProblem[] } {
  const problems = problemsOf(forest(errors.filter((e) => e.keyword !== "boolean")), part);
  const first = problems[0];
  if (!first) return { code: "invalid_request", message: `Request ${part} is invalid`, problems };
  const more = problems.length > 1 ? ` (${problems.length - 1} more problem(s) in details)` : "";
  return {
    code: first.code ?? "invalid_request",
    message: `${first.path} ${first.message}${more}`,
    problems,
  };
}

/** A failed check; a union (anyOf) owns its branches' failures, by branch index. */
interface Node {
  error: RawValidationError;
  branches: Node[][];
}

function forest(errors: RawValidationError[]): Node[] {
  const unions = errors.filter((e) => e.keyword === "anyOf");
  const branchOf = (union: RawValidationError, error: RawValidationError): number | null => {
    const prefix = `${union.schemaPath}/anyOf/`;
    if (!error.schemaPath.startsWith(prefix)) return null;
    return Number.parseInt(error.schemaPath.slice(prefix.length), 10);
  };
  const roots = errors.filter((e) => !unions.some((u) => u !== e && branchOf(u, e) !== null));
  return roots.map((error) => {
    if (error.keyword !== "anyOf") return { error, branches: [] };
    const byBranch = new Map<number, RawValidationError[]>();
    for (const candidate of errors) {
      const index = branchOf(error, candidate);
      if (index === null || candidate === error) continue;
      byBranch.set(index, [...(byBranch.get(index) ?? []), candidate]);
    }
    return { error, branches: [...byBranch.values()].map(forest) };
  });
}

/** A kind of value a union accepts: a type ("a string") or a constant. */
interface Kind {
  label: string;
  constant?: { value: unknown };
}

/**
 * What a value failed on, if it failed only on its kind (type or constant) at `path`: then the union
 * above can say "must be one of …". Null when it got past the kind check (a branch that matched).
 */
function kindsOf(nodes: Node[], path: string): Kind[] | null {
  const kinds: Kind[] = [];
  for (const { error, branches } of nodes) {
    if (error.instancePath !== path) return null;
    if (error.keyword === "type") kinds.push({ label: typeName(error.params.type) });
    else if (error.keyword === "const") {
      kinds.push({
        label: constName(error.params.allowedValue),
        constant: { value: error.params.allowedValue },
      });
    } else if (error.keyword === "anyOf") {
      for (const branch of branches) {
        const inner = kindsOf(branch, path);
        if (inner === null) return null;
        kinds.push(...inner);
      }
    } else return null;
  }
  return kinds;
}

function problemsOf(nodes: Node[], part: string): ValidationProblem[] {
  return nodes.flatMap((node): ValidationProblem[] => {
    const { error } = node;
    const path = `${part}${error.instancePath}`;
    const annotated = error.errorCode === undefined ? {} : { code: error.errorCode };
    if (error.keyword !== "anyOf") {
      return [{ path, message: error.errorMessage ?? wording(error), ...annotated }];
    }
    const kinds = node.branches.map((branch) => kindsOf(branch, error.instancePath));
    const matched = node.branches.filter((_, i) => kinds[i] === null);
    if (matched.length === 0) {
      const all = (kinds as Kind[][]).flat();
      const allowed = all.every((k) => k.constant) ? { allowed: all.map((k) => k.constant?.value) } : {};
      return [{ path, message: error.errorMessage ?? mustBe(all), ...allowed, ...annotated }];
    }
    // The branch that got furthest into the value describes the problem best.
    const best = matched.reduce((a, b) => (depth(b) > depth(a) ? b : a));
    if (error.errorMessage !== undefined && depth(best) <= segments(error.instancePath)) {
      return [{ path, message: error.errorMessage, ...annotated }];
    }
    return problemsOf(best, part);
  });
}

function depth(nodes: Node[]): number {
  return Math.max(
    ...nodes.map(({ error, branches }) =>
      Math.max(segments(error.instancePath), ...branches.map((branch) => depth(branch))),
    ),
  );
}

function segments(pointer: string): number {
  return pointer === "" ? 0 : pointer.split("/").length - 1;
}

function mustBe(kinds: Kind[]): string {
  const labels = [...new Set(kinds.map((k) => k.label))];
  if (labels.length === 1) return `must be ${labels[0]}`;
  if (kinds.every((k) => k.constant)) return `must be one of: ${labels.join(", ")}`;
  return `must be ${labels.slice(0, -1).join(", ")} or ${labels[labels.length - 1]}`;
}

/** The validator's message, with type names in plain English. */
function wording(error: RawValidationError): string {
  if (error.keyword === "type") return `must be ${typeName(error.params.type)}`;
  if (error.keyword === "const") return `must be ${constName(error.params.allowedValue)}`;
  return error.message ?? "is invalid";
}

function typeName(type: unknown): string {
  switch (type) {
    case "integer":
      return "an integer";
    case "array":
      return "an array";
    case "object":
      return "an object";
    case "null":
      return "null";
    default:
      return `a ${String(type)}`;
  }
}

function constName(value: unknown): string {
  return typeof value === "string" ? value : JSON.stringify(value);
}
