# syntax=docker/dockerfile:1
#
# The tasker image: one static binary that serves every role, chosen by the
# arguments (tasker manager | orchestrator | worker | migrate | task | template).
#
#   make docker-build IMG=ghcr.io/taskerops/tasker:v0.1.0
#
# The binary is built by `make build`, so the image gets exactly the flags
# (CGO_ENABLED=0, GO_BUILD_FLAGS) of a local build; test/manifests checks that
# this file keeps doing so.

# The builder runs on the build machine's platform and cross-compiles.
FROM --platform=$BUILDPLATFORM golang:1.26-bookworm AS builder
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
WORKDIR /src

# Dependencies first, so that source changes reuse this layer.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download

COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    GOOS=$TARGETOS GOARCH=$TARGETARCH make build VERSION=$VERSION

# distroless static: no shell, no package manager; CA certificates and tzdata
# only. The numeric user lets Kubernetes verify runAsNonRoot.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=builder /src/bin/tasker /usr/local/bin/tasker
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/tasker"]
CMD ["--help"]
