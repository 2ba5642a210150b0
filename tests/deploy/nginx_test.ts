/**
 * Tests of deploy/nginx/lk-jwt-service.conf: nginx accepts it (with a test
 * certificate in place of the Let's Encrypt paths), and, run in front of a
 * stand-in upstream, it strips /livekit/jwt and serves the well-known
 * document, like deploy/Caddyfile.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  findTool,
  freePort,
  ROOT,
  run,
  startUpstream,
  testWith,
} from "./_tools.ts";

const CONF = join(ROOT, "deploy", "nginx", "lk-jwt-service.conf");
const nginx = findTool("nginx", {
  candidates: ["/usr/sbin/nginx"],
  install: "scripts/install/nginx.sh",
});
const openssl = findTool("openssl", { install: "apt-get install openssl" });

/** A CA and a certificate for localhost / 127.0.0.1 signed by it. */
async function makeCertificates(dir: string) {
  const ca = { key: join(dir, "ca.key"), cert: join(dir, "ca.pem") };
  const leaf = {
    key: join(dir, "leaf.key"),
    csr: join(dir, "leaf.csr"),
    cert: join(dir, "leaf.pem"),
  };
  const ext = join(dir, "leaf.ext");
  await Deno.writeTextFile(
    ext,
    "basicConstraints=critical,CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n",
  );
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
  const commands = [
    [
      "req",
      "-x509",
      ...ec,
      "-nodes",
      "-keyout",
      ca.key,
      "-out",
      ca.cert,
      "-days",
      "1",
      "-subj",
      "/CN=lk-jwt-service test CA",
    ],
    [
      "req",
      ...ec,
      "-nodes",
      "-keyout",
      leaf.key,
      "-out",
      leaf.csr,
      "-subj",
      "/CN=localhost",
    ],
    [
      "x509",
      "-req",
      "-in",
      leaf.csr,
      "-CA",
      ca.cert,
      "-CAkey",
      ca.key,
      "-CAcreateserial",
      "-days",
      "1",
      "-extfile",
      ext,
      "-out",
      leaf.cert,
    ],
  ];
  for (const args of commands) {
    const out = await run(openssl.path!, args, { cwd: dir });
    assert.equal(out.code, 0, `openssl ${args[0]} failed: ${out.stderr}`);
  }
  return { ca: ca.cert, cert: leaf.cert, key: leaf.key };
}

interface Ports {
  https: number;
  http: number;
  upstream: string;
}

/**
 * The shipped config with only what a test machine needs changed: listen on
 * loopback ports, a test certificate, and the upstream address.
 */
function adapt(
  conf: string,
  certs: { cert: string; key: string },
  ports: Ports,
) {
  const changed = conf
    .replace(/^\s*listen \[::\]:\d+.*$/gm, "")
    .replace(/listen 443 ssl http2;/, `listen 127.0.0.1:${ports.https} ssl;`)
    .replace(/listen 80;/, `listen 127.0.0.1:${ports.http};`)
    .replace(/ssl_certificate \S+;/, `ssl_certificate ${certs.cert};`)
    .replace(/ssl_certificate_key \S+;/, `ssl_certificate_key ${certs.key};`)
    .replace(/server 127\.0\.0\.1:8080;/, `server ${ports.upstream};`);
  assert.ok(
    changed.includes(certs.cert) && changed.includes(ports.upstream),
    "the config no longer has the lines this test adapts",
  );
  return changed;
}

/** nginx.conf that includes `site` in its http block, all state in `dir`. */
function mainConf(dir: string, site: string): string {
  return `daemon off;
master_process off;
pid ${join(dir, "nginx.pid")};
error_log ${join(dir, "error.log")} info;
events { worker_connections 64; }
http {
  access_log ${join(dir, "access.log")};
  client_body_temp_path ${join(dir, "body")};
  proxy_temp_path ${join(dir, "proxy")};
  fastcgi_temp_path ${join(dir, "fastcgi")};
  uwsgi_temp_path ${join(dir, "uwsgi")};
  scgi_temp_path ${join(dir, "scgi")};
  include ${site};
}
`;
}

async function nginxArgs(dir: string, site: string): Promise<string[]> {
  const main = join(dir, "nginx.conf");
  await Deno.writeTextFile(main, mainConf(dir, site));
  return ["-p", dir, "-e", join(dir, "error.log"), "-c", main];
}

// --- The file as shipped (no nginx needed). ---

