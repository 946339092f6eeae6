# Tasker Operator. `make help` lists the targets.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

# Tools are installed with `go install` at pinned versions into ./bin.
BIN := $(CURDIR)/bin
SQLC_VERSION := v1.31.1
GOLANGCI_LINT_VERSION := v2.15.0
CONTROLLER_GEN_VERSION := v0.23.0
SQLC := $(BIN)/sqlc-$(SQLC_VERSION)
CONTROLLER_GEN := $(BIN)/controller-gen-$(CONTROLLER_GEN_VERSION)
GOLANGCI_LINT := $(BIN)/golangci-lint-$(GOLANGCI_LINT_VERSION)
HELM_VERSION := v3.22.0
KUSTOMIZE_VERSION := v5.8.2
HELM := $(BIN)/helm-$(HELM_VERSION)
KUSTOMIZE := $(BIN)/kustomize-$(KUSTOMIZE_VERSION)
# The Kubernetes version helm $(HELM_VERSION) is built against (its client-go
# v0.37), stamped as helm's own release build does: the default of helm
# template's and helm lint's --kube-version.
HELM_KUBE_MINOR := 37

# Build flags shared with the Dockerfile: a static, reproducible binary.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
GO_BUILD_FLAGS := -trimpath -ldflags "-s -w -X github.com/taskerops/tasker/internal/version.Version=$(VERSION)"

# The image of every role, built from the Dockerfile by `make docker-build`.
IMG ?= ghcr.io/taskerops/tasker:$(VERSION)
CONTAINER_TOOL ?= docker

# Test settings. Packages run in parallel (one per core); every test gets
# its own database on one throwaway PostgreSQL started by pgrun.
GO_TEST_FLAGS ?= -race -count=1 -timeout 20m

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target>\n"} \
		/^[a-zA-Z_0-9-]+:.*?##/ { printf "  %-12s %s\n", $$1, $$2 } \
		/^##@/ { printf "\n%s\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Development

.PHONY: build
build: ## Build the tasker binary into bin/tasker.
	CGO_ENABLED=0 go build $(GO_BUILD_FLAGS) -o $(BIN)/tasker ./cmd/tasker

.PHONY: test
test: export TASKER_HELM := $(HELM)
test: export TASKER_KUSTOMIZE := $(KUSTOMIZE)
test: postgres build chart $(KUSTOMIZE) ## Run every test against a throwaway PostgreSQL and a local API server (installs what is missing).
	go vet ./...
	KUBEBUILDER_ASSETS="$$(hack/envtest.sh)" TASKER_BIN=$(BIN)/tasker \
		go run ./internal/pgtest/pgrun -- go test $(GO_TEST_FLAGS) ./...

.PHONY: demo
demo: postgres build ## Run the whole system on this machine and each example workflow once (DEMO_FLAGS=--keep stays up).
	KUBEBUILDER_ASSETS="$$(hack/envtest.sh)" $(BIN)/tasker dev $(DEMO_FLAGS)

.PHONY: bench
bench: postgres build ## Measure latency, throughput and resources against the targets, beside River (BENCH_FLAGS=-quick); writes bench-results.json.
	TASKER_BIN=$(BIN)/tasker go run ./bench $(BENCH_FLAGS)

.PHONY: profile
profile: postgres build ## Profile the engine and workers in one process: CPU profile, statements, tables, WAL per step (PROFILE_FLAGS="-latency 40 -explain").
	TASKER_BIN=$(BIN)/tasker go run ./bench/profile $(PROFILE_FLAGS)

.PHONY: floor
floor: postgres ## What the contract's row writes alone cost PostgreSQL per step, the floor under the engine's cost (FLOOR_FLAGS="-locks -claim-expiry").
	go run ./bench/floor $(FLOOR_FLAGS)

.PHONY: generate
generate: $(SQLC) $(CONTROLLER_GEN) ## Regenerate code: sqlc queries, deepcopy methods of api/.
	$(SQLC) generate
	$(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths=./api/...

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Regenerate the CRDs in config/crd/bases (and the chart's copy) and config/rbac/role.yaml.
	$(CONTROLLER_GEN) crd paths=./api/... output:crd:artifacts:config=config/crd/bases
	$(CONTROLLER_GEN) rbac:roleName=manager-role paths=./controllers/... output:rbac:artifacts:config=config/rbac
	rm -f charts/tasker-operator/crds/*.yaml
	cp config/crd/bases/*.yaml charts/tasker-operator/crds/

.PHONY: chart
chart: $(HELM) ## Lint the Helm chart (strict) and render it with its default values.
	$(HELM) lint --strict charts/tasker-operator
	$(HELM) template tasker charts/tasker-operator --namespace tasker-system >/dev/null

.PHONY: docker-build
docker-build: ## Build the image of every role, IMG (default ghcr.io/taskerops/tasker:VERSION), with CONTAINER_TOOL (docker).
	$(CONTAINER_TOOL) build --build-arg VERSION=$(VERSION) -t $(IMG) .

.PHONY: lint
lint: $(GOLANGCI_LINT) ## Run golangci-lint.
	$(GOLANGCI_LINT) run ./...

.PHONY: verify
verify: generate manifests ## Fail when generated code, CRDs, formatting or go.mod are stale.
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	go mod tidy
	@git diff --exit-code -- . ':(exclude)bin' || { echo "generated files or go.mod are stale: run make generate manifests / go mod tidy and commit"; exit 1; }
	@test -z "$$(git status --porcelain --untracked-files=all -- api config/crd config/rbac charts/tasker-operator/crds internal/dbsqlc)" || { echo "uncommitted generated files:"; git status --porcelain --untracked-files=all -- api config/crd config/rbac charts/tasker-operator/crds internal/dbsqlc; exit 1; }

##@ Dependencies

.PHONY: envtest
envtest: ## Build (once, cached by version) kube-apiserver, etcd and kube-controller-manager from Go modules.
	@hack/envtest.sh

.PHONY: postgres
postgres: ## Install the PostgreSQL server with apt-get when its binaries are missing.
	hack/install-postgres.sh

$(SQLC):
	GOBIN=$(BIN) go install github.com/sqlc-dev/sqlc/cmd/sqlc@$(SQLC_VERSION)
	mv $(BIN)/sqlc $@

$(CONTROLLER_GEN):
	GOBIN=$(BIN) go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_GEN_VERSION)
	mv $(BIN)/controller-gen $@

$(GOLANGCI_LINT):
	GOBIN=$(BIN) go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	mv $(BIN)/golangci-lint $@

.PHONY: helm kustomize
helm: $(HELM) ## Install helm into ./bin at a pinned version.
kustomize: $(KUSTOMIZE) ## Install kustomize into ./bin at a pinned version.

$(HELM):
	GOBIN=$(BIN) CGO_ENABLED=0 go install -trimpath -ldflags "-s -w \
		-X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION) \
		-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$(HELM_KUBE_MINOR) \
		-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$(HELM_KUBE_MINOR)" \
		helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)
	mv $(BIN)/helm $@

$(KUSTOMIZE):
	GOBIN=$(BIN) CGO_ENABLED=0 go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)
	mv $(BIN)/kustomize $@
