# syntax=docker/dockerfile:1
# Build: the official Deno image compiles one static binary with the same
# permission set and V8 flags as `deno task start` (scripts/compile.ts).
FROM denoland/deno:2.9.6 AS build
WORKDIR /src
COPY deno.json deno.lock ./
COPY main.ts ./
COPY lib ./lib
COPY scripts/compile.ts ./scripts/compile.ts
RUN deno install --frozen \
  && deno run --allow-read --allow-run --allow-write=dist --allow-env scripts/compile.ts --host

# Run: glibc and CA certificates, nothing else; no shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/dist/lk-jwt-service /usr/local/bin/lk-jwt-service
USER 1000:1000
# glibc adds malloc arenas with the core count; two are plenty for this service.
ENV MALLOC_ARENA_MAX=2
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=5s --retries=3 \
  CMD ["/usr/local/bin/lk-jwt-service", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/lk-jwt-service"]
