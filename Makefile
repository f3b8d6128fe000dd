# cdpd — run many Stellar CDP pipelines in one daemon, each visible in flowctl.
# `make help` lists the targets.

GO            ?= go
BIN           := bin
PROTOC_GEN_GO_VERSION      := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
PROTOC_GEN_GO_VTPROTO_VERSION := v0.6.1-0.20240319094008-0393e58bdf10
STATICCHECK_VERSION        := v0.8.2
TOOLS         := $(CURDIR)/.tools
RUN_DIR       ?= $(CURDIR)/.run
TEST_FLAGS    ?= -race -timeout 20m
# The version both binaries report (cdpd version, flowctl version, cdpd_build_info, registrations).
VERSION       ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS       := -X github.com/withobsrvr/cdpd/daemon.Version=$(VERSION) -X github.com/withobsrvr/cdpd/control/cli.Version=$(VERSION)
# -v lists every package as it is compiled: a first build on a cold cache takes minutes.
BUILD_FLAGS   := -v -ldflags '$(LDFLAGS)'
export PATH   := $(TOOLS):$(PATH)

.PHONY: help build test test-short run bench bench-smoke proto proto-check lint fuzz soak failpoints docs-check clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  %-12s %s\n",$$1,$$2}'

build: ## build bin/cdpd and bin/flowctl, stamped with the version of git describe
	@echo "make build: bin/cdpd and bin/flowctl $(VERSION). The first build downloads the modules and compiles"
	@echo "  the Stellar SDK, AWS and Google Cloud clients (about 16 minutes on a cold cache); packages are listed as they compile."
	$(GO) build $(BUILD_FLAGS) -o $(BIN)/cdpd ./cmd/cdpd
	$(GO) build $(BUILD_FLAGS) -o $(BIN)/flowctl ./cmd/flowctl

test: build ## vet, every test with the race detector (needs PostgreSQL: see .ci/run), the failpoint crashes, a fuzz smoke run, the benchmark smoke run, docs-check
	$(GO) vet ./...
	$(GO) test $(TEST_FLAGS) ./...
	$(MAKE) failpoints
	$(MAKE) bench-smoke
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 20s ./loader
	$(MAKE) docs-check

test-short: ## unit tests only, no race detector
	$(GO) test -short ./...

run: build ## start cdpd with an embedded control plane on configs/ and the fixture datastore
	@mkdir -p $(RUN_DIR)/state
	@[ -f $(RUN_DIR)/datastore/.config.json ] || { \
		echo "make run: making a datastore of 200 ledgers from the SDK's real pubnet ledgers in $(RUN_DIR)/datastore (once; compiles the fixture builder first)"; \
		$(GO) run -v ./test/fixture/mkdatastore -out $(RUN_DIR)/datastore -count 200; }
	@echo "cdpd: pipelines from configs/, control plane embedded at 127.0.0.1:8080, HTTP at 127.0.0.1:9464"
	@echo "  look at it:  bin/flowctl status --control-plane-addr 127.0.0.1:8080"
	@echo "               curl -s http://127.0.0.1:9464/api/v1/pipelines"
	CDP_DATASTORE=$(RUN_DIR)/datastore CDP_OUT=$(RUN_DIR)/out $(BIN)/cdpd --config-dir configs \
		--state-dir $(RUN_DIR)/state --embedded-control-plane 127.0.0.1:8080 --log-format text

bench: ## benchmarks that print ratios measured in one run (see BENCHMARKS.md)
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 15m ./test/bench/...

bench-smoke: ## every benchmark outside test/bench once, its figures ignored: a benchmark that no longer runs fails here, not when someone needs it
	$(GO) test -run '^$$' -bench . -benchtime 1x $$($(GO) list ./... | grep -v /test/bench)

proto: ## regenerate the protobuf Go code (protoc from Debian's protobuf-compiler): flowctl.v1, cdpd.v1, flowctl's legacy API
	@command -v protoc >/dev/null || { echo "protoc missing: apt-get install -y protobuf-compiler"; exit 1; }
	GOBIN=$(TOOLS) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	GOBIN=$(TOOLS) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	GOBIN=$(TOOLS) $(GO) install github.com/planetscale/vtprotobuf/cmd/protoc-gen-go-vtproto@$(PROTOC_GEN_GO_VTPROTO_VERSION)
	cd control/proto && protoc -I . -I /usr/include \
		--go_out=../.. --go_opt=module=github.com/withobsrvr/cdpd \
		--go-grpc_out=../.. --go-grpc_opt=module=github.com/withobsrvr/cdpd \
		flowctl/v1/control_plane.proto cdpd/v1/history.proto cdpd/v1/fleet.proto flowctl/legacy/control_plane.proto
	# vtprotobuf's allocation-free marshalling of flowctl.v1 (the heartbeats; see BENCHMARKS.md)
	cd control/proto && protoc -I . -I /usr/include \
		--go-vtproto_out=../.. --go-vtproto_opt=module=github.com/withobsrvr/cdpd,features=marshal+size \
		flowctl/v1/control_plane.proto

proto-check: proto ## fail when the committed generated code is stale
	@git diff --exit-code -- control/flowctlv1 control/cdpdv1 control/flowctllegacy || { echo "generated protobuf code is stale: run make proto and commit"; exit 1; }
	@test -z "$$(git ls-files --others --exclude-standard -- control/flowctlv1 control/cdpdv1 control/flowctllegacy)" || { echo "generated protobuf code is not committed: run make proto and commit"; exit 1; }

lint: ## gofmt, go vet and staticcheck (installed into .tools at the pinned version)
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$')); [ -z "$$out" ] || { echo "gofmt: $$out"; exit 1; }
	$(GO) vet ./...
	@$(TOOLS)/staticcheck -version 2>/dev/null | grep -qF '($(STATICCHECK_VERSION:v%=%))' || { \
		echo "installing staticcheck $(STATICCHECK_VERSION) into .tools"; \
		GOBIN=$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION); }
	$(TOOLS)/staticcheck ./...

fuzz: ## run the config parser fuzzer for a minute
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 60s ./loader

docs-check: ## run every runnable command of docs/operations.md against a real cdpd and flowctl server
	CDPD_DOCS_CHECK=1 $(GO) test -count=1 ./test/docs/

failpoints: ## crash cdpd at every commit boundary (faultinject build), check exactly-once after each restart (2-3 min plus the build; part of `make test`)
	$(GO) test $(TEST_FLAGS) -count=1 -tags faultinject ./internal/failpoint
	CDPD_FAILPOINTS=1 $(GO) test $(TEST_FLAGS) -count=1 -run 'TestCrashAtFailpoints' -v ./test/reliability

soak: build ## long reliability run (see test/reliability)
	CDPD_SOAK=1 $(GO) test -race -timeout 60m -run Soak ./test/...

clean: ## remove build output and the make-run directory
	rm -rf $(BIN) $(RUN_DIR)
