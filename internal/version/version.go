// Package version is the version of odcr-autocancel a binary was built
// from. The build stamps it (the Makefile, for sam build, and CI take it
// from git describe) with
//
//	-ldflags "-X github.com/odcr-autocancel/odcr-autocancel/internal/version.Version=v1.2.3"
//
// A build that does not stamp it says "dev".
package version

// Version is set by the linker; it is never changed at run time.
var Version = "dev"
