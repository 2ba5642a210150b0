/**
 * Tests of the Helm chart in chart/lk-jwt-service: lint, schema validation of
 * every rendered manifest, the refusals, and the properties operators rely
 * on. Needs helm (scripts/install/helm.sh) and kubernetes-validate
 * (scripts/install/kube-schemas.sh).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { findHelm, findKubeValidate, ROOT, run, testWith } from "./_tools.ts";
import { parseYamlDocuments } from "./_yaml.ts";

const CHART = join(ROOT, "chart", "lk-jwt-service");
const helm = findHelm();
const validator = findKubeValidate();

/** Kubernetes versions the manifests are validated against: the chart's floor and the newest schemas shipped. */
const KUBE_VERSIONS = ["1.25.0", "1.37.0"];
/** Value sets in ci/ that the chart promises to render. */
const REQUIRED_CI = [
  "minimal",
  "existing-secret",
  "key-file",
  "ha-redis",
  "ingress-tls",
  "network-policy",
];
const CI_FILES = [...Deno.readDirSync(join(CHART, "ci"))]
  .map((e) => e.name)
  .filter((n) => n.endsWith("-values.yaml"))
  .sort();

/** Scratch files of this module, removed when the test run ends. */
const TMP = Deno.makeTempDirSync({ prefix: "lk-chart-test-" });
globalThis.addEventListener("unload", () => {
  Deno.removeSync(TMP, { recursive: true });
});

const SECRET = "0123456789abcdef0123456789abcdef";
const BASE = {
  livekit: { url: "wss://livekit.example.com", key: "devkey", secret: SECRET },
  fullAccessHomeservers: ["example.com"],
};

// --- Minimal shapes of the manifests the assertions look into. ---

interface Metadata {
  name: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: Metadata;
}
interface EnvVar {
  name: string;
  value?: string;
}
interface Probe {
  httpGet?: { path: string; port: string | number };
}
interface Container {
  name: string;
  image: string;
  command?: string[];
  env?: EnvVar[];
  ports?: { name: string; containerPort: number }[];
  securityContext?: Record<string, unknown>;
  resources?: {
    requests?: Record<string, string>;
    limits?: Record<string, string>;
  };
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  startupProbe?: Probe;
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
}
interface KeyToPath {
  key: string;
  path: string;
}
interface Volume {
  name: string;
  projected?: {
    sources: {
      secret?: { name: string; items: KeyToPath[] };
      configMap?: { name: string; items: KeyToPath[] };
    }[];
  };
}
interface PodSpec {
  containers: Container[];
  volumes?: Volume[];
  securityContext?: Record<string, unknown>;
  automountServiceAccountToken?: boolean;
  enableServiceLinks?: boolean;
  topologySpreadConstraints?: {
    labelSelector?: { matchLabels: Record<string, string> };
  }[];
}
interface Deployment extends Manifest {
  spec: {
    replicas?: number;
    selector: { matchLabels: Record<string, string> };
    template: { metadata: Metadata; spec: PodSpec };
  };
}
interface Pod extends Manifest {
  spec: PodSpec;
}
interface Secret extends Manifest {
  data: Record<string, string>;
}
interface Service extends Manifest {
  spec: { ports: { name: string; port: number }[] };
}
interface NetworkPolicyPort {
  port: number | string;
  protocol: string;
}
interface NetworkPolicyRule {
  ports: NetworkPolicyPort[];
  from?: Record<string, unknown>[];
  to?: Record<string, unknown>[];
}
interface NetworkPolicy extends Manifest {
  spec: {
    policyTypes: string[];
    ingress: NetworkPolicyRule[];
    egress: NetworkPolicyRule[];
  };
}
interface Ingress extends Manifest {
  spec: {
    ingressClassName?: string;
    tls?: { secretName: string; hosts: string[] }[];
    rules: {
      host: string;
      http: {
        paths: {
          path: string;
          backend: { service: { name: string; port: { name: string } } };
        }[];
      };
    }[];
  };
}
interface ServiceMonitor extends Manifest {
  spec: {
    selector: { matchLabels: Record<string, string> };
    endpoints: { port: string; path: string }[];
  };
}

