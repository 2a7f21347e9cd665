package docs

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	sharedcorpus "github.com/pgtrail/pgtrail/internal/corpus"
)

// corpusDir returns the shared CloudTrail corpus, or "" if there is none.
func corpusDir(t *testing.T) string {
	t.Helper()
	return sharedcorpus.Find()
}

// record is one corpus record as the test reads it, with a plain JSON
// reader and independently of pgtrail's decoder: the expected answers are
// computed from these.
type record struct {
	File                    string
	ID                      string
	Time                    time.Time
	Source, Name, Type      string
	IdentityType, ARN, Key  string
	InvokedBy               string
	IP, UserAgent, Region   string
	Account                 string // recipientAccountId
	ErrorCode, ErrorMessage string
	Req, Resp, Extra        map[string]any
	Resources               []any
}

// corpus is what a database loaded from the corpus's s3/ tree holds: one
// record per stored event (the first of those sharing an eventID and
// time, in file order, as the sink's ON CONFLICT DO NOTHING keeps it), and
// the count of records without an eventTime.
type corpus struct {
	records     []*record
	noEventTime int
	files       int
}

// readCorpus reads files, in order, as the database is loaded from them.
func readCorpus(t *testing.T, files []string) *corpus {
	t.Helper()
	c := &corpus{files: len(files)}
	seen := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if zr, err := gzip.NewReader(bytes.NewReader(b)); err == nil {
			var buf bytes.Buffer
			if _, err := buf.ReadFrom(zr); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			b = buf.Bytes()
		}
		var doc struct{ Records []json.RawMessage }
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, raw := range doc.Records {
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.UseNumber()
			var m map[string]any
			if err := dec.Decode(&m); err != nil {
				continue // not an object: a reject
			}
			if m["eventTime"] == nil {
				c.noEventTime++
				continue
			}
			at, ok := parseTime(text(m["eventTime"]))
			if !ok {
				continue
			}
			r := newRecord(f, m, at)
			key := r.ID + "|" + at.String()
			if r.ID == "" {
				sum := sha256.Sum256(raw)
				key = fmt.Sprintf("raw:%x", sum)
			}
			if seen[key] {
				continue
			}
			seen[key] = true
			c.records = append(c.records, r)
		}
	}
	return c
}

func newRecord(file string, m map[string]any, at time.Time) *record {
	ui, _ := m["userIdentity"].(map[string]any)
	r := &record{
		File: file, ID: text(m["eventID"]), Time: at,
		Source: text(m["eventSource"]), Name: text(m["eventName"]), Type: text(m["eventType"]),
		IdentityType: text(ui["type"]), ARN: text(ui["arn"]), Key: text(ui["accessKeyId"]),
		InvokedBy: text(ui["invokedBy"]),
		IP:        text(m["sourceIPAddress"]), UserAgent: text(m["userAgent"]), Region: text(m["awsRegion"]),
		Account:   text(m["recipientAccountId"]),
		ErrorCode: text(m["errorCode"]), ErrorMessage: text(m["errorMessage"]),
	}
	r.Req, _ = m["requestParameters"].(map[string]any)
	r.Resp, _ = m["responseElements"].(map[string]any)
	r.Extra, _ = m["additionalEventData"].(map[string]any)
	r.Resources, _ = m["resources"].([]any)
	if r.Type == "AwsCloudTrailInsight" {
		if d, ok := m["insightDetails"].(map[string]any); ok {
			r.Source = cmpOr(r.Source, text(d["eventSource"]))
			r.Name = cmpOr(r.Name, text(d["eventName"]))
		}
	}
	return r
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// text is a JSON value as a text column holds it: a string's value, a
// number's or boolean's text, and "" (NULL) for anything else.
func text(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	case bool:
		return fmt.Sprint(v)
	}
	return ""
}

// field is obj->>'name' for the fields the queries read: "" when absent,
// null or not a scalar.
func field(obj map[string]any, name string) string {
	return text(obj[name])
}

