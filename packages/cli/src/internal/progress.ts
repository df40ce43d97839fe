/**
 * A one-line progress display on stderr when it is a terminal (paths
 * done/total, bytes, rate); silent when stderr is a pipe or a file.
 */
export interface Progress {
  planned(paths: number, bytes: number): void
  advance(paths: number, bytes: number): void
  done(): void
}

const units = ["B", "KiB", "MiB", "GiB", "TiB"]
export const formatBytes = (bytes: number): string => {
  let value = bytes
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`
}

export const makeProgress = (label: string, stream: NodeJS.WriteStream = process.stderr): Progress => {
  if (!stream.isTTY) {
    return { planned: () => {}, advance: () => {}, done: () => {} }
  }
  const started = Date.now()
  let totalPaths = 0
  let totalBytes = 0
  let donePaths = 0
  let doneBytes = 0
  let lastDraw = 0
  const draw = (force: boolean) => {
    const now = Date.now()
    if (!force && now - lastDraw < 100) return
    lastDraw = now
    const seconds = Math.max((now - started) / 1000, 0.001)
    const line = `${label}: ${donePaths}/${totalPaths} paths, ${formatBytes(doneBytes)}/${formatBytes(totalBytes)}, ${formatBytes(doneBytes / seconds)}/s`
    stream.write(`\r\x1b[K${line}`)
  }
  return {
    planned: (paths, bytes) => {
      totalPaths += paths
      totalBytes += bytes
      draw(true)
    },
    advance: (paths, bytes) => {
      donePaths += paths
      doneBytes += bytes
      draw(false)
    },
    done: () => {
      draw(true)
      stream.write("\n")
    }
  }
}