// --- Helpers. ---

async function helmRun(args: string[]) {
  return await run(helm.path!, args, {
    env: { HOME: Deno.env.get("HOME") ?? "/tmp" },
  });
}

/** Writes values (JSON is YAML) to a temporary file and returns its path. */
async function valuesFile(values: unknown): Promise<string> {
  const path = await Deno.makeTempFile({ dir: TMP, suffix: ".json" });
  await Deno.writeTextFile(path, JSON.stringify(values));
  return path;
}

/** `helm template` arguments for a list of values: ci file names or objects. */
async function valueArgs(values: (string | object)[]): Promise<string[]> {
  const args: string[] = [];
  for (const v of values) {
    args.push(
      "-f",
      typeof v === "string" ? join(CHART, "ci", v) : await valuesFile(v),
    );
  }
  return args;
}

/** Renders the chart to YAML text; fails the test on error. */
async function renderText(
  values: (string | object)[],
  kubeVersion = "1.30.0",
): Promise<string> {
  const out = await helmRun([
    "template",
    "rel",
    CHART,
    "--namespace",
    "matrix",
    "--kube-version",
    kubeVersion,
    ...(await valueArgs(values)),
  ]);
  assert.equal(out.code, 0, `helm template failed: ${out.stderr}`);
  return out.stdout;
}

async function parseManifests(text: string): Promise<Manifest[]> {
  return (await parseYamlDocuments(helm.path!, text)) as Manifest[];
}

/** Renders the chart and returns the manifests; fails the test on error. */
async function render(
  values: (string | object)[],
  kubeVersion = "1.30.0",
): Promise<Manifest[]> {
  return await parseManifests(await renderText(values, kubeVersion));
}

/** Renders the chart expecting a refusal; returns helm's error output. */
async function renderError(values: (string | object)[]): Promise<string> {
  const out = await helmRun([
    "template",
    "rel",
    CHART,
    "--kube-version",
    "1.30.0",
    ...(await valueArgs(values)),
  ]);
  assert.notEqual(out.code, 0, "helm template should have refused to render");
  return out.stderr;
}

function one<T extends Manifest>(docs: Manifest[], kind: string): T {
  const found = docs.filter((d) => d.kind === kind);
  assert.equal(found.length, 1, `expected one ${kind}, got ${found.length}`);
  return found[0] as T;
}

function deployment(docs: Manifest[]): Deployment {
  return one<Deployment>(docs, "Deployment");
}

function container(docs: Manifest[]): Container {
  const c = deployment(docs).spec.template.spec.containers[0];
  assert.ok(c, "the Deployment has no container");
  return c;
}

/** The container's environment as a map (plain values only). */
function env(docs: Manifest[]): Map<string, string | undefined> {
  return new Map((container(docs).env ?? []).map((e) => [e.name, e.value]));
}

/** Where each file of the projected secrets volume comes from. */
function mountedFiles(
  docs: Manifest[],
): Map<string, { from: string; name: string; key: string }> {
  const d = deployment(docs);
  const mount = container(docs).volumeMounts?.find((m) => m.name === "secrets");
  const files = new Map<string, { from: string; name: string; key: string }>();
  if (!mount) return files;
  assert.equal(mount.readOnly, true, "the secrets volume must be read-only");
  const volume = d.spec.template.spec.volumes?.find((v) =>
    v.name === "secrets"
  );
  for (const source of volume?.projected?.sources ?? []) {
    const [from, ref] = source.secret
      ? ["Secret", source.secret]
      : ["ConfigMap", source.configMap!];
    for (const item of ref.items) {
      files.set(`${mount.mountPath}/${item.path}`, {
        from,
        name: ref.name,
        key: item.key,
      });
    }
  }
  return files;
}

