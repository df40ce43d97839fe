#!/usr/bin/env node
// Bundles the built CLI (packages/cli/dist/bin.js) into one ESM file.
//
// Why: loading effect, @effect/* and our packages as ~1,000 separate ES modules
// made `nixfx --version` cost ~2 s of CPU on this machine; one file costs about a
// third of that. Only effect, @effect/* and @nixfx/* are inlined; every other
// package (native addons, drivers) is loaded from node_modules as usual.
import * as esbuild from "esbuild"

const inlined = /^(effect|@effect\/[^/]+|@nixfx\/[^/]+)(\/|$)/

await esbuild.build({
  entryPoints: [new URL("../packages/cli/dist/bin.js", import.meta.url).pathname],
  outfile: new URL("../packages/cli/bundle/nixfx.mjs", import.meta.url).pathname,
  bundle: true,
  platform: "node",
  target: "node20",
  format: "esm",
  sourcemap: "linked",
  logLevel: "warning",
  // Inlined CommonJS code may call require(); give the ESM bundle one.
  banner: { js: "import { createRequire as __nixfxCreateRequire } from 'node:module'; const require = __nixfxCreateRequire(import.meta.url);" },
  plugins: [{
    name: "external-unless-inlined",
    setup(build) {
      build.onResolve({ filter: /^[^./]/ }, (args) =>
        args.path.startsWith("node:") || !inlined.test(args.path) ? { path: args.path, external: true } : undefined
      )
    }
  }]
})
