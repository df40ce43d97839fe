import { Console, Effect, Schema } from "effect"

/**
 * Prints `value` as one line of JSON on stdout, encoded by the Schema that
 * defines the command's output: the documented shape and the printed one
 * cannot drift apart. A value the Schema rejects is a bug (a defect).
 */
export const printJson = <A, I>(schema: Schema.Schema<A, I>, value: A): Effect.Effect<void> =>
  Schema.encode(Schema.parseJson(schema))(value).pipe(Effect.orDie, Effect.flatMap(Console.log))