function checksum(docs: Manifest[]): string | undefined {
  return deployment(docs).spec.template.metadata.annotations
    ?.["checksum/secret"];
}

// --- Lint and schema validation. ---

testWith([], "chart ci/ holds the value sets the chart promises", () => {
  for (const name of REQUIRED_CI) {
    assert.ok(
      CI_FILES.includes(`${name}-values.yaml`),
      `chart/lk-jwt-service/ci/${name}-values.yaml is missing`,
    );
  }
});

for (const file of CI_FILES) {
  testWith([helm], `helm lint --strict accepts ci/${file}`, async () => {
    const out = await helmRun([
      "lint",
      "--strict",
      CHART,
      "-f",
      join(CHART, "ci", file),
    ]);
    assert.equal(out.code, 0, `helm lint failed:\n${out.stdout}${out.stderr}`);
  });
}

/** Kinds whose schemas are not in Kubernetes itself (CRDs), checked by hand. */
const CRD_KINDS = new Set(["ServiceMonitor"]);

for (const file of CI_FILES) {
  for (const kubeVersion of KUBE_VERSIONS) {
    testWith(
      [helm, validator],
      `ci/${file} renders manifests valid against the Kubernetes ${kubeVersion} schemas`,
      async () => {
        const text = await renderText([file], kubeVersion);
        const docs = await parseManifests(text);
        const manifest = join(TMP, `${file}-${kubeVersion}.yaml`);
        await Deno.writeTextFile(manifest, text);
        const check = await run(validator.path!, [
          "--strict",
          "--kubernetes-version",
          kubeVersion,
          manifest,
        ]);
        const report = check.stdout + check.stderr;
        assert.equal(check.code, 0, `schema validation failed:\n${report}`);
        for (const doc of docs) {
          const id = `${doc.kind.toLowerCase()}/${doc.metadata.name}`;
          if (CRD_KINDS.has(doc.kind)) continue;
          assert.match(
            report,
            new RegExp(`passed for resource ${id} against`),
            `${id} was not validated:\n${report}`,
          );
        }
      },
    );
  }
}

testWith(
  [helm],
  "the ServiceMonitor selects the chart's Service and scrapes its metrics port",
  async () => {
    const docs = await render(["ingress-tls-values.yaml"]);
    const monitor = one<ServiceMonitor>(docs, "ServiceMonitor");
    const service = one<Service>(docs, "Service");
    assert.equal(monitor.apiVersion, "monitoring.coreos.com/v1");
    for (const [k, v] of Object.entries(monitor.spec.selector.matchLabels)) {
      assert.equal(service.metadata.labels?.[k], v, `Service label ${k}`);
    }
    assert.deepEqual(
      monitor.spec.endpoints.map((e) => [e.port, e.path]),
      [["metrics", "/metrics"]],
    );
    assert.ok(service.spec.ports.some((p) => p.name === "metrics"));
  },
);

// --- Refusals. ---

testWith(
  [helm],
  "the chart refuses to render without LiveKit credentials",
  async () => {
    const err = await renderError([{
      livekit: { url: "wss://livekit.example.com" },
      fullAccessHomeservers: ["example.com"],
    }]);
    assert.match(
      err,
      /no LiveKit credentials: set livekit\.key and livekit\.secret, or existingSecret/,
    );
  },
);

testWith(
  [helm],
  "the chart refuses an inline secret shorter than 32 characters",
  async () => {
    const short = "tooShortSecret123";
    const err = await renderError([BASE, { livekit: { secret: short } }]);
    assert.match(err, /livekit\.secret must be at least 32 characters, got 17/);
    assert.ok(
      !err.includes(short),
      "the secret must not appear in the message",
    );
  },
);

testWith([helm], "the chart refuses a key without a secret", async () => {
  const err = await renderError([{
    livekit: { url: "wss://livekit.example.com", key: "devkey" },
    fullAccessHomeservers: ["example.com"],
  }]);
  assert.match(err, /the LiveKit API key is set but the secret is not/);
});

