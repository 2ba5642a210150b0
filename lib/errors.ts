/** @module Matrix-style errors and the one place that turns them into responses. */

/** An error answered to the client as `{"errcode", "error"}` with an HTTP status. */
export class MatrixError extends Error {
  readonly status: number;
  readonly errcode: string;
  readonly headers: Record<string, string>;
  /** More fields of the body, e.g. `retry_after_ms`. */
  readonly fields: Record<string, unknown>;

  constructor(
    status: number,
    errcode: string,
    message: string,
    options: {
      headers?: Record<string, string>;
      fields?: Record<string, unknown>;
    } = {},
  ) {
    super(message);
    this.name = "MatrixError";
    this.status = status;
    this.errcode = errcode;
    this.headers = options.headers ?? {};
    this.fields = options.fields ?? {};
  }
}

/**
 * An answer telling the client to come back later: `Retry-After` in whole
 * seconds and, for 429, `retry_after_ms` as the Matrix spec has it.
 */
export function retryLater(
  status: 429 | 503,
  errcode: string,
  message: string,
  retryAfterMs: number,
): MatrixError {
  const seconds = Math.max(1, Math.ceil(retryAfterMs / 1000));
  return new MatrixError(status, errcode, message, {
    headers: { "Retry-After": String(seconds) },
    fields: status === 429
      ? { retry_after_ms: Math.max(1, Math.ceil(retryAfterMs)) }
      : {},
  });
}

/** 400 `M_NOT_JSON`, the answer to any body that does not match the endpoint's shape. */
export function notJson(): MatrixError {
  return new MatrixError(400, "M_NOT_JSON", "Error reading request");
}

/** 400 `M_BAD_JSON` with a message saying which field is wrong. */
export function badJson(message: string): MatrixError {
  return new MatrixError(400, "M_BAD_JSON", message);
}

/** 401 `M_UNAUTHORIZED`: every OpenID failure looks the same to the client. */
export function unauthorized(): MatrixError {
  return new MatrixError(
    401,
    "M_UNAUTHORIZED",
    "The request could not be authorised.",
  );
}

/** Serialises a Matrix error body. */
export function matrixErrorBody(err: MatrixError): string {
  return JSON.stringify({
    errcode: err.errcode,
    error: err.message,
    ...err.fields,
  });
}
