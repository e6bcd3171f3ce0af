# Conveniences over plain go commands; none of them is required.
# (Debian has no `just` package; `npm install -g rust-just` provides it.)

# Run the server with the default plugins on 127.0.0.1:8080.
run *ARGS:
    go run ./core/cmd/unhidra {{ARGS}}

# The README's test command.
test:
    go test ./...

# What CI runs (installs packages, starts Postgres; needs root).
ci:
    .ci/run

build:
    mkdir -p bin && go build -o bin/unhidra ./core/cmd/unhidra

lint:
    go vet ./...

# Fuzz the frame decoder for a while.
fuzz TIME="60s":
    go test ./core/gateway -run NONE -fuzz FuzzClientFrame -fuzztime {{TIME}}

# Regenerate the plugin contract's Go code (needs Debian's protobuf-compiler and libprotobuf-dev;
# the Go generators are pinned as tools in go.mod). The SDKs' hook interfaces, dispatch tables
# and WASM types come from protoc-gen-unhidra, built after the pb package it reads options with.
proto:
    protoc -I sdk/proto -I /usr/include \
      --plugin=protoc-gen-go="$(go tool -n protoc-gen-go)" \
      --plugin=protoc-gen-go-grpc="$(go tool -n protoc-gen-go-grpc)" \
      --go_out=sdk/proto --go_opt=paths=source_relative \
      --go-grpc_out=sdk/proto --go-grpc_opt=paths=source_relative \
      sdk/proto/pluginv1/plugin.proto
    go build -o "${TMPDIR:-/tmp}/protoc-gen-unhidra" ./sdk/proto/cmd/protoc-gen-unhidra
    protoc -I sdk/proto -I /usr/include \
      --plugin=protoc-gen-unhidra="${TMPDIR:-/tmp}/protoc-gen-unhidra" \
      --unhidra_out=sdk \
      sdk/proto/pluginv1/plugin.proto

# Plugin hook round trip (docs/benchmarks.md, "Plugin hook round trip").
bench-plugins:
    go test ./core/pluginhost -run NONE -bench MessageWillBePosted -benchtime 20000x -count 3

# Re-take the console screenshots in docs/img/ (needs Debian's chromium and,
# for the emoji, fonts-noto-color-emoji).
screenshots:
    UNHIDRA_UPDATE_SCREENSHOTS=1 go test ./admin-ui -run 'Browsers|Admin' -count=1 -v

# Load benchmark: Unhidra and the reference server in one run, standard
# scenarios, median of 3 runs; prints the table and writes bench/results/.
# Pass flags through, e.g. `just bench -runs 1 -scenarios fanout`.
bench *ARGS:
    mkdir -p bench/results
    go run ./core/cmd/unhidra-bench -out bench/results/$(date -u +%Y-%m-%dT%H%M).md {{ARGS}}

# The soak of issue 12 (docs/benchmarks.md, "Soak"): 19,000 idle TCP
# connections and 1,000 ping-flooding sessions against one server while 100
# sessions chat, for 10 minutes. Flags pass through, e.g. -soak-duration 1m.
bench-soak *ARGS:
    mkdir -p bench/results
    go run ./core/cmd/unhidra-bench -runs 1 -target unhidra -scenarios soak -out bench/results/soak-$(date -u +%Y-%m-%dT%H%M).md {{ARGS}}
