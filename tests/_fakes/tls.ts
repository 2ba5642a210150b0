/** @module A throw-away certificate authority made at test time with the `openssl` CLI. */

/** A test CA whose files live in a temporary folder. */
export interface TestCa {
  /** The CA certificate, PEM; give it to clients as a trust anchor. */
  caPem: string;
  /** Path of a file holding `caPem` (for `DENO_CERT` / `--cert`). */
  caFile: string;
  /** The temporary folder holding the CA's files. */
  dir: string;
  /**
   * Issues a server certificate, valid 2 days, whose subjectAltName lists
   * every name: `IP:` for IP literals (`127.0.0.1`, `::1`, `[::1]`), `DNS:`
   * for everything else.
   */
  issue(names: string[]): Promise<{ certPem: string; keyPem: string }>;
  /** Removes `dir` and everything in it. */
  cleanup(): Promise<void>;
}

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

/** Runs openssl in `cwd`; a failure throws with openssl's own message. */
async function openssl(cwd: string, args: string[]): Promise<void> {
  const out = await new Deno.Command("openssl", {
    args,
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    const stderr = new TextDecoder().decode(out.stderr).trim();
    throw new Error(`openssl ${args[0]} failed (code ${out.code}): ${stderr}`);
  }
}

/** One subjectAltName entry; rejects names that would break the config file. */
function altName(name: string): string {
  if (!/^[A-Za-z0-9.*:\[\]_-]+$/.test(name)) {
    throw new Error(`cannot put "${name}" in a test certificate`);
  }
  const bare = name.startsWith("[") && name.endsWith("]")
    ? name.slice(1, -1)
    : name;
  return IPV4.test(bare) || bare.includes(":") ? `IP:${bare}` : `DNS:${bare}`;
}

/** Random serial so two leaves of one CA never share one (rustls checks). */
function serial(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[0] = (bytes[0] ?? 0) & 0x7f; // keep it positive
  return "0x" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(
    "",
  );
}

/**
 * Makes a new EC P-256 CA in a fresh temporary folder. Call `cleanup()`
 * when done to remove the folder.
 */
export async function makeTestCa(): Promise<TestCa> {
  const dir = await Deno.makeTempDir({ prefix: "lk-jwt-test-ca-" });
  // Our own config, so the result does not depend on the system openssl.cnf.
  await Deno.writeTextFile(
    `${dir}/ca.cnf`,
    [
      "[req]",
      "distinguished_name = dn",
      "prompt = no",
      "[dn]",
      "CN = lk-jwt-service test CA",
      "[v3_ca]",
      "basicConstraints = critical, CA:TRUE",
      "keyUsage = critical, keyCertSign, cRLSign",
      "subjectKeyIdentifier = hash",
      "",
    ].join("\n"),
  );
  await openssl(dir, [
    "req",
    "-x509",
    "-new",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-sha256",
    "-days",
    "2",
    "-config",
    "ca.cnf",
    "-extensions",
    "v3_ca",
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
    "-set_serial",
    serial(),
  ]);
  const caFile = `${dir}/ca.pem`;
  const caPem = await Deno.readTextFile(caFile);
  let count = 0;

  async function issue(
    names: string[],
  ): Promise<{ certPem: string; keyPem: string }> {
    if (names.length === 0) throw new Error("issue() needs at least one name");
    const sans = [...new Set(names.map(altName))].join(", ");
    const n = ++count;
    await Deno.writeTextFile(
      `${dir}/leaf${n}.cnf`,
      [
        "[req]",
        "distinguished_name = dn",
        "prompt = no",
        "[dn]",
        "CN = lk-jwt-service test server",
        "[ext]",
        "basicConstraints = critical, CA:FALSE",
        "keyUsage = critical, digitalSignature",
        "extendedKeyUsage = serverAuth",
        "authorityKeyIdentifier = keyid",
        `subjectAltName = ${sans}`,
        "",
      ].join("\n"),
    );
    await openssl(dir, [
      "req",
      "-new",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-config",
      `leaf${n}.cnf`,
      "-keyout",
      `leaf${n}.key`,
      "-out",
      `leaf${n}.csr`,
    ]);
    await openssl(dir, [
      "x509",
      "-req",
      "-sha256",
      "-days",
      "2",
      "-in",
      `leaf${n}.csr`,
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-set_serial",
      serial(),
      "-extfile",
      `leaf${n}.cnf`,
      "-extensions",
      "ext",
      "-out",
      `leaf${n}.pem`,
    ]);
    return {
      certPem: await Deno.readTextFile(`${dir}/leaf${n}.pem`),
      keyPem: await Deno.readTextFile(`${dir}/leaf${n}.key`),
    };
  }

  return {
    caPem,
    caFile,
    dir,
    issue,
    cleanup: () => Deno.remove(dir, { recursive: true }),
  };
}
