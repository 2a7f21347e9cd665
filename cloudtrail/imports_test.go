package cloudtrail_test

import (
	"os/exec"
	"strings"
	"testing"
)

// goListDeps returns the packages that pkg depends on, itself included.
func goListDeps(t *testing.T, pkg string) []string {
	t.Helper()
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps", pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}

// TestPackageImports keeps cloudtrail a leaf: it and everything it imports
// are the standard library, the compression package, or cloudtrail
// itself. So no AWS SDK, pgx, zap or Prometheus.
func TestPackageImports(t *testing.T) {
	for _, pkg := range goListDeps(t, ".") {
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

// TestLayerArrows keeps the arrows between pgtrail's packages one way:
// sink (storage) never reaches up to the worker or the queue and object
// SDKs it drives, the rules engine up to anything but cloudtrail, and the
// retry leaf imports none of pgtrail's packages
// nor their dependencies.
// docs/architecture.md draws the arrows.
func TestLayerArrows(t *testing.T) {
	for _, tc := range []struct {
		pkg       string
		forbidden []string
	}{
		{"../sink", []string{
			"github.com/pgtrail/pgtrail/worker",
			"github.com/aws/aws-sdk-go-v2/service/sqs",
			"github.com/aws/aws-sdk-go-v2/service/s3",
		}},
		// The rules engine reads events as cloudtrail makes them, and
		// nothing else of pgtrail's.
		{"../sigma", []string{
			"github.com/pgtrail/pgtrail/worker", "github.com/pgtrail/pgtrail/sink",
			"github.com/pgtrail/pgtrail/alert", "github.com/aws/", "github.com/jackc/",
		}},
		{"../internal/retry", []string{
			"github.com/pgtrail/pgtrail/worker", "github.com/pgtrail/pgtrail/sink",
			"github.com/aws/", "github.com/jackc/", "go.uber.org/", "github.com/prometheus/",
		}},
	} {
		for _, dep := range goListDeps(t, tc.pkg) {
			for _, f := range tc.forbidden {
				if dep == f || strings.HasPrefix(dep, f+"/") || (strings.HasSuffix(f, "/") && strings.HasPrefix(dep, f)) {
					t.Errorf("%s depends on %s", tc.pkg, dep)
				}
			}
		}
	}
}
