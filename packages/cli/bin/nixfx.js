#!/usr/bin/env node
// The `nixfx` executable: a committed, already-executable shim, so that npm can
// link it before the root `prepare` script has built and bundled the CLI
// (scripts/bundle-cli.js explains the bundle).
import "../bundle/nixfx.mjs"
