import { mergeConfig } from "vitest/config"
import shared from "../vitest.shared"

// The examples run in CI: each program is run by test/examples.test.ts; the
// conformance-suite example is itself a test file.
export default mergeConfig(shared, { test: { name: "examples", include: ["*.test.ts", "test/**/*.test.ts"] } })