Deno.test("the nginx config strips /livekit/jwt/ with a trailing-slash proxy_pass", async () => {
  const conf = await Deno.readTextFile(CONF);
  assert.match(
    conf,
    /location \^~ \/livekit\/jwt\/ \{\s*\n\s*proxy_pass http:\/\/lk_jwt_service\/;/,
  );
  assert.match(
    conf,
    /upstream lk_jwt_service \{\s*\n\s*server 127\.0\.0\.1:8080;/,
  );
});

Deno.test("the nginx config's well-known document names the LiveKit focus under /livekit/jwt", async () => {
  const conf = await Deno.readTextFile(CONF);
  const body = conf.match(/return 200 '([^']*)';/)?.[1];
  assert.ok(body, "no return 200 '...' in the config");
  assert.deepEqual(JSON.parse(body)["org.matrix.msc4143.rtc_foci"], [{
    type: "livekit",
    livekit_service_url: "https://matrix.example.com/livekit/jwt",
  }]);
  assert.match(conf, /add_header Access-Control-Allow-Origin "\*" always;/);
});

// --- nginx itself. ---

testWith(
  [nginx, openssl],
  "nginx -t accepts the config with a test certificate in place",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "lk-nginx-" });
    try {
      const certs = await makeCertificates(dir);
      const site = join(dir, "site.conf");
      // Only the certificate paths change: they must exist for nginx -t.
      await Deno.writeTextFile(
        site,
        (await Deno.readTextFile(CONF))
          .replace(/ssl_certificate \S+;/, `ssl_certificate ${certs.cert};`)
          .replace(
            /ssl_certificate_key \S+;/,
            `ssl_certificate_key ${certs.key};`,
          ),
      );
      const out = await run(nginx.path!, [
        "-t",
        ...(await nginxArgs(dir, site)),
      ]);
      assert.equal(out.code, 0, out.stderr);
      assert.match(out.stderr, /test is successful/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

/** nginx running the adapted config in front of a recording upstream. */
async function startStack() {
  const dir = await Deno.makeTempDir({ prefix: "lk-nginx-" });
  const certs = await makeCertificates(dir);
  const upstream = startUpstream();
  const ports = {
    https: freePort(),
    http: freePort(),
    upstream: upstream.address,
  };
  const site = join(dir, "site.conf");
  await Deno.writeTextFile(
    site,
    adapt(await Deno.readTextFile(CONF), certs, ports),
  );
  const child = new Deno.Command(nginx.path!, {
    args: await nginxArgs(dir, site),
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const client = Deno.createHttpClient({
    caCerts: [await Deno.readTextFile(certs.ca)],
  });
  const stop = async () => {
    client.close();
    try {
      child.kill("SIGTERM");
    } catch {
      // Already gone.
    }
    await child.status;
    await upstream[Symbol.asyncDispose]();
    await Deno.remove(dir, { recursive: true });
  };
  const deadline = Date.now() + 10_000;
  while (true) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port: ports.https }))
        .close();
      break;
    } catch {
      if (Date.now() > deadline) {
        const log = await Deno.readTextFile(join(dir, "error.log"))
          .catch(() => "");
        await stop();
        throw new Error(`nginx did not listen in time:\n${log}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    base: `https://localhost:${ports.https}`,
    plain: `http://127.0.0.1:${ports.http}`,
    seen: upstream.seen,
    fetch: (path: string, init: RequestInit = {}) =>
      fetch(`https://localhost:${ports.https}${path}`, { ...init, client }),
    [Symbol.asyncDispose]: stop,
  };
}

testWith(
  [nginx, openssl],
  "nginx strips /livekit/jwt before proxying to the service",
  async () => {
    await using stack = await startStack();
    const res = await stack.fetch("/livekit/jwt/get_token?x=1", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: '{"room_id":"!r:example.com"}',
    });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { upstream: true });
    assert.deepEqual(stack.seen.map((s) => [s.method, s.path, s.body]), [
      ["POST", "/get_token?x=1", '{"room_id":"!r:example.com"}'],
    ]);
  },
);

testWith(
  [nginx, openssl],
  "nginx does not proxy paths outside /livekit/jwt/",
  async () => {
    await using stack = await startStack();
    for (const path of ["/get_token", "/livekit/jwtx/get_token"]) {
      const res = await stack.fetch(path, { method: "POST" });
      await res.body?.cancel();
    }
    assert.deepEqual(stack.seen, []);
  },
);

testWith(
  [nginx, openssl],
  "nginx serves /.well-known/matrix/client with rtc_foci and CORS",
  async () => {
    await using stack = await startStack();
    const res = await stack.fetch("/.well-known/matrix/client");
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("access-control-allow-origin"), "*");
    assert.equal(res.headers.get("content-type"), "application/json");
    const doc = await res.json();
    assert.deepEqual(doc["org.matrix.msc4143.rtc_foci"], [{
      type: "livekit",
      livekit_service_url: "https://matrix.example.com/livekit/jwt",
    }]);
  },
);

testWith(
  [nginx, openssl],
  "nginx redirects plain HTTP to HTTPS",
  async () => {
    await using stack = await startStack();
    const res = await fetch(`${stack.plain}/livekit/jwt/healthz`, {
      redirect: "manual",
    });
    await res.body?.cancel();
    assert.equal(res.status, 301);
    assert.match(
      res.headers.get("location") ?? "",
      /^https:\/\/[^/]+\/livekit\/jwt\/healthz$/,
    );
  },
);
