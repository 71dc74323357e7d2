import type { FastifySchemaCompiler } from "fastify";
import type { TSchema } from "typebox";
import { Compile } from "typebox/compile";
import { annotationsAt, completeUnions, type RawValidationError } from "./validation-problems.js";

/** Integers as a URL carries them: plain decimal digits, no sign tricks, no exponent. */
const INTEGER_TEXT = /^-?(?:0|[1-9][0-9]*)$/;
/** Decimal numbers; an exponent too, since clients print small floats that way (`1e-05`). */
const NUMBER_TEXT = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$/;

/**
 * Validates every part of a request against its route schema. Bodies are checked as sent: a number
 * is never silently a string. URL parts (query string, path parameters, headers) arrive as text, so
 * a property declared as an integer or a number is converted only when its text is such a number,
 * and a boolean only from `true` or `false`; anything else (`true` for a number, `""`, `0x10`, `1.5`
 * for an integer, `1` for a boolean) stays text and fails the check with a message naming the
 * field. The type provider's own compiler converts loosely (`limit=true` became 1).
 *
 * Failed checks carry the failing schema node's annotations (`x-error-code`, `x-error-message`) so
 * the error handler can give them their stable code and a readable message.
 */
export const strictValidatorCompiler: FastifySchemaCompiler<TSchema> = ({ schema, httpPart }) => {
  const check = Compile(schema);
  return (value) => {
    const converted = httpPart === "body" ? value : convertUrlNumbers(schema, value);
    if (check.Check(converted)) return { value: converted };
    // A node's annotations describe its rule (a pattern, a minimum count), not a value of the wrong type.
    const errors = completeUnions(check.Errors(converted)).map(
      (error): RawValidationError =>
        error.keyword === "type" ? error : { ...error, ...annotationsAt(schema, error.schemaPath) },
    );
    // Fastify reads `error` as the list of validation failures (its FastifySchemaValidationError[]).
    return { error: errors as never };
  };
};

/** A copy of a query/params/headers object with number-typed properties converted where exact. */
function convertUrlNumbers(schema: TSchema, value: unknown): unknown {
  const properties = (schema as { properties?: Record<string, { type?: unknown }> }).properties;
  if (properties === undefined || value === null || typeof value !== "object") return value;
  const converted: Record<string, unknown> = { ...(value as Record<string, unknown>) };
  for (const [key, text] of Object.entries(converted)) {
    const type = properties[key]?.type;
    if (typeof text !== "string") continue;
    if ((type === "integer" && INTEGER_TEXT.test(text)) || (type === "number" && NUMBER_TEXT.test(text))) {
      converted[key] = Number(text);
    } else if (type === "boolean" && (text === "true" || text === "false")) {
      converted[key] = text === "true";
    }
  }
  return converted;
}
