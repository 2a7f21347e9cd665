package sigma

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pgtrail/pgtrail/internal/corpus"
)

// sharedDir returns the folder dir of shared/ (beside the corpus), or
// skips the test.
func sharedDir(t testing.TB, dir string) string {
	t.Helper()
	p := filepath.Join(filepath.Dir(corpus.Dir(t)), dir)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("%s not found: %v", dir, err)
	}
	return p
}

// TestSigmaHQRules loads the 29 SigmaHQ CloudTrail rules of shared/sigma:
// all are evaluated but one, whose field status CloudTrail does not have.
func TestSigmaHQRules(t *testing.T) {
	dir := sharedDir(t, "sigma/cloudtrail")
	s, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(s.Rules()) + len(s.Refused()); n != 29 {
		t.Errorf("%d rules loaded or refused, want 29", n)
	}
	if len(s.Refused()) != 1 || filepath.Base(s.Refused()[0].File) != "aws_delete_saml_provider.yml" ||
		!strings.Contains(s.Refused()[0].Reason, "no field status") {
		t.Errorf("refused %v, want aws_delete_saml_provider.yml for its field status", s.Refused())
	}
	for _, r := range s.Rules() {
		if r.Author == "" || r.ID == "" || r.Builtin {
			t.Errorf("%s: author %q, id %q, builtin %v", r.File, r.Author, r.ID, r.Builtin)
		}
	}
}

// TestSigmaHQSemantics checks SigmaHQ rules on records written for them,
// for the constructs they rely on.
func TestSigmaHQSemantics(t *testing.T) {
	s, err := Load(sharedDir(t, "sigma/cloudtrail"))
	if err != nil {
		t.Fatal(err)
	}
	byTitle := func(title string) *Rule {
		for _, r := range s.Rules() {
			if r.Title == title {
				return r
			}
		}
		t.Fatalf("no rule %q", title)
		return nil
	}
	cases := []struct {
		title, record string
		want          bool
	}{
		// errorCode: null, and 1 of selection_status_*.
		{"AWS Bucket Deleted", `{"eventSource":"s3.amazonaws.com","eventName":"DeleteBucket"}`, true},
		{"AWS Bucket Deleted", `{"eventSource":"s3.amazonaws.com","eventName":"DeleteBucket","errorCode":"AccessDenied"}`, false},
		// A nested path through an array, and contains.
		{"AWS ECS Task Definition That Queries The Credential Endpoint", `{"eventSource":"ecs.amazonaws.com","eventName":"RegisterTaskDefinition","requestParameters":{"containerDefinitions":[{"name":"a","command":["sh","-c","curl 169.254.170.2$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"]}]}}`, true},
		{"AWS ECS Task Definition That Queries The Credential Endpoint", `{"eventSource":"ecs.amazonaws.com","eventName":"RegisterTaskDefinition","requestParameters":{"containerDefinitions":[{"name":"a","command":["sleep","1"]}]}}`, false},
		// contains|all against an object's JSON text.
		{"AWS IAM S3Browser Templated S3 Bucket Policy Creation", `{"eventSource":"iam.amazonaws.com","eventName":"PutUserPolicy","userAgent":"S3 Browser 11.5.7 https://s3browser.com","requestParameters":{"policyDocument":{"Statement":[{"Effect":"Allow","Action":["s3:GetObject"],"Resource":["arn:aws:s3:::<YOUR-BUCKET-NAME>/*"]}]}}}`, true},
		{"AWS IAM S3Browser Templated S3 Bucket Policy Creation", `{"eventSource":"iam.amazonaws.com","eventName":"PutUserPolicy","userAgent":"S3 Browser 11.5.7 https://s3browser.com","requestParameters":{"policyDocument":{"Statement":[{"Effect":"Deny","Action":["s3:GetObject"],"Resource":["arn:aws:s3:::<YOUR-BUCKET-NAME>/*"]}]}}}`, false},
		// startswith on eventName, contains '*' on an array.
		{"AWS New Lambda Layer Attached", `{"eventSource":"lambda.amazonaws.com","eventName":"UpdateFunctionConfiguration20150331v2","requestParameters":{"functionName":"f","layers":["arn:aws:lambda:eu-west-1:111122223333:layer:x:1"]}}`, true},
		{"AWS New Lambda Layer Attached", `{"eventSource":"lambda.amazonaws.com","eventName":"UpdateFunctionConfiguration20150331v2","requestParameters":{"functionName":"f","layers":[]}}`, false},
		// fieldref: equality of an ARN with a user name never holds, so the
		// filter never applies (the rule's logic, read as written).
		{"AWS User Login Profile Was Modified", `{"eventSource":"iam.amazonaws.com","eventName":"UpdateLoginProfile","userIdentity":{"arn":"arn:aws:iam::1:user/bob"},"requestParameters":{"userName":"bob"}}`, true},
		{"AWS User Login Profile Was Modified", `{"eventSource":"iam.amazonaws.com","eventName":"UpdateLoginProfile","userIdentity":{"arn":"bob"},"requestParameters":{"userName":"BOB"}}`, false},
		// A nested field compared with a string, on a JSON boolean.
		{"Restore Public AWS RDS Instance", `{"eventSource":"rds.amazonaws.com","eventName":"RestoreDBInstanceFromDBSnapshot","responseElements":{"publiclyAccessible":true}}`, true},
		{"Restore Public AWS RDS Instance", `{"eventSource":"rds.amazonaws.com","eventName":"RestoreDBInstanceFromDBSnapshot","responseElements":{"publiclyAccessible":false}}`, false},
		// not filter on userIdentity.type.
		{"Potential Bucket Enumeration on AWS", `{"eventSource":"s3.amazonaws.com","eventName":"ListBuckets","userIdentity":{"type":"IAMUser"}}`, true},
		{"Potential Bucket Enumeration on AWS", `{"eventSource":"s3.amazonaws.com","eventName":"ListBuckets","userIdentity":{"type":"AssumedRole"}}`, false},
	}
	for _, c := range cases {
		r := byTitle(c.title)
		source, name := namesOf(c.record)
		got := false
		for _, m := range s.Match(source, name, []byte(c.record)) {
			if m.Rule == r {
				got = true
				if m.Rule.Author == "" {
					t.Errorf("%s: match without the rule's author", c.title)
				}
			}
		}
		if got != c.want {
			t.Errorf("%s on %s: fired %v, want %v", c.title, c.record, got, c.want)
		}
	}
}

