# Called by `sam build` (template.yaml: BuildMethod makefile) with
# ARTIFACTS_DIR set. SAM's go1.x builder cannot pass -tags or -ldflags, so
# the flags of the shipped binary are written here, once: static
# (CGO_ENABLED=0), linux/arm64, no RPC path, stripped, no local paths.
GOFLAGS_BOOTSTRAP = -trimpath -tags lambda.norpc -ldflags "-s -w"

build-OdcrAutocancelFunction:
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build $(GOFLAGS_BOOTSTRAP) -o "$(ARTIFACTS_DIR)/bootstrap" ./cmd/odcr-autocancel

.PHONY: build-OdcrAutocancelFunction