testWith(
  [helm],
  "the chart refuses to render without full-access homeservers",
  async () => {
    const err = await renderError([{ ...BASE, fullAccessHomeservers: [] }]);
    assert.match(err, /fullAccessHomeservers is required/);
  },
);

testWith(
  [helm],
  "the chart refuses more than one replica without Redis",
  async () => {
    const err = await renderError([BASE, { replicaCount: 2 }]);
    assert.match(
      err,
      /replicaCount is 2 but no Redis is configured: delayed-leave jobs would be split across pods/,
    );
  },
);

testWith([helm], "the chart refuses autoscaling without Redis", async () => {
  const err = await renderError([BASE, { autoscaling: { enabled: true } }]);
  assert.match(
    err,
    /autoscaling is enabled but no Redis is configured: delayed-leave jobs would be split across pods/,
  );
});

testWith(
  [helm],
  "the chart refuses to render without livekit.url",
  async () => {
    const err = await renderError([{
      ...BASE,
      livekit: { key: "k", secret: SECRET },
    }]);
    assert.match(err, /livekit\.url is required/);
  },
);

testWith(
  [helm],
  "the chart refuses inline credentials next to existingSecret",
  async () => {
    const err = await renderError([BASE, { existingSecret: "mine" }]);
    assert.match(
      err,
      /livekit\.key and livekit\.secret cannot be combined with existingSecret/,
    );
  },
);

testWith(
  [helm],
  "the chart refuses a secrets.data.keyFile that is not key:secret",
  async () => {
    const err = await renderError([{
      livekit: { url: "wss://livekit.example.com" },
      fullAccessHomeservers: ["example.com"],
      secrets: { data: { keyFile: "no-colon-here" } },
    }]);
    assert.match(err, /secrets\.data\.keyFile must be "key:secret"/);
  },
);

testWith(
  [helm],
  "values.schema.json rejects an unknown log format",
  async () => {
    const err = await renderError([BASE, { logFormat: "xml" }]);
    assert.match(err, /logFormat/);
    assert.match(err, /'text', 'json'/);
  },
);

// --- Properties. ---

testWith(
  [helm],
  "the container defaults to requests 50m/64Mi and limits 100m/128Mi",
  async () => {
    const docs = await render(["minimal-values.yaml"]);
    assert.deepEqual(container(docs).resources, {
      requests: { cpu: "50m", memory: "64Mi" },
      limits: { cpu: "100m", memory: "128Mi" },
    });
  },
);

testWith(
  [helm],
  "the container runs as uid 1000, read-only, with no capabilities",
  async () => {
    const docs = await render(["minimal-values.yaml"]);
    const sc = container(docs).securityContext;
    assert.equal(sc?.runAsNonRoot, true);
    assert.equal(sc?.runAsUser, 1000);
    assert.equal(sc?.allowPrivilegeEscalation, false);
    assert.equal(sc?.readOnlyRootFilesystem, true);
    assert.deepEqual(sc?.capabilities, { drop: ["ALL"] });
    assert.deepEqual(sc?.seccompProfile, { type: "RuntimeDefault" });
    const pod = deployment(docs).spec.template.spec.securityContext;
    assert.equal(pod?.runAsNonRoot, true);
    assert.equal(pod?.runAsUser, 1000);
    assert.equal(pod?.fsGroup, 1000);
    assert.deepEqual(pod?.seccompProfile, { type: "RuntimeDefault" });
  },
);

testWith(
  [helm],
  "the pod gets no service account token and no service link variables",
  async () => {
    const spec =
      deployment(await render(["minimal-values.yaml"])).spec.template.spec;
    assert.equal(spec.automountServiceAccountToken, false);
    // A Service named livekit-jwt would inject LIVEKIT_JWT_PORT, which the
    // service refuses next to LIVEKIT_JWT_BIND.
    assert.equal(spec.enableServiceLinks, false);
  },
);

