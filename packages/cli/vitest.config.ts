import { mergeConfig } from "vitest/config"
import shared from "../../vitest.shared"

// Each test runs the CLI as a subprocess, some of them five times (about 2 s of
// CPU each): on a loaded 2-core machine that outgrows the shared 30 s limit.
export default mergeConfig(shared, { test: { name: "cli", testTimeout: 120_000 } })
