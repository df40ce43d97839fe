#!/usr/bin/env node
// The `nixfx` executable: a committed, already-executable shim so that npm can
// link it before `tsc -b` has produced dist/ (npm ci links bins first, then runs
// the root `prepare` script that builds).
import "../dist/bin.js"