testWith(
  [helm],
  "liveness and startup probe /healthz, readiness probes /readyz, on the http port",
  async () => {
    const c = container(await render(["minimal-values.yaml"]));
    assert.deepEqual(c.livenessProbe?.httpGet, {
      path: "/healthz",
      port: "http",
    });
    assert.deepEqual(c.startupProbe?.httpGet, {
      path: "/healthz",
      port: "http",
    });
    assert.deepEqual(c.readinessProbe?.httpGet, {
      path: "/readyz",
      port: "http",
    });
    assert.deepEqual(
      c.ports?.find((p) => p.name === "http")?.containerPort,
      8080,
    );
    assert.equal(
      env(await render(["minimal-values.yaml"])).get("LIVEKIT_JWT_BIND"),
      ":8080",
    );
  },
);

testWith(
  [helm],
  "the checksum annotation changes when the secret changes",
  async () => {
    const before = checksum(await render(["minimal-values.yaml"]));
    const after = checksum(
      await render(["minimal-values.yaml", {
        livekit: { secret: SECRET.toUpperCase() },
      }]),
    );
    assert.match(before ?? "", /^[0-9a-f]{64}$/);
    assert.notEqual(after, before);
  },
);

testWith(
  [helm],
  "the checksum annotation stays when only non-secret values change",
  async () => {
    const before = checksum(await render(["minimal-values.yaml"]));
    const after = checksum(
      await render(["minimal-values.yaml", { logLevel: "debug" }]),
    );
    assert.equal(after, before);
  },
);

testWith(
  [helm],
  "inline key and secret reach the pod as mounted files, never as plain env",
  async () => {
    const docs = await render(["minimal-values.yaml"]);
    const e = env(docs);
    const files = mountedFiles(docs);
    const secret = one<Secret>(docs, "Secret");
    for (
      const [variable, entry] of [
        ["LIVEKIT_KEY_FROM_FILE", "key"],
        ["LIVEKIT_SECRET_FROM_FILE", "secret"],
      ] as const
    ) {
      const path = e.get(variable);
      assert.ok(path, `${variable} is not set`);
      assert.deepEqual(files.get(path), {
        from: "Secret",
        name: secret.metadata.name,
        key: entry,
      });
    }
    assert.equal(atob(secret.data.secret!), SECRET);
    assert.ok(!e.has("LIVEKIT_KEY") && !e.has("LIVEKIT_SECRET"));
    const rendered = JSON.stringify(deployment(docs));
    assert.ok(
      !rendered.includes(SECRET),
      "the secret leaked into the Deployment",
    );
  },
);

testWith(
  [helm],
  "an existing Secret is mounted by entry name and no Secret is rendered",
  async () => {
    const docs = await render(["existing-secret-values.yaml"]);
    const e = env(docs);
    const files = mountedFiles(docs);
    assert.equal(docs.filter((d) => d.kind === "Secret").length, 0);
    assert.equal(checksum(docs), undefined);
    const want: [string, string][] = [
      ["LIVEKIT_KEY_FROM_FILE", "api-key"],
      ["LIVEKIT_SECRET_FROM_FILE", "api-secret"],
      ["LIVEKIT_REDIS_URL_FROM_FILE", "redis-url"],
    ];
    for (const [variable, key] of want) {
      assert.deepEqual(files.get(e.get(variable)!), {
        from: "Secret",
        name: "lk-jwt-credentials",
        key,
      }, variable);
    }
    assert.equal(
      e.get("LIVEKIT_FULL_ACCESS_HOMESERVERS"),
      "example.com,example.org",
    );
  },
);

