import * as path from "node:path"
import { fileURLToPath } from "node:url"
import type { ViteUserConfig } from "vitest/config"

const root = path.dirname(fileURLToPath(import.meta.url))

// Tests run on the TypeScript sources: `@nixfx/<pkg>` and `@nixfx/<pkg>/<Module>`
// resolve to `packages/<pkg>/src/…` instead of the built `dist/`.
const config: ViteUserConfig = {
  resolve: {
    alias: [
      { find: /^@nixfx\/([^/]+)$/, replacement: path.join(root, "packages/$1/src/index.ts") },
      { find: /^@nixfx\/([^/]+)\/(.+)$/, replacement: path.join(root, "packages/$1/src/$2.ts") }
    ]
  },
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    sequence: { concurrent: false }
  }
}

export default config
