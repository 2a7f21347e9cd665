# syntax=docker/dockerfile:1
#
# pgtrail's container image: a static binary on distroless, running as a
# non-root user, with nothing to write on its root filesystem.
#
#   docker build --build-arg VERSION=$(git describe --tags --always --dirty) -t pgtrail .
#   docker run --rm --read-only -e DATABASE_URL=... -e SQS_QUEUE_URL=... pgtrail
#
# The localaws target is the local AWS stack of docker-compose.yml; it is
# for development only.

ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-buildvcs=false
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
ARG TARGETOS TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/pgtrail ./cmd/pgtrail && \
    GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w" -o /out/localaws ./cmd/localaws

# distroless/static has CA certificates, time zones and /etc/passwd with
# the nonroot user (65532), and no shell.
FROM gcr.io/distroless/static-debian12:nonroot AS localaws
COPY --from=build /out/localaws /usr/local/bin/localaws
USER 65532:65532
EXPOSE 4566
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/localaws"]

# The default target comes last.
FROM gcr.io/distroless/static-debian12:nonroot AS pgtrail
ARG VERSION=dev
LABEL org.opencontainers.image.title="pgtrail" \
      org.opencontainers.image.description="CloudTrail logs from S3, announced on SQS, into PostgreSQL" \
      org.opencontainers.image.source="https://github.com/pgtrail/pgtrail" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/pgtrail /usr/local/bin/pgtrail
# Numeric, so that runAsNonRoot can verify it without reading /etc/passwd.
USER 65532:65532
# /metrics, /healthz and /readyz (PGTRAIL_HTTP_ADDR).
EXPOSE 9090
# pgtrail stops receiving on SIGTERM and lets in-flight messages finish
# within PGTRAIL_SHUTDOWN_GRACE: give it that long, and more, before SIGKILL.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/pgtrail"]
CMD ["run"]