testWith(
  [helm],
  "a key file entry is passed with LIVEKIT_KEY_FILE instead of key and secret",
  async () => {
    const docs = await render(["key-file-values.yaml"]);
    const e = env(docs);
    assert.deepEqual(mountedFiles(docs).get(e.get("LIVEKIT_KEY_FILE")!), {
      from: "Secret",
      name: "lk-jwt-keys",
      key: "keys.txt",
    });
    assert.ok(
      !e.has("LIVEKIT_KEY_FROM_FILE") && !e.has("LIVEKIT_SECRET_FROM_FILE"),
    );
    assert.equal(e.get("LIVEKIT_FULL_ACCESS_HOMESERVERS"), "*");
  },
);

testWith(
  [helm],
  "livekit.keyFile and *FromFile paths are passed through as given",
  async () => {
    const base = {
      livekit: { url: "wss://lk.example.com" },
      fullAccessHomeservers: ["a.org"],
    };
    const keyFile = env(
      await render([base, { livekit: { keyFile: "/run/keys/lk" } }]),
    );
    assert.equal(keyFile.get("LIVEKIT_KEY_FILE"), "/run/keys/lk");
    const fromFile = env(
      await render([base, {
        livekit: { keyFromFile: "/run/k", secretFromFile: "/run/s" },
      }]),
    );
    assert.equal(fromFile.get("LIVEKIT_KEY_FROM_FILE"), "/run/k");
    assert.equal(fromFile.get("LIVEKIT_SECRET_FROM_FILE"), "/run/s");
  },
);

testWith(
  [helm],
  "several replicas turn on LIVEKIT_MULTI_REPLICA with the Redis URL from a file",
  async () => {
    const docs = await render(["ha-redis-values.yaml"]);
    const e = env(docs);
    assert.equal(deployment(docs).spec.replicas, 3);
    assert.equal(e.get("LIVEKIT_MULTI_REPLICA"), "true");
    assert.deepEqual(
      mountedFiles(docs).get(e.get("LIVEKIT_REDIS_URL_FROM_FILE")!)?.key,
      "redisUrl",
    );
    assert.ok(
      !e.has("LIVEKIT_REDIS_URL"),
      "the Redis URL (with its password) must not be plain env",
    );
    one(docs, "PodDisruptionBudget");
  },
);

testWith(
  [helm],
  "autoscaling turns on LIVEKIT_MULTI_REPLICA and leaves replicas to the HPA",
  async () => {
    const docs = await render(["autoscaling-values.yaml"]);
    const e = env(docs);
    assert.equal(e.get("LIVEKIT_MULTI_REPLICA"), "true");
    assert.equal(deployment(docs).spec.replicas, undefined);
    one(docs, "HorizontalPodAutoscaler");
    assert.deepEqual(
      mountedFiles(docs).get(e.get("LIVEKIT_REDIS_URL_FROM_FILE")!),
      {
        from: "Secret",
        name: "redis-credentials",
        key: "url",
      },
    );
  },
);

testWith(
  [helm],
  "a single replica leaves LIVEKIT_MULTI_REPLICA unset",
  async () => {
    assert.equal(
      env(await render(["minimal-values.yaml"])).has("LIVEKIT_MULTI_REPLICA"),
      false,
    );
  },
);

testWith(
  [helm],
  "topology spread constraints get the pod selector when they have none",
  async () => {
    const docs = await render(["ha-redis-values.yaml"]);
    const d = deployment(docs);
    assert.deepEqual(
      d.spec.template.spec.topologySpreadConstraints?.[0]?.labelSelector,
      { matchLabels: d.spec.selector.matchLabels },
    );
  },
);

testWith(
  [helm],
  "the image defaults to lk-jwt-service at the chart's appVersion",
  async () => {
    const chart = await Deno.readTextFile(join(CHART, "Chart.yaml"));
    const appVersion = chart.match(/^appVersion:\s*"?([^"\n]+)"?/m)?.[1];
    assert.equal(
      container(await render(["minimal-values.yaml"])).image,
      `lk-jwt-service:${appVersion}`,
    );
    const tagged = await render(["minimal-values.yaml", {
      image: {
        repository: "registry.example.com/lk-jwt-service",
        tag: "1.2.3",
      },
    }]);
    assert.equal(
      container(tagged).image,
      "registry.example.com/lk-jwt-service:1.2.3",
    );
  },
);