// TestStratusRedTeam evaluates the built-in pack and the SigmaHQ rules on
// the stratus-red-team detonations of the corpus (one file per attack
// technique), logs which rules fire on which, and checks the ones a
// security team would expect.
func TestStratusRedTeam(t *testing.T) {
	s, err := Load(BuiltinWord + "," + sharedDir(t, "sigma/cloudtrail"))
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(corpus.Dir(t), "raw", "stratus-red-team", "*.json"))
	if len(files) == 0 {
		t.Skip("no stratus-red-team files")
	}
	fired := map[string][]string{} // technique: rule titles, sorted, each once
	for _, f := range files {
		technique := strings.TrimSuffix(filepath.Base(f), ".json")
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var records []json.RawMessage
		if err := json.Unmarshal(data, &records); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		counts := map[string]int{}
		for _, rec := range records {
			source, name := namesOf(string(rec))
			for _, m := range s.Match(source, name, rec) {
				counts[m.Rule.Title]++
			}
		}
		var report []string
		for title, n := range counts {
			fired[technique] = append(fired[technique], title)
			report = append(report, fmt.Sprintf("%s ×%d", title, n))
		}
		slices.Sort(fired[technique])
		slices.Sort(report)
		t.Logf("%s (%d records): %s", technique, len(records), strings.Join(report, "; "))
	}
	want := map[string][]string{
		"aws.defense-evasion.cloudtrail-stop":                      {"CloudTrail Logging Stopped", "CIS 4.5 - CloudTrail Configuration Changes"},
		"aws.defense-evasion.cloudtrail-delete":                    {"CloudTrail Trail Deleted", "CIS 4.5 - CloudTrail Configuration Changes"},
		"aws.defense-evasion.cloudtrail-event-selectors":           {"CloudTrail Event Selectors Changed", "CIS 4.5 - CloudTrail Configuration Changes"},
		"aws.defense-evasion.vpc-remove-flow-logs":                 {"VPC Flow Logs Deleted", "AWS VPC Flow Logs Deleted"},
		"aws.defense-evasion.organizations-leave":                  {"Account Left the Organization", "CIS 4.15 - AWS Organizations Changes"},
		"aws.defense-evasion.dns-delete-logs":                      {"Route 53 Resolver Query Logging Deleted"},
		"aws.initial-access.console-login-without-mfa":             {"CIS 4.2 - Management Console Sign-In Without MFA", "AWS Successful Console Login Without MFA"},
		"aws.exfiltration.ec2-security-group-open-port-22-ingress": {"CIS 4.10 - Security Group Changes", "Ingress/Egress Security Group Modification"},
		"aws.exfiltration.ec2-share-ebs-snapshot":                  {"AWS Snapshot Backup Exfiltration"},
		"aws.persistence.iam-backdoor-user":                        {"AWS IAM Backdoor Users Keys"},
		"aws.privilege-escalation.iam-update-user-login-profile":   {"AWS User Login Profile Was Modified"},
	}
	for technique, titles := range want {
		for _, title := range titles {
			if !slices.Contains(fired[technique], title) {
				t.Errorf("%s: %q did not fire (fired: %v)", technique, title, fired[technique])
			}
		}
	}
}
