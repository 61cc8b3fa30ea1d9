# Called by `sam build` (template.yaml: BuildMethod makefile) with
# ARTIFACTS_DIR set. SAM's go1.x builder cannot pass -tags or -ldflags, so
# the flags of the shipped binary are written here, once: static
# (CGO_ENABLED=0), linux/arm64, no RPC path, stripped, no local paths.
# The version stamped into the binary (internal/version): VERSION from the
# environment (CI sets it), else git describe, else dev.
VERSION := $(or $(VERSION),$(shell git describe --tags --always --dirty 2>/dev/null),dev)
GOFLAGS_BOOTSTRAP = -trimpath -tags lambda.norpc -ldflags "-s -w -X github.com/odcr-autocancel/odcr-autocancel/internal/version.Version=$(VERSION)"

build-OdcrAutocancelFunction:
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build $(GOFLAGS_BOOTSTRAP) -o "$(ARTIFACTS_DIR)/bootstrap" ./cmd/odcr-autocancel

.PHONY: build-OdcrAutocancelFunction