testWith(
  [helm],
  "the Ingress routes its hosts to the http port with TLS",
  async () => {
    const docs = await render(["ingress-tls-values.yaml"]);
    const ingress = one<Ingress>(docs, "Ingress");
    assert.equal(ingress.spec.ingressClassName, "nginx");
    assert.deepEqual(ingress.spec.tls, [{
      secretName: "livekit-jwt-tls",
      hosts: ["livekit-jwt.example.com"],
    }]);
    const rule = ingress.spec.rules[0]!;
    assert.equal(rule.host, "livekit-jwt.example.com");
    assert.deepEqual(rule.http.paths[0]?.backend.service, {
      name: one(docs, "Service").metadata.name,
      port: { name: "http" },
    });
  },
);

testWith(
  [helm],
  "metrics are served on their own port so the Ingress never exposes them",
  async () => {
    const docs = await render(["ingress-tls-values.yaml"]);
    assert.equal(env(docs).get("LIVEKIT_METRICS_BIND"), ":9090");
    assert.deepEqual(
      container(docs).ports?.map((p) => [p.name, p.containerPort]),
      [["http", 8080], ["metrics", 9090]],
    );
  },
);

testWith(
  [helm],
  "values map to the service's environment variables",
  async () => {
    const e = env(await render(["ingress-tls-values.yaml"]));
    assert.equal(e.get("LIVEKIT_URL"), "wss://livekit.example.com");
    assert.equal(
      e.get("LIVEKIT_CS_API_URL_OVERRIDES"),
      "example.com=http://synapse.matrix.svc.cluster.local:8008",
    );
    assert.equal(e.get("LIVEKIT_LOG_LEVEL"), "debug");
    assert.equal(e.get("LIVEKIT_LOG_FORMAT"), "json");
    assert.equal(e.get("LIVEKIT_SANITY_CHECK_INTERVAL_SECONDS"), "60");
    assert.equal(e.has("LIVEKIT_INSECURE_SKIP_VERIFY_TLS"), false);
  },
);

testWith(
  [helm],
  "fullAccessHomeservers may be a comma or space separated string",
  async () => {
    const e = env(
      await render([BASE, {
        fullAccessHomeservers: "example.com, example.org  example.net",
      }]),
    );
    assert.equal(
      e.get("LIVEKIT_FULL_ACCESS_HOMESERVERS"),
      "example.com,example.org,example.net",
    );
  },
);

testWith(
  [helm],
  "csApiUrlOverrides are joined sorted by server name",
  async () => {
    const e = env(
      await render(["minimal-values.yaml", {
        csApiUrlOverrides: {
          "z.org": "https://z.example",
          "a.org": "https://a.example",
        },
      }]),
    );
    assert.equal(
      e.get("LIVEKIT_CS_API_URL_OVERRIDES"),
      "a.org=https://a.example,z.org=https://z.example",
    );
  },
);

testWith(
  [helm],
  "insecureSkipVerifyTLS sets the one value that turns checks off",
  async () => {
    const e = env(
      await render(["minimal-values.yaml", { insecureSkipVerifyTLS: true }]),
    );
    assert.equal(
      e.get("LIVEKIT_INSECURE_SKIP_VERIFY_TLS"),
      "YES_I_KNOW_WHAT_I_AM_DOING",
    );
  },
);

testWith(
  [helm],
  "trustedCA mounts the CA bundle and points SSL_CERT_FILE at it",
  async () => {
    const docs = await render(["ingress-tls-values.yaml"]);
    assert.deepEqual(mountedFiles(docs).get(env(docs).get("SSL_CERT_FILE")!), {
      from: "ConfigMap",
      name: "matrix-ca",
      key: "ca.crt",
    });
  },
);

