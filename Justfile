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
