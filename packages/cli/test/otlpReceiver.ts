import * as http from "node:http"
import type { AddressInfo } from "node:net"

/** One POST the receiver got. */
export interface OtlpRequest {
  readonly path: string
  readonly contentType: string
  readonly body: Buffer
}

/** A span as OTLP/JSON carries it, with its attributes as a plain record. */
export interface ReceivedSpan {
  readonly traceId: string
  readonly spanId: string
  readonly parentSpanId: string | undefined
  readonly name: string
  readonly attributes: Record<string, unknown>
  readonly serviceName: unknown
}

type AnyValue = {
  stringValue?: string
  intValue?: number | string
  doubleValue?: number
  boolValue?: boolean
  arrayValue?: { values?: Array<AnyValue> }
}
const valueOf = (value: AnyValue): unknown =>
  value.arrayValue !== undefined
    ? (value.arrayValue.values ?? []).map(valueOf)
    : value.stringValue ?? (value.intValue !== undefined ? Number(value.intValue) : undefined) ?? value.doubleValue ??
      value.boolValue
const attributesOf = (list: ReadonlyArray<{ key: string; value: AnyValue }> | undefined) =>
  Object.fromEntries((list ?? []).map(({ key, value }) => [key, valueOf(value)]))

/**
 * A minimal OpenTelemetry collector on 127.0.0.1: accepts OTLP/HTTP POSTs
 * (JSON or protobuf), answers 200, and keeps every request.
 */
export const startOtlpReceiver = async () => {
  const requests: Array<OtlpRequest> = []
  const server = http.createServer((request, response) => {
    const chunks: Array<Buffer> = []
    request.on("data", (chunk: Buffer) => chunks.push(chunk))
    request.on("end", () => {
      requests.push({
        path: request.url ?? "",
        contentType: request.headers["content-type"] ?? "",
        body: Buffer.concat(chunks)
      })
      response.writeHead(200, { "content-type": "application/json" }).end("{}")
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    /** Every span of the OTLP/JSON requests received so far. */
    spans: (): Array<ReceivedSpan> =>
      requests.flatMap((r) => {
        const data = JSON.parse(r.body.toString("utf8"))
        return data.resourceSpans.flatMap((rs: any) => {
          const serviceName = attributesOf(rs.resource?.attributes)["service.name"]
          return rs.scopeSpans.flatMap((ss: any) =>
            ss.spans.map((span: any): ReceivedSpan => ({
              traceId: span.traceId,
              spanId: span.spanId,
              parentSpanId: span.parentSpanId === "" ? undefined : span.parentSpanId,
              name: span.name,
              attributes: attributesOf(span.attributes),
              serviceName
            }))
          )
        })
      }),
    close: () => new Promise<void>((resolve) => server.close(() => resolve()))
  }
}