// parseTime accepts the eventTime forms that occur in the corpus: RFC 3339,
// and a space instead of the T, with or without a zone (UTC).
func parseTime(s string) (time.Time, bool) {
	for _, layout := range []string{
		"2006-01-02T15:04:05.999999999Z07:00",
		"2006-01-02 15:04:05.999999999Z07:00",
		"2006-01-02 15:04:05.999999999",
	} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// between reports whether r lies in [from, to), dates as in the queries.
func (r *record) between(from, to string) bool {
	f, _ := time.Parse(time.DateOnly, from)
	u, _ := time.Parse(time.DateOnly, to)
	return !r.Time.Before(f) && r.Time.Before(u)
}

// The CIS monitoring controls, as the views implement them, written again
// here from the benchmark's metric filters.
var cisNames = map[string]struct {
	source string
	names  string
}{
	"iam_policy_changes":          {"iam.amazonaws.com", "DeleteGroupPolicy DeleteRolePolicy DeleteUserPolicy PutGroupPolicy PutRolePolicy PutUserPolicy CreatePolicy DeletePolicy CreatePolicyVersion DeletePolicyVersion AttachRolePolicy DetachRolePolicy AttachUserPolicy DetachUserPolicy AttachGroupPolicy DetachGroupPolicy"},
	"cloudtrail_changes":          {"cloudtrail.amazonaws.com", "CreateTrail UpdateTrail DeleteTrail StartLogging StopLogging PutEventSelectors PutInsightSelectors"},
	"kms_key_disabled_or_deleted": {"kms.amazonaws.com", "DisableKey ScheduleKeyDeletion"},
	"s3_bucket_policy_changes":    {"s3.amazonaws.com", "PutBucketAcl PutBucketPolicy PutBucketCors PutBucketLifecycle PutBucketReplication DeleteBucketPolicy DeleteBucketCors DeleteBucketLifecycle DeleteBucketReplication"},
	"config_changes":              {"config.amazonaws.com", "StopConfigurationRecorder DeleteDeliveryChannel PutDeliveryChannel PutConfigurationRecorder"},
	"security_group_changes":      {"ec2.amazonaws.com", "AuthorizeSecurityGroupIngress AuthorizeSecurityGroupEgress RevokeSecurityGroupIngress RevokeSecurityGroupEgress CreateSecurityGroup DeleteSecurityGroup ModifySecurityGroupRules"},
	"nacl_changes":                {"ec2.amazonaws.com", "CreateNetworkAcl CreateNetworkAclEntry DeleteNetworkAcl DeleteNetworkAclEntry ReplaceNetworkAclEntry ReplaceNetworkAclAssociation"},
	"network_gateway_changes":     {"ec2.amazonaws.com", "CreateCustomerGateway DeleteCustomerGateway AttachInternetGateway CreateInternetGateway DeleteInternetGateway DetachInternetGateway"},
	"route_table_changes":         {"ec2.amazonaws.com", "CreateRoute CreateRouteTable ReplaceRoute ReplaceRouteTableAssociation DeleteRouteTable DeleteRoute DisassociateRouteTable"},
	"vpc_changes":                 {"ec2.amazonaws.com", "CreateVpc DeleteVpc ModifyVpcAttribute AcceptVpcPeeringConnection CreateVpcPeeringConnection DeleteVpcPeeringConnection RejectVpcPeeringConnection AttachClassicLinkVpc DetachClassicLinkVpc DisableVpcClassicLink EnableVpcClassicLink"},
	"organizations_changes":       {"organizations.amazonaws.com", "AcceptHandshake AttachPolicy CreateAccount CreateOrganizationalUnit CreatePolicy DeclineHandshake DeleteOrganization DeleteOrganizationalUnit DeletePolicy DetachPolicy DisablePolicyType EnablePolicyType InviteAccountToOrganization LeaveOrganization MoveAccount RemoveAccountFromOrganization UpdatePolicy UpdateOrganizationalUnit"},
}

// cisControls numbers the findings as ct_cis_findings does.
var cisControls = map[string]string{
	"unauthorized_calls": "4.1", "console_logins_without_mfa": "4.2", "root_account_usage": "4.3",
	"iam_policy_changes": "4.4", "cloudtrail_changes": "4.5", "console_login_failures": "4.6",
	"kms_key_disabled_or_deleted": "4.7", "s3_bucket_policy_changes": "4.8", "config_changes": "4.9",
	"security_group_changes": "4.10", "nacl_changes": "4.11", "network_gateway_changes": "4.12",
	"route_table_changes": "4.13", "vpc_changes": "4.14", "organizations_changes": "4.15",
}

// findings returns the CIS findings that r is.
func (r *record) findings() []string {
	var out []string
	for f := range cisControls {
		if r.is(f) {
			out = append(out, f)
		}
	}
	return out
}

// is reports whether r is a finding of the named kind.
func (r *record) is(finding string) bool {
	switch finding {
	case "unauthorized_calls":
		return (strings.HasSuffix(r.ErrorCode, "UnauthorizedOperation") || strings.HasPrefix(r.ErrorCode, "AccessDenied")) &&
			r.IP != "delivery.logs.amazonaws.com" && r.Name != "HeadBucket"
	case "console_logins_without_mfa":
		return r.Source == "signin.amazonaws.com" && r.Name == "ConsoleLogin" && r.IdentityType == "IAMUser" &&
			field(r.Resp, "ConsoleLogin") == "Success" && field(r.Extra, "MFAUsed") != "Yes"
	case "root_account_usage":
		return r.IdentityType == "Root" && r.InvokedBy == "" && r.Type != "AwsServiceEvent"
	case "console_login_failures":
		return r.Source == "signin.amazonaws.com" && r.Name == "ConsoleLogin" &&
			(r.ErrorMessage == "Failed authentication" || field(r.Resp, "ConsoleLogin") == "Failure")
	}
	c, ok := cisNames[finding]
	if !ok {
		panic("unknown finding " + finding)
	}
	return r.Source == c.source && r.Name != "" && strings.Contains(" "+c.names+" ", " "+r.Name+" ")
}
