#!/usr/bin/env node
// Prints the one closing line CI systems read ("N passed, N failed, N skipped")
// from vitest's JSON report (written by `npm test` to build/vitest-results.json).
import { readFileSync } from "node:fs"

const file = process.argv[2] ?? "build/vitest-results.json"
let report
try {
  report = JSON.parse(readFileSync(file, "utf8"))
} catch (error) {
  console.error(`test-summary: cannot read ${file}: ${error.message}`)
  process.exit(1)
}
const skipped = report.numPendingTests + report.numTodoTests
console.log(`vitest: ${report.numPassedTests} passed, ${report.numFailedTests} failed, ${skipped} skipped`)
