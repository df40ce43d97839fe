import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"

/** The built CLI, as users run it (`npm test` builds before testing). */
export const cliPath = fileURLToPath(new URL("../bin/nixfx.js", import.meta.url))
export const fixturesDir = fileURLToPath(new URL("../../../fixtures/", import.meta.url))

export interface CliResult {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs `nixfx ARGS…` as a subprocess, feeding `stdin` if given. */
export const runCli = (args: ReadonlyArray<string>, options: { readonly stdin?: string | Uint8Array; readonly env?: Record<string, string> } = {}): Promise<CliResult> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliPath, ...args], {
      env: { ...process.env, NO_COLOR: "1", ...options.env },
      stdio: ["pipe", "pipe", "pipe"]
    })
    const stdout: Array<Buffer> = []
    const stderr: Array<Buffer> = []
    child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk))
    child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk))
    child.on("error", reject)
    child.on("close", (code) =>
      resolve({ code, stdout: Buffer.concat(stdout).toString("utf8"), stderr: Buffer.concat(stderr).toString("utf8") })
    )
    child.stdin.on("error", () => {}) // the CLI may exit before reading all of stdin
    child.stdin.end(options.stdin ?? "")
  })

/** A long-running `nixfx …` (a server): the first line it prints, its exit, its stderr so far. */
export interface Started {
  readonly child: ReturnType<typeof spawn>
  readonly firstLine: Promise<string>
  readonly exited: Promise<number | null>
  readonly stderr: () => string
}

/** Starts `nixfx ARGS…` and resolves `firstLine` with the first line of its stdout. */
export const startCli = (args: ReadonlyArray<string>, options: { readonly env?: Record<string, string> } = {}): Started => {
  const child = spawn(process.execPath, [cliPath, ...args], {
    env: { ...process.env, NO_COLOR: "1", ...options.env },
    stdio: ["ignore", "pipe", "pipe"]
  })
  let stderr = ""
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()))
  const firstLine = new Promise<string>((resolve, reject) => {
    let stdout = ""
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString()
      const newline = stdout.indexOf("\n")
      if (newline >= 0) resolve(stdout.slice(0, newline))
    })
    child.on("exit", (code) => reject(new Error(`nixfx ${args.join(" ")} exited with ${code}: ${stderr}`)))
  })
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
  return { child, firstLine, exited, stderr: () => stderr }
}
