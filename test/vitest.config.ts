import { mergeConfig } from "vitest/config"
import shared from "../vitest.shared"

// The repository-wide hostile-input corpus tests (issue 9): every decoder and
// service of every package meets test/hostile/.
export default mergeConfig(shared, { test: { name: "hostile", include: ["*.test.ts"], testTimeout: 120_000 } })
