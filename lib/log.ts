/**
 * @module Structured logs to stderr (SPEC section 13) on LogTape: one event a
 * line, logfmt text by default or one JSON object per line.
 */

import { AsyncLocalStorage } from "node:async_hooks";
import {
  configure,
  getLogger,
  type Logger,
  type LogLevel as LogTapeLevel,
  type LogRecord,
  reset,
} from "@logtape/logtape";
import type { LogFormat, LogLevel } from "./config.ts";

export type { Logger };

/** The category every log line of the service carries. */
export const LOG_CATEGORY = ["lk-jwt-service"];

const LEVEL_NAMES: Record<LogTapeLevel, string> = {
  trace: "trace",
  debug: "debug",
  info: "info",
  warning: "warn",
  error: "error",
  fatal: "fatal",
};

/** `time=… level=info msg="…" key=value …`, values quoted when they need it. */
export function formatText(record: LogRecord): string {
  const fields = [
    `time=${new Date(record.timestamp).toISOString()}`,
    `level=${LEVEL_NAMES[record.level]}`,
    `msg=${logfmtValue(renderMessage(record))}`,
  ];
  for (const [key, value] of Object.entries(record.properties)) {
    if (value === undefined) continue;
    fields.push(`${key}=${logfmtValue(value)}`);
  }
  return fields.join(" ") + "\n";
}

/** One JSON object a line: `time`, `level`, `msg` and the fields. */
export function formatJson(record: LogRecord): string {
  return JSON.stringify({
    time: new Date(record.timestamp).toISOString(),
    level: LEVEL_NAMES[record.level],
    msg: renderMessage(record),
    ...record.properties,
  }) + "\n";
}

function renderMessage(record: LogRecord): string {
  return record.message.map((part) =>
    typeof part === "string" ? part : String(part)
  ).join("");
}

function logfmtValue(value: unknown): string {
  const text = value instanceof Error
    ? value.message
    : typeof value === "string"
    ? value
    : JSON.stringify(value) ?? String(value);
  return /^[^\s"=\\]+$/.test(text) ? text : JSON.stringify(text);
}

export interface LoggingOptions {
  level: LogLevel;
  format: LogFormat;
  /** Where lines go; stderr by default. */
  write?: (line: string) => void;
}

/** Configures LogTape for the process and returns the service's logger. */
export async function setupLogging(options: LoggingOptions): Promise<Logger> {
  const encoder = new TextEncoder();
  const write = options.write ??
    ((line: string) => writeAll(encoder.encode(line)));
  const format = options.format === "json" ? formatJson : formatText;
  await reset();
  await configure({
    // Carries the request ID to every line logged while answering a request.
    contextLocalStorage: new AsyncLocalStorage(),
    sinks: { stderr: (record) => write(format(record)) },
    loggers: [
      {
        category: LOG_CATEGORY,
        lowestLevel: options.level,
        sinks: ["stderr"],
      },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: [] },
    ],
  });
  return getLogger(LOG_CATEGORY);
}

function writeAll(bytes: Uint8Array): void {
  let written = 0;
  while (written < bytes.length) {
    written += Deno.stderr.writeSync(bytes.subarray(written));
  }
}
