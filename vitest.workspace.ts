import { defineWorkspace } from "vitest/config"

// One project per package; each package's vitest.config.ts extends vitest.shared.ts.
export default defineWorkspace(["packages/*"])
