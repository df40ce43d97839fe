/**
 * OpenTelemetry tracing, configured by the standard `OTEL_*` environment
 * variables, on only when an OTLP endpoint is set. The exporter (OTLP over
 * HTTP, protobuf or JSON) is @effect/opentelemetry's Effect-native one,
 * without the OpenTelemetry SDK: it adds about 25 kB to the bundle, less than
 * loading it on demand would (esbuild cannot tree-shake what a dynamic
 * import reaches), so it is imported statically and only built when needed.
 */
import * as OtlpSerialization from "@effect/opentelemetry/OtlpSerialization"
import * as OtlpTracer from "@effect/opentelemetry/OtlpTracer"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { Config, Effect, Layer, Option } from "effect"
import { CommandFailed, ExitCode } from "./failure.js"

export type Protocol = "http/protobuf" | "http/json"

export interface TracingConfig {
  /** Where trace batches are POSTed. */
  readonly url: string
  readonly protocol: Protocol
  readonly headers: Record<string, string>
  readonly serviceName: string
}

const usage = (variable: string, detail: string) =>
  new CommandFailed({ message: `${variable}: ${detail}`, exitCode: ExitCode.Usage })

const variable = (name: string): Effect.Effect<Option.Option<string>, CommandFailed> =>
  Config.option(Config.string(name)).pipe(
    Effect.map(Option.filter((value) => value.trim() !== "")),
    Effect.mapError((error) => usage(name, error.message))
  )

/** The first of `names` that is set, with its name. */
const firstOf = (...names: ReadonlyArray<string>) =>
  Effect.reduce(names, Option.none<readonly [string, string]>(), (found, name) =>
    Option.isSome(found) ? Effect.succeed(found) : Effect.map(variable(name), Option.map((value) => [name, value] as const)))

const checkUrl = (name: string, url: string) =>
  Effect.try({
    try: () => {
      const parsed = new URL(url)
      if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw new Error(`expected http:// or https://`)
      return url
    },
    catch: (e) => usage(name, `${e instanceof Error ? e.message : String(e)}, got ${JSON.stringify(url)}`)
  })

/** `OTEL_EXPORTER_OTLP_HEADERS` format: `key=value,key2=value2`, values URL-encoded. */
const parseHeaders = (name: string, text: string) =>
  Effect.forEach(text.split(",").filter((entry) => entry.trim() !== ""), (entry) => {
    const equals = entry.indexOf("=")
    const bad = () => usage(name, `expected key=value pairs separated by commas, values URL-encoded, got ${JSON.stringify(entry)}`)
    return equals <= 0
      ? Effect.fail(bad())
      : Effect.try({
        try: () => [entry.slice(0, equals).trim(), decodeURIComponent(entry.slice(equals + 1).trim())] as const,
        catch: bad
      })
  }).pipe(Effect.map(Object.fromEntries<string>))

/**
 * The tracing configuration from the environment, `None` when tracing is
 * off: no `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used as it is) nor
 * `OTEL_EXPORTER_OTLP_ENDPOINT` (`/v1/traces` appended, as the OTLP spec
 * says), or `OTEL_SDK_DISABLED=true`, or `OTEL_TRACES_EXPORTER=none`.
 */
export const configFromEnvironment: Effect.Effect<Option.Option<TracingConfig>, CommandFailed> = Effect.gen(
  function*() {
    const disabled = yield* variable("OTEL_SDK_DISABLED")
    if (Option.exists(disabled, (value) => value.trim().toLowerCase() === "true")) return Option.none()
    const exporter = yield* variable("OTEL_TRACES_EXPORTER")
    if (Option.isSome(exporter)) {
      const name = exporter.value.trim().toLowerCase()
      if (name === "none") return Option.none()
      if (name !== "otlp") return yield* usage("OTEL_TRACES_EXPORTER", `only otlp and none are supported, got ${JSON.stringify(exporter.value)}`)
    }
    const tracesEndpoint = yield* variable("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    const baseEndpoint = yield* variable("OTEL_EXPORTER_OTLP_ENDPOINT")
    let url: string
    if (Option.isSome(tracesEndpoint)) {
      url = yield* checkUrl("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", tracesEndpoint.value.trim())
    } else if (Option.isSome(baseEndpoint)) {
      const base = yield* checkUrl("OTEL_EXPORTER_OTLP_ENDPOINT", baseEndpoint.value.trim())
      url = `${base.replace(/\/+$/, "")}/v1/traces`
    } else {
      return Option.none()
    }
    const protocolSetting = yield* firstOf("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
    let protocol: Protocol = "http/protobuf"
    if (Option.isSome(protocolSetting)) {
      const [name, value] = protocolSetting.value
      const chosen = value.trim().toLowerCase()
      if (chosen !== "http/protobuf" && chosen !== "http/json") {
        return yield* usage(name, `only http/protobuf and http/json are supported (OTLP over HTTP, port 4318), got ${JSON.stringify(value)}`)
      }
      protocol = chosen
    }
    const headersSetting = yield* firstOf("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS")
    const headers = Option.isSome(headersSetting)
      ? yield* parseHeaders(headersSetting.value[0], headersSetting.value[1])
      : {}
    const serviceName = Option.getOrElse(yield* variable("OTEL_SERVICE_NAME"), () => "nixfx")
    return Option.some({ url, protocol, headers, serviceName })
  }
)

/**
 * A tracer exporting every span over OTLP/HTTP when the environment
 * configures an endpoint; nothing otherwise. Spans still buffered when the
 * program ends are sent before it exits (waiting at most a few seconds for
 * an unreachable collector).
 */
export const layer = (serviceVersion: string): Layer.Layer<never, CommandFailed> =>
  Layer.unwrapEffect(
    Effect.map(configFromEnvironment, Option.match({
      onNone: () => Layer.empty,
      onSome: (config) => exporterLayer(config, serviceVersion)
    }))
  )

const exporterLayer = (config: TracingConfig, serviceVersion: string): Layer.Layer<never> =>
  OtlpTracer.layer({
    url: config.url,
    headers: config.headers,
    resource: { serviceName: config.serviceName, serviceVersion },
    shutdownTimeout: "3 seconds"
  }).pipe(
    Layer.provide(config.protocol === "http/json" ? OtlpSerialization.layerJson : OtlpSerialization.layerProtobuf),
    Layer.provide(NodeHttpClient.layerUndici)
  )
