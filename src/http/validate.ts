import { zValidator } from "@hono/zod-validator";
import type { ValidationTargets } from "hono";
import type { ZodType } from "zod";
import { ProblemError } from "./problem.ts";

/**
 * zValidator whose failures go through the one error path: a `validation_failed` problem that
 * lists each invalid field. Values are never echoed back, since a body may hold a secret.
 */
export function validate<Target extends keyof ValidationTargets, Schema extends ZodType>(
  target: Target,
  schema: Schema,
) {
  return zValidator(target, schema, (result) => {
    if (!result.success) {
      const errors = result.error.issues.map((issue) => ({
        path: issue.path.join("."),
        message: issue.message,
      }));
      throw new ProblemError("validation_failed", {
        detail: errors.map((error) => `${error.path || target}: ${error.message}`).join("; "),
        extensions: { errors },
      });
    }
  });
}
