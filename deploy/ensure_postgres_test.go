package deploy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestEnsurePostgresRewritesHBAOnlyInCI runs scripts/ensure-postgres.sh,
// which CI and the demo use, against a stand-in PostgreSQL (pg_isready,
// psql and pg_ctlcluster scripts, and a pg_hba.conf of its own): a server
// that runs but refuses postgres without a password. Outside CI the script
// must leave pg_hba.conf alone and say what to do; with CI=true it lets
// local connections in.
func TestEnsurePostgresRewritesHBAOnlyInCI(t *testing.T) {
	t.Parallel()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	script, err := filepath.Abs(filepath.Join(repoRoot, "scripts", "ensure-postgres.sh"))
	if err != nil {
		t.Fatal(err)
	}
	const refused = "# TYPE DATABASE USER ADDRESS METHOD\nhost all all 127.0.0.1/32 scram-sha-256\n"
	for _, ci := range []bool{false, true} {
		t.Run(map[bool]string{false: "person", true: "ci"}[ci], func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			etc := filepath.Join(dir, "etc")
			hba := filepath.Join(etc, "15", "main", "pg_hba.conf")
			if err := os.MkdirAll(filepath.Dir(hba), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(hba, []byte(refused), 0o644); err != nil {
				t.Fatal(err)
			}
			bin := filepath.Join(dir, "bin")
			if err := os.Mkdir(bin, 0o755); err != nil {
				t.Fatal(err)
			}
			calls := filepath.Join(dir, "calls")
			stubs := map[string]string{
				// The server runs; it lets postgres in once pg_hba.conf trusts
				// local TCP connections.
				"pg_isready":    "exit 0",
				"psql":          `grep -q '^host all all 127.0.0.1/32 trust' "$STUB_HBA"`,
				"pg_ctlcluster": `echo "pg_ctlcluster $*" >>"$STUB_CALLS"`,
				"apt-get":       `echo "apt-get $*" >>"$STUB_CALLS"; exit 1`,
				"sleep":         "exit 0",
			}
			for name, body := range stubs {
				if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command(bash, script)
			cmd.Env = []string{
				"PATH=" + bin + string(os.PathListSeparator) + "/usr/bin" + string(os.PathListSeparator) + "/bin",
				"PG_ETC=" + etc, "STUB_HBA=" + hba, "STUB_CALLS=" + calls,
			}
			if ci {
				cmd.Env = append(cmd.Env, "CI=true")
			}
			out, err := cmd.CombinedOutput()
			after, _ := os.ReadFile(hba)
			log, _ := os.ReadFile(calls)
			if strings.Contains(string(log), "apt-get") {
				t.Errorf("the script installs PostgreSQL although it is there:\n%s", log)
			}
			if !ci {
				if err == nil {
					t.Errorf("outside CI the script succeeds with a server that refuses postgres:\n%s", out)
				}
				if string(after) != refused {
					t.Errorf("outside CI the script rewrote pg_hba.conf:\n%s", after)
				}
				for _, want := range []string{"CI=true", "TEST_DATABASE_URL", "host all all 127.0.0.1/32 trust", hba} {
					if !strings.Contains(string(out), want) {
						t.Errorf("outside CI the script does not say %q:\n%s", want, out)
					}
				}
				return
			}
			if err != nil {
				t.Errorf("in CI: %v\n%s", err, out)
			}
			if !strings.HasPrefix(string(after), "host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n") || !strings.HasSuffix(string(after), refused) {
				t.Errorf("in CI pg_hba.conf became:\n%s", after)
			}
		})
	}
}
