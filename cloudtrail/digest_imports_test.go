package cloudtrail_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDigestPackageImports keeps cloudtrail a leaf: it and everything it imports are
// the standard library, the compression package, or cloudtrail itself.
func TestDigestPackageImports(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		first, _, _ := strings.Cut(pkg, "/")
		switch {
		case !strings.Contains(first, "."): // the standard library, and its vendored packages
		case strings.HasPrefix(pkg, "github.com/klauspost/compress/"):
		case pkg == "github.com/pgtrail/pgtrail/cloudtrail":
		default:
			t.Errorf("cloudtrail depends on %s", pkg)
		}
	}
}
