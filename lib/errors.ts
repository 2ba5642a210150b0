/** @module Matrix-style errors and the one place that turns them into responses. */

/** An error answered to the client as `{"errcode", "error"}` with an HTTP status. */
export class MatrixError extends Error {
  readonly status: number;
  readonly errcode: string;
  readonly headers: Record<string, string>;

  constructor(
    status: number,
    errcode: string,
    message: string,
    headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "MatrixError";
    this.status = status;
    this.errcode = errcode;
    this.headers = headers;
  }
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
  return JSON.stringify({ errcode: err.errcode, error: err.message });
}