testWith(
  [helm],
  "the NetworkPolicy admits only the http and metrics ports from the given peers",
  async () => {
    const np = one<NetworkPolicy>(
      await render(["network-policy-values.yaml"]),
      "NetworkPolicy",
    );
    assert.deepEqual(np.spec.policyTypes, ["Ingress", "Egress"]);
    const [http, metrics] = np.spec.ingress;
    assert.deepEqual(http?.ports, [{ port: "http", protocol: "TCP" }]);
    assert.equal(
      http?.from?.length,
      3,
      "two namespaces plus the helm test pod",
    );
    assert.deepEqual(http?.from?.[2], {
      podSelector: { matchLabels: { "lk-jwt-service/client": "rel" } },
    });
    assert.deepEqual(metrics?.ports, [{ port: "metrics", protocol: "TCP" }]);
    assert.equal(np.spec.ingress.length, 2);
  },
);

testWith(
  [helm],
  "the NetworkPolicy allows egress to DNS, homeservers, the SFU and Redis only",
  async () => {
    const np = one<NetworkPolicy>(
      await render(["network-policy-values.yaml"]),
      "NetworkPolicy",
    );
    const ports = np.spec.egress.map((r) =>
      r.ports.map((p) => `${p.port}/${p.protocol}`).join(",")
    );
    assert.deepEqual(ports, [
      "53/UDP,53/TCP",
      "443/TCP,8448/TCP",
      "7880/TCP,443/TCP",
      "6380/TCP",
    ]);
    assert.deepEqual(np.spec.egress[2]?.to, [{
      namespaceSelector: {
        matchLabels: { "kubernetes.io/metadata.name": "livekit" },
      },
    }]);
  },
);

testWith(
  [helm],
  "the helm test hook fetches /healthz through the Service",
  async () => {
    const docs = await render(["minimal-values.yaml"]);
    const pod = docs.find((d): d is Pod =>
      d.kind === "Pod" && d.metadata.annotations?.["helm.sh/hook"] === "test"
    );
    assert.ok(pod, "no Pod with the helm.sh/hook: test annotation");
    const service = one<Service>(docs, "Service");
    const selector = deployment(docs).spec.selector.matchLabels;
    assert.ok(
      Object.entries(selector).some(([k, v]) => pod.metadata.labels?.[k] !== v),
      "the test pod must not match the pod selector of the Service and PDB",
    );
    const command = pod.spec.containers[0]?.command?.join(" ") ?? "";
    assert.ok(
      command.includes(
        `http://${service.metadata.name}:${
          service.spec.ports[0]?.port
        }/healthz`,
      ),
      command,
    );
  },
);

testWith(
  [helm],
  "NOTES.txt shows the public URL and the rtc_foci snippet",
  async () => {
    // helm template skips NOTES.txt, so render its named template through a
    // copy of the chart with one extra template.
    const copy = await Deno.makeTempDir({ dir: TMP });
    await run("cp", ["-r", `${CHART}/.`, copy]);
    await Deno.writeTextFile(
      join(copy, "templates", "notes-preview.yaml"),
      'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  notes: {{ include "lk-jwt-service.notes" . | toJson }}\n',
    );
    const out = await helmRun([
      "template",
      "rel",
      copy,
      "--show-only",
      "templates/notes-preview.yaml",
      "-f",
      join(CHART, "ci", "ingress-tls-values.yaml"),
    ]);
    assert.equal(out.code, 0, out.stderr);
    const [configMap] = await parseYamlDocuments(helm.path!, out.stdout);
    const notes = (configMap as { data: { notes: string } }).data.notes;
    assert.match(notes, /Public URL: https:\/\/livekit-jwt\.example\.com/);
    assert.match(
      notes,
      /"org\.matrix\.msc4143\.rtc_foci": \[\s*\{"type": "livekit", "livekit_service_url": "https:\/\/livekit-jwt\.example\.com"\}/,
    );
  },
);
