import { defineWorkspace } from "vitest/config"

// One project per package (each package's vitest.config.ts extends
// vitest.shared.ts), and the examples, which run in CI too; "test" holds the
// hostile-input corpus tests that span packages.
export default defineWorkspace(["packages/*", "examples", "test"])
