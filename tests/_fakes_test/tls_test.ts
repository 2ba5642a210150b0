/** @module Self-test of the test CA: certificates chain to it and carry the asked names. */

import assert from "node:assert/strict";
import { makeTestCa } from "../_fakes/tls.ts";
import { describe } from "./_openssl.ts";

Deno.test("issue() lists DNS names and IP literals in subjectAltName", async () => {
  const ca = await makeTestCa();
  try {
    const { certPem, keyPem } = await ca.issue([
      "example.test",
      "127.0.0.1",
      "::1",
    ]);
    assert.match(keyPem, /-----BEGIN PRIVATE KEY-----/);
    const text = await describe(certPem);
    assert.match(
      text,
      /DNS:example\.test, IP Address:127\.0\.0\.1, IP Address:0:0:0:0:0:0:0:1/,
    );
    assert.match(text, /CA:FALSE/);
    assert.match(await describe(ca.caPem), /CA:TRUE/);
    assert.equal(await Deno.readTextFile(ca.caFile), ca.caPem);
  } finally {
    await ca.cleanup();
  }
});

/** Serves TLS on 127.0.0.1 with `cert` and tries one handshake as a client trusting `caPem`. */
async function handshake(
  cert: { certPem: string; keyPem: string },
  caPem: string,
): Promise<void> {
  const listener = Deno.listenTls({
    hostname: "127.0.0.1",
    port: 0,
    cert: cert.certPem,
    key: cert.keyPem,
  });
  const served = (async () => {
    const conn = await listener.accept();
    await conn.handshake().catch(() => {});
    conn.close();
  })();
  try {
    const conn = await Deno.connectTls({
      hostname: "127.0.0.1",
      port: listener.addr.port,
      caCerts: [caPem],
    });
    try {
      await conn.handshake();
    } finally {
      conn.close();
    }
  } finally {
    await served;
    listener.close();
  }
}

Deno.test("issue() makes a certificate that a client trusting the CA accepts", async () => {
  const ca = await makeTestCa();
  try {
    await handshake(await ca.issue(["localhost", "127.0.0.1"]), ca.caPem);
  } finally {
    await ca.cleanup();
  }
});

Deno.test("issue() certificates are refused for a name they do not list", async () => {
  const ca = await makeTestCa();
  try {
    await assert.rejects(
      handshake(await ca.issue(["example.test"]), ca.caPem),
      /NotValidForName|not valid for/i,
    );
  } finally {
    await ca.cleanup();
  }
});

Deno.test("issue() certificates are refused by a client not trusting the CA", async () => {
  const ca = await makeTestCa();
  const other = await makeTestCa();
  try {
    await assert.rejects(
      handshake(await ca.issue(["127.0.0.1"]), other.caPem),
      /UnknownIssuer|BadSignature|invalid peer certificate/i,
    );
  } finally {
    await ca.cleanup();
    await other.cleanup();
  }
});

Deno.test("issue() rejects a name that cannot go into a certificate", async () => {
  const ca = await makeTestCa();
  try {
    await assert.rejects(
      ca.issue(["bad name,DNS:evil"]),
      { message: 'cannot put "bad name,DNS:evil" in a test certificate' },
    );
  } finally {
    await ca.cleanup();
  }
});
