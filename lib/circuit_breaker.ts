/**
 * @module One circuit breaker per homeserver: after enough consecutive
 * failures the circuit opens and requests for that homeserver are answered
 * at once; after a cool-down one trial call is let through, and its success
 * closes the circuit again.
 */

const MAX_CIRCUITS = 10_000;

export type CircuitState = "closed" | "open" | "halfOpen";

export interface CircuitBreakerOptions {
  /** Consecutive failures that open a circuit; 0 never opens one. */
  failureThreshold: number;
  cooldownMs: number;
  now?: () => number;
}

interface Circuit {
  failures: number;
  state: CircuitState;
  /** When an open circuit lets a trial through. */
  retryAt: number;
}

/** Thrown by {@link CircuitBreakers.admit} while a circuit is open. */
export class CircuitOpenError extends Error {
  readonly retryAfterMs: number;

  constructor(key: string, retryAfterMs: number) {
    super(`circuit for ${key} is open`);
    this.name = "CircuitOpenError";
    this.retryAfterMs = retryAfterMs;
  }
}

/** Circuits by key (a homeserver's server name). Closed circuits with no failures are not kept. */
export class CircuitBreakers {
  readonly #options: CircuitBreakerOptions;
  readonly #now: () => number;
  readonly #circuits = new Map<string, Circuit>();

  constructor(options: CircuitBreakerOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /** The state of `key`'s circuit. */
  state(key: string): CircuitState {
    return this.#circuits.get(key)?.state ?? "closed";
  }

  /** Lets a call through or throws {@link CircuitOpenError}; after the cool-down, one trial passes. */
  admit(key: string): void {
    const circuit = this.#circuits.get(key);
    if (circuit === undefined || circuit.state === "closed") return;
    const now = this.#now();
    if (circuit.state === "open" && now >= circuit.retryAt) {
      circuit.state = "halfOpen";
      return;
    }
    throw new CircuitOpenError(key, Math.max(0, circuit.retryAt - now));
  }

  /** A call answered: the circuit closes. */
  success(key: string): void {
    this.#circuits.delete(key);
  }

  /** A call failed: the circuit opens at the threshold, or again after a failed trial. */
  failure(key: string): void {
    const threshold = this.#options.failureThreshold;
    if (threshold === 0) return;
    const circuit = this.#circuits.get(key) ??
      { failures: 0, state: "closed" as CircuitState, retryAt: 0 };
    circuit.failures++;
    if (circuit.state === "halfOpen" || circuit.failures >= threshold) {
      circuit.state = "open";
      circuit.retryAt = this.#now() + this.#options.cooldownMs;
    }
    this.#circuits.delete(key);
    this.#circuits.set(key, circuit);
    // Bounded: server names come from clients; the oldest entry goes first.
    if (this.#circuits.size > MAX_CIRCUITS) {
      this.#circuits.delete(this.#circuits.keys().next().value!);
    }
  }

  /** How many circuits are not closed. */
  get openCount(): number {
    let count = 0;
    for (const circuit of this.#circuits.values()) {
      if (circuit.state !== "closed") count++;
    }
    return count;
  }
}
