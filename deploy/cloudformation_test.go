package deploy_test

// The CloudFormation templates of deploy/cloudformation: read as
// CloudFormation reads them, held to deploy/iam-policy.json and the trust
// policies of deploy/IAM.md, linted with cfn-lint where it is installed,
// and deployed on moto, the AWS emulator, where pgtrail then runs with
// nothing but the role the template creates.

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/jackc/pgx/v5"
	"gopkg.in/yaml.v3"

	"github.com/pgtrail/pgtrail/internal/corpus"
	"github.com/pgtrail/pgtrail/internal/pgtest"
)

const (
	workerTemplate   = "cloudformation/pgtrail.yaml"
	backfillTemplate = "cloudformation/pgtrail-backfill.yaml"
)

// readTemplate reads a CloudFormation template with the short forms of the
// intrinsic functions turned into the long ones, as CloudFormation reads
// them: !Ref x is {"Ref": x}, !GetAtt r.a is {"Fn::GetAtt": [r, a]}, !Sub s
// is {"Fn::Sub": s}, and so on.
func readTemplate(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	tpl, ok := cfnValue(t, &doc).(map[string]any)
	if !ok {
		t.Fatalf("%s is not a mapping", path)
	}
	return tpl
}

func cfnValue(t *testing.T, n *yaml.Node) any {
	t.Helper()
	var v any
	switch n.Kind {
	case yaml.DocumentNode:
		return cfnValue(t, n.Content[0])
	case yaml.AliasNode:
		return cfnValue(t, n.Alias)
	case yaml.MappingNode:
		m := map[string]any{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			m[n.Content[i].Value] = cfnValue(t, n.Content[i+1])
		}
		v = m
	case yaml.SequenceNode:
		l := []any{}
		for _, c := range n.Content {
			l = append(l, cfnValue(t, c))
		}
		v = l
	case yaml.ScalarNode:
		if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
			v = n.Value
		} else if err := n.Decode(&v); err != nil {
			t.Fatalf("line %d: %v", n.Line, err)
		}
	}
	switch {
	case n.Tag == "!Ref":
		return map[string]any{"Ref": v}
	case n.Tag == "!Condition":
		return map[string]any{"Condition": v}
	case n.Tag == "!GetAtt":
		if s, ok := v.(string); ok {
			r, a, _ := strings.Cut(s, ".")
			v = []any{r, a}
		}
		return map[string]any{"Fn::GetAtt": v}
	case strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!"):
		return map[string]any{"Fn::" + n.Tag[1:]: v}
	}
	return v
}

// noValue is AWS::NoValue: dropped from the map or list it is in.
type noValue struct{}

// stack evaluates a template as CloudFormation would for one set of
// parameters: refs holds the parameters, the pseudo parameters (AWS::Region
// …), and what the test knows of resources (a Ref by logical ID,
// "Resource.Attribute" for Fn::GetAtt).
type stack struct {
	t     *testing.T
	tpl   map[string]any
	refs  map[string]any
	conds map[string]bool
}

// newStack takes the parameters' defaults, then params, then evaluates the
// template's conditions.
func newStack(t *testing.T, tpl map[string]any, params map[string]string, refs map[string]any) *stack {
	t.Helper()
	s := &stack{t: t, tpl: tpl, refs: map[string]any{"AWS::NoValue": noValue{}}, conds: map[string]bool{}}
	for name, p := range dig(tpl, "Parameters").(map[string]any) {
		if d, ok := dig(p, "Default").(string); ok {
			s.refs[name] = d
		} else if d := dig(p, "Default"); d != nil {
			s.refs[name] = fmt.Sprint(d)
		}
	}
	for k, v := range params {
		s.refs[k] = v
	}
	for k, v := range refs {
		s.refs[k] = v
	}
	conds, _ := dig(tpl, "Conditions").(map[string]any)
	var cond func(name string, depth int) bool
	cond = func(name string, depth int) bool {
		if v, ok := s.conds[name]; ok {
			return v
		}
		if depth > len(conds) {
			t.Fatalf("condition %s refers to itself", name)
		}
		expr, ok := conds[name]
		if !ok {
			t.Fatalf("no condition %s", name)
		}
		v := s.condition(expr, func(n string) bool { return cond(n, depth+1) })
		s.conds[name] = v
		return v
	}
	for name := range conds {
		cond(name, 0)
	}
	return s
}

func (s *stack) condition(expr any, named func(string) bool) bool {
	m, ok := expr.(map[string]any)
	if !ok || len(m) != 1 {
		s.t.Fatalf("condition %v is not one function", expr)
	}
	for fn, arg := range m {
		args, _ := arg.([]any)
		switch fn {
		case "Condition":
			return named(arg.(string))
		case "Fn::Equals":
			return equalYAML(s.eval(args[0]), s.eval(args[1]))
		case "Fn::Not":
			return !s.condition(args[0], named)
		case "Fn::And", "Fn::Or":
			and := fn == "Fn::And"
			for _, a := range args {
				if s.condition(a, named) != and {
					return !and
				}
			}
			return and
		}
		s.t.Fatalf("condition function %s is not known to the test", fn)
	}
	return false
}

var subVar = regexp.MustCompile(`\$\{([^}!][^}]*)\}`)

// eval resolves the intrinsic functions of v.
func (s *stack) eval(v any) any {
	switch v := v.(type) {
	case []any:
		out := []any{}
		for _, e := range v {
			if r := s.eval(e); r != (noValue{}) {
				out = append(out, r)
			}
		}
		return out
	case map[string]any:
		if len(v) == 1 {
			for fn, arg := range v {
				switch fn {
				case "Ref":
					r, ok := s.refs[arg.(string)]
					if !ok {
						s.t.Fatalf("the test has no value for Ref %s", arg)
					}
					return r
				case "Fn::GetAtt":
					l := arg.([]any)
					key := fmt.Sprint(l[0]) + "." + fmt.Sprint(l[1])
					r, ok := s.refs[key]
					if !ok {
						s.t.Fatalf("the test has no value for GetAtt %s", key)
					}
					return r
				case "Fn::If":
					l := arg.([]any)
					c, ok := s.conds[l[0].(string)]
					if !ok {
						s.t.Fatalf("Fn::If on unknown condition %v", l[0])
					}
					if c {
						return s.eval(l[1])
					}
					return s.eval(l[2])
				case "Fn::Sub":
					text, vars := "", map[string]any{}
					switch a := arg.(type) {
					case string:
						text = a
					case []any:
						text = a[0].(string)
						for k, e := range a[1].(map[string]any) {
							vars[k] = s.eval(e)
						}
					}
					return subVar.ReplaceAllStringFunc(text, func(m string) string {
						name := m[2 : len(m)-1]
						if r, ok := vars[name]; ok {
							return fmt.Sprint(r)
						}
						if r, ok := s.refs[name]; ok {
							return fmt.Sprint(r)
						}
						s.t.Fatalf("the test has no value for ${%s}", name)
						return ""
					})
				}
			}
		}
		out := map[string]any{}
		for k, e := range v {
			if r := s.eval(e); r != (noValue{}) {
				out[k] = r
			}
		}
		return out
	}
	return v
}

// resource returns the template's resource named name, of type typ.
func resource(t *testing.T, tpl map[string]any, name, typ string) map[string]any {
	t.Helper()
	r, _ := dig(tpl, "Resources", name).(map[string]any)
	if r == nil {
		t.Fatalf("the template has no resource %s", name)
	}
	if r["Type"] != typ {
		t.Fatalf("%s is a %v, want %s", name, r["Type"], typ)
	}
	return r
}

// exists says whether a resource is created for this stack's parameters.
func (s *stack) exists(name string) bool {
	c, ok := dig(s.tpl, "Resources", name, "Condition").(string)
	return !ok || s.conds[c]
}

// policy evaluates a policy document (a map, or JSON text) to JSON's types.
func (s *stack) policy(doc any) any {
	doc = s.eval(doc)
	if text, ok := doc.(string); ok {
		var v any
		if err := json.Unmarshal([]byte(text), &v); err != nil {
			s.t.Fatalf("policy text is not JSON: %v\n%s", err, text)
		}
		return v
	}
	var v any
	b, _ := json.Marshal(doc)
	_ = json.Unmarshal(b, &v)
	return v
}

// statements evaluates the statements of the named AWS::IAM::Policy
// resources, in order, skipping those whose condition is false.
func (s *stack) statements(names ...string) []any {
	var out []any
	for _, name := range names {
		r := resource(s.t, s.tpl, name, "AWS::IAM::Policy")
		if !s.exists(name) {
			continue
		}
		out = append(out, dig(s.policy(dig(r, "Properties", "PolicyDocument")), "Statement").([]any)...)
	}
	return out
}

// The example values of deploy/iam-policy.json and deploy/IAM.md, as the
// template's parameters and pseudo parameters.
var (
	exampleParams = map[string]string{
		"TrailBucketName": "example-cloudtrail-bucket",
		"TrailTopicArn":   "arn:aws:sns:eu-west-1:111122223333:example-trail",
		"TrailArn":        "arn:aws:cloudtrail:eu-west-1:111122223333:trail/example-trail",
		"TrailKmsKeyArn":  "arn:aws:kms:eu-west-1:111122223333:key/00000000-0000-0000-0000-000000000000",
		"EksOidcProvider": "oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE",
		"AlertTopicArn":   "arn:aws:sns:eu-west-1:111122223333:pgtrail-alerts",
	}
	exampleRefs = map[string]any{
		"AWS::Partition": "aws",
		"AWS::Region":    "eu-west-1",
		"AWS::AccountId": "111122223333",
		"AWS::StackName": "pgtrail",
		"Queue.Arn":      "arn:aws:sqs:eu-west-1:111122223333:pgtrail",
	}
)

// TestCloudFormationSubscriptionAndQueuePolicy checks the two resources
// moto does not create, AWS::SNS::Subscription and AWS::SQS::QueuePolicy,
// by reading the template: the queue subscribes to the trail's topic with
// raw delivery, and only that topic (or the trail's bucket) may send to it.
func TestCloudFormationSubscriptionAndQueuePolicy(t *testing.T) {
	t.Parallel()
	tpl := readTemplate(t, workerTemplate)
	topic := map[string]any{"Fn::If": []any{"CreateTrail", map[string]any{"Ref": "TrailTopic"}, map[string]any{"Ref": "TrailTopicArn"}}}
	queueArn := map[string]any{"Fn::GetAtt": []any{"Queue", "Arn"}}

	sub := resource(t, tpl, "Subscription", "AWS::SNS::Subscription")
	if c := dig(sub, "Condition"); c != "FromTopic" {
		t.Errorf("the Subscription's condition is %v, want FromTopic", c)
	}
	for prop, want := range map[string]any{"TopicArn": topic, "Protocol": "sqs", "Endpoint": queueArn, "RawMessageDelivery": true} {
		if got := dig(sub, "Properties", prop); !equalYAML(got, want) {
			t.Errorf("Subscription %s = %v, want %v", prop, got, want)
		}
	}

	qp := resource(t, tpl, "QueuePolicy", "AWS::SQS::QueuePolicy")
	if dig(qp, "Condition") != nil {
		t.Error("the QueuePolicy has a condition: the queue would take no notification without it")
	}
	if got := dig(qp, "Properties", "Queues"); !equalYAML(got, []any{map[string]any{"Ref": "Queue"}}) {
		t.Errorf("the QueuePolicy applies to %v, want the Queue alone", got)
	}
	stmts, _ := dig(qp, "Properties", "PolicyDocument", "Statement").([]any)
	if len(stmts) != 1 {
		t.Fatalf("the QueuePolicy has %d statements, want one Fn::If: the topic's, or the bucket's", len(stmts))
	}
	choice, _ := dig(stmts[0], "Fn::If").([]any)
	if len(choice) != 3 || choice[0] != "FromTopic" {
		t.Fatalf("the QueuePolicy's statement is %v, want Fn::If [FromTopic, topic, bucket]", stmts[0])
	}
	checkSend := func(what string, stmt any, service string, source any) {
		t.Helper()
		for key, want := range map[string]any{
			"Effect":    "Allow",
			"Principal": map[string]any{"Service": service},
			"Action":    "sqs:SendMessage",
			"Resource":  queueArn,
		} {
			if got := dig(stmt, key); !equalYAML(got, want) {
				t.Errorf("the %s's statement: %s = %v, want %v", what, key, got, want)
			}
		}
		if got := dig(stmt, "Condition", "ArnEquals", "aws:SourceArn"); !equalYAML(got, source) {
			t.Errorf("the %s's statement: aws:SourceArn = %v, want %v", what, got, source)
		}
	}
	checkSend("topic", choice[1], "sns.amazonaws.com", topic)
	checkSend("bucket", choice[2], "s3.amazonaws.com", map[string]any{"Fn::Sub": "arn:${AWS::Partition}:s3:::${TrailBucketName}"})
	if dig(choice[2], "Condition", "StringEquals", "aws:SourceAccount") == nil {
		t.Error("the bucket's statement does not name the bucket owner's account (aws:SourceAccount)")
	}

	// The subscription, the topic statement and the topic output exist
	// exactly when there is a topic: created, or given. Evaluated for each
	// way of giving the trail.
	for _, c := range []struct {
		params map[string]string
		topic  any
	}{
		{map[string]string{"CreateTrail": "true"}, "arn:aws:sns:eu-west-1:111122223333:created"},
		{map[string]string{"TrailBucketName": "b", "TrailTopicArn": "arn:aws:sns:eu-west-1:111122223333:given"}, "arn:aws:sns:eu-west-1:111122223333:given"},
		{map[string]string{"TrailBucketName": "b"}, nil},
	} {
		s := newStack(t, tpl, c.params, map[string]any{"TrailTopic": "arn:aws:sns:eu-west-1:111122223333:created", "TrailBucket": "created-bucket"})
		for k, v := range exampleRefs {
			s.refs[k] = v
		}
		if s.exists("Subscription") != (c.topic != nil) {
			t.Errorf("%v: the Subscription exists: %v", c.params, s.exists("Subscription"))
		}
		stmt := dig(s.policy(dig(qp, "Properties", "PolicyDocument")), "Statement", 0)
		if c.topic != nil {
			if got := dig(s.eval(dig(sub, "Properties")), "TopicArn"); got != c.topic {
				t.Errorf("%v: the Subscription's topic is %v, want %v", c.params, got, c.topic)
			}
			if got := dig(stmt, "Condition", "ArnEquals", "aws:SourceArn"); got != c.topic {
				t.Errorf("%v: the queue takes messages from %v, want the topic %v", c.params, got, c.topic)
			}
		} else if got := dig(stmt, "Condition", "ArnEquals", "aws:SourceArn"); got != "arn:aws:s3:::b" {
			t.Errorf("%v: the queue takes messages from %v, want the bucket", c.params, got)
		}
	}

	// The dead-letter queue, and the outputs the workers need.
	q := resource(t, tpl, "Queue", "AWS::SQS::Queue")
	if got := dig(q, "Properties", "RedrivePolicy", "deadLetterTargetArn"); !equalYAML(got, map[string]any{"Fn::GetAtt": []any{"DeadLetterQueue", "Arn"}}) {
		t.Errorf("the Queue's dead-letter target is %v", got)
	}
	resource(t, tpl, "DeadLetterQueue", "AWS::SQS::Queue")
	for name, want := range map[string]any{
		"QueueUrl":           map[string]any{"Ref": "Queue"},
		"DeadLetterQueueUrl": map[string]any{"Ref": "DeadLetterQueue"},
		"WorkerRoleArn":      map[string]any{"Fn::GetAtt": []any{"WorkerRole", "Arn"}},
	} {
		if got := dig(tpl, "Outputs", name, "Value"); !equalYAML(got, want) {
			t.Errorf("output %s = %v, want %v", name, got, want)
		}
	}
}

// TestCloudFormationPolicyIsIAMPolicy evaluates the template's worker
// policies for deploy/iam-policy.json's example values: the result must be
// that file, statement for statement.
func TestCloudFormationPolicyIsIAMPolicy(t *testing.T) {
	t.Parallel()
	tpl := readTemplate(t, workerTemplate)
	s := newStack(t, tpl, exampleParams, exampleRefs)
	got := s.statements("WorkerPolicy", "WorkerKmsPolicy", "WorkerAlertsPolicy")
	want := dig(readJSON(t, "iam-policy.json"), "Statement")
	if !equalYAML(got, want) {
		g, _ := json.MarshalIndent(got, "", "  ")
		t.Errorf("the template's worker policy, for iam-policy.json's example values, is\n%s\nnot iam-policy.json's statements", g)
	}
	// Without a KMS key there is no kms:Decrypt at all.
	params := withParams(exampleParams, map[string]string{"TrailKmsKeyArn": ""})
	for _, st := range newStack(t, tpl, params, exampleRefs).statements("WorkerPolicy", "WorkerKmsPolicy") {
		if strings.Contains(fmt.Sprint(dig(st, "Action")), "kms:") {
			t.Errorf("without TrailKmsKeyArn the workers still get %v", dig(st, "Action"))
		}
	}
	// Without an alert topic there is no SNS permission at all.
	params = withParams(exampleParams, map[string]string{"AlertTopicArn": ""})
	for _, st := range newStack(t, tpl, params, exampleRefs).statements("WorkerPolicy", "WorkerKmsPolicy", "WorkerAlertsPolicy") {
		if strings.Contains(fmt.Sprint(dig(st, "Action")), "sns:") {
			t.Errorf("without AlertTopicArn the workers still get %v", dig(st, "Action"))
		}
	}
	// An organization trail's prefix reads every member account's files.
	params = withParams(exampleParams, map[string]string{"TrailLogPrefix": "AWSLogs/o-exampleorgid/*/"})
	res := fmt.Sprint(dig(newStack(t, tpl, params, exampleRefs).statements("WorkerPolicy"), 1, "Resource"))
	if !strings.Contains(res, "arn:aws:s3:::example-cloudtrail-bucket/AWSLogs/o-exampleorgid/*/CloudTrail/*") {
		t.Errorf("an organization trail's prefix gives %s", res)
	}
}

func withParams(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// TestCloudFormationBackfillPolicy checks the backfill role: it lists and
// reads the trail's log files, the same objects the workers read, and
// nothing else.
func TestCloudFormationBackfillPolicy(t *testing.T) {
	t.Parallel()
	worker := newStack(t, readTemplate(t, workerTemplate), exampleParams, exampleRefs).statements("WorkerPolicy", "WorkerKmsPolicy")
	tpl := readTemplate(t, backfillTemplate)
	stmts := newStack(t, tpl, exampleParams, exampleRefs).statements("BackfillPolicy", "BackfillKmsPolicy")
	bySid := map[string]any{}
	for _, st := range stmts {
		bySid[dig(st, "Sid").(string)] = st
	}
	if len(bySid) != 5 {
		t.Fatalf("backfill statements %v, want DiscoverTheTrailsFolders, ListTheTrailsLogFiles, ReadTheTrailsLogFiles, ReadCloudTrailsDigestPublicKeys, DecryptTheTrailsLogFilesThroughS3", slices.Sorted(maps.Keys(bySid)))
	}
	// Discovery lists folder names only: the delimiter is required.
	discover := bySid["DiscoverTheTrailsFolders"]
	if dig(discover, "Action") != "s3:ListBucket" || dig(discover, "Condition", "StringEquals", "s3:delimiter") != "/" {
		t.Errorf("discovery: %v", discover)
	}
	if got, want := dig(discover, "Condition", "StringLike", "s3:prefix"), []any{"*AWSLogs/", "*AWSLogs/*/"}; !equalYAML(got, want) {
		t.Errorf("discovery is limited to the prefixes %v, want %v", got, want)
	}
	// Sending to a queue is there only when a queue is named.
	if s := newStack(t, tpl, exampleParams, exampleRefs).statements("BackfillEnqueuePolicy"); len(s) != 0 {
		t.Errorf("without BackfillQueueArn, the role may send: %v", s)
	}
	// Reading and decrypting are the workers' statements exactly.
	for _, st := range worker {
		sid := dig(st, "Sid").(string)
		if sid == "ConsumeTheNotificationQueue" {
			continue
		}
		if !equalYAML(bySid[sid], st) {
			t.Errorf("backfill's %s is %v, the workers' %v", sid, bySid[sid], st)
		}
	}
	list := bySid["ListTheTrailsLogFiles"]
	if dig(list, "Action") != "s3:ListBucket" || dig(list, "Resource") != "arn:aws:s3:::example-cloudtrail-bucket" {
		t.Errorf("listing: %v on %v, want s3:ListBucket on the trail's bucket", dig(list, "Action"), dig(list, "Resource"))
	}
	wantPrefixes := []any{"AWSLogs/111122223333/CloudTrail/*", "AWSLogs/111122223333/CloudTrail-Insight/*", "AWSLogs/111122223333/CloudTrail-Digest/*"}
	if got := dig(list, "Condition", "StringLike", "s3:prefix"); !equalYAML(got, wantPrefixes) {
		t.Errorf("listing is limited to the prefixes %v, want %v", got, wantPrefixes)
	}
	if got := dig(tpl, "Outputs", "BackfillRoleArn", "Value"); !equalYAML(got, map[string]any{"Fn::GetAtt": []any{"BackfillRole", "Arn"}}) {
		t.Errorf("output BackfillRoleArn = %v", got)
	}
}

// TestCloudFormationTrustIsIAMMD evaluates the worker role's trust policy
// for each platform and compares it with the one deploy/IAM.md shows.
func TestCloudFormationTrustIsIAMMD(t *testing.T) {
	t.Parallel()
	tpl := readTemplate(t, workerTemplate)
	role := resource(t, tpl, "WorkerRole", "AWS::IAM::Role")
	shown := iamMDPolicies(t)
	for _, c := range []struct {
		platform, marker string
	}{
		{"ecs", "ecs-tasks.amazonaws.com"},
		{"eks-irsa", "sts:AssumeRoleWithWebIdentity"},
		{"eks-pod-identity", "pods.eks.amazonaws.com"},
	} {
		s := newStack(t, tpl, withParams(exampleParams, map[string]string{"WorkerPlatform": c.platform}), exampleRefs)
		got := s.policy(dig(role, "Properties", "AssumeRolePolicyDocument"))
		var want any
		for _, p := range shown {
			if strings.Contains(string(mustJSON(p)), c.marker) && dig(p, "Version") != nil {
				want = p
			}
		}
		if want == nil {
			t.Errorf("deploy/IAM.md shows no trust policy for %s (one naming %s)", c.platform, c.marker)
			continue
		}
		if !equalYAML(got, want) {
			t.Errorf("%s: the template's trust policy is\n%s\nIAM.md's\n%s", c.platform, mustJSON(got), mustJSON(want))
		}
	}
	// With KEDA's operator role, the IRSA trust has one more statement, the
	// one IAM.md shows on its own.
	keda := "arn:aws:iam::111122223333:role/keda-operator"
	s := newStack(t, tpl, withParams(exampleParams, map[string]string{"WorkerPlatform": "eks-irsa", "KedaOperatorRoleArn": keda}), exampleRefs)
	stmts, _ := dig(s.policy(dig(role, "Properties", "AssumeRolePolicyDocument")), "Statement").([]any)
	var want any
	for _, p := range shown {
		if dig(p, "Principal", "AWS") == keda {
			want = p
		}
	}
	if len(stmts) != 2 || want == nil || !equalYAML(stmts[1], want) {
		t.Errorf("with KedaOperatorRoleArn the IRSA trust's statements are %s; IAM.md shows %s", mustJSON(stmts), mustJSON(want))
	}
}

func mustJSON(v any) []byte {
	b, _ := json.MarshalIndent(v, "", "  ")
	return b
}

// iamMDPolicies returns the JSON blocks of deploy/IAM.md.
func iamMDPolicies(t *testing.T) []any {
	t.Helper()
	b, err := os.ReadFile("IAM.md")
	if err != nil {
		t.Fatal(err)
	}
	var out []any
	for _, m := range regexp.MustCompile("(?s)```json\n(.*?)```").FindAllSubmatch(b, -1) {
		// Fragments (a Condition alone, say) are not policies: skipped.
		var v any
		if json.Unmarshal(m[1], &v) == nil {
			out = append(out, v)
		}
	}
	return out
}

// TestCloudFormationLint runs cfn-lint, which knows every resource's
// properties and their types, on the templates.
func TestCloudFormationLint(t *testing.T) {
	if testing.Short() {
		t.Skip("cfn-lint takes several seconds to start")
	}
	t.Parallel()
	lint, err := exec.LookPath("cfn-lint")
	if err != nil {
		t.Skip("cfn-lint is not installed (pip install cfn-lint): the templates are not linted")
	}
	out, err := exec.Command(lint, "--", workerTemplate, backfillTemplate).CombinedOutput()
	if err != nil {
		t.Errorf("cfn-lint: %v\n%s", err, out)
	}
}

// TestCloudFormationOnMoto deploys the templates on moto and runs pgtrail
// against what they created:
//
//   - a stack that creates the trail (bucket and topic), with the workers'
//     role for ECS: the corpus is uploaded as CloudTrail writes it and
//     announced on the topic as CloudTrail announces it;
//   - a stack for an existing organization trail's bucket with S3 event
//     notifications, and the role for EKS (IRSA): the bucket's
//     notifications are configured as the README says, and uploading the
//     corpus announces it;
//   - the backfill stack for that bucket.
//
// moto then checks signatures and IAM policies (action and resource, not
// conditions), and pgtrail runs with the credentials of the role the stack
// created and nothing else: its events are stored, its queue drained, and a
// notification of a file outside the trail's prefix ends in the dead-letter
// queue through the deployed redrive policy.
//
// moto does not create every resource: AWS::SNS::Subscription,
// AWS::SQS::QueuePolicy, AWS::SNS::TopicPolicy, AWS::S3::BucketPolicy and
// AWS::CloudTrail::Trail are skipped with a warning. The test does not count
// them as deployed: it subscribes the queue itself, as the template's
// Subscription says, and TestCloudFormationSubscriptionAndQueuePolicy checks
// the Subscription and the QueuePolicy in the template.
func TestCloudFormationOnMoto(t *testing.T) {
	if testing.Short() {
		t.Skip("starts moto_server, builds and runs pgtrail")
	}
	motoBin, err := exec.LookPath("moto_server")
	if err != nil {
		t.Skip("moto_server is not installed (pip install 'moto[server]'): the templates are not deployed")
	}
	corpusDir := filepath.Join(corpus.Dir(t), "s3")
	t.Parallel()

	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()

	// Build pgtrail while moto starts.
	bin := filepath.Join(t.TempDir(), "pgtrail")
	built := make(chan error, 1)
	go func() {
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/pgtrail")
		build.Dir = repoRoot
		out, err := build.CombinedOutput()
		if err != nil {
			err = fmt.Errorf("go build ./cmd/pgtrail: %v\n%s", err, out)
		}
		built <- err
	}()
	m := startMoto(t, ctx, motoBin)
	admin := m.config(credentials.NewStaticCredentialsProvider("testing", "testing", ""))
	cf := cloudformation.NewFromConfig(admin)
	s3c := s3.NewFromConfig(admin, func(o *s3.Options) { o.UsePathStyle = true })
	sqsc := sqs.NewFromConfig(admin)
	snsc := sns.NewFromConfig(admin)
	iamc := iam.NewFromConfig(admin)

	objects := corpusObjects(t, corpusDir)
	if len(objects) < 16 {
		t.Fatalf("found only %d CloudTrail files in %s", len(objects), corpusDir)
	}

	// --- The stack that creates the trail --------------------------------
	tplWorker := readTemplate(t, workerTemplate)
	createdParams := map[string]string{
		"CreateTrail":    "true",
		"QueueName":      "pgtrail-created",
		"TrailKmsKeyArn": "arn:aws:kms:" + motoRegion + ":" + motoAccount + ":key/00000000-0000-0000-0000-000000000000",
	}
	created := m.createStack(t, ctx, cf, "pgtrail-created", workerTemplate, createdParams)
	bucket, topic := created.out["TrailBucketName"], created.out["TrailTopicArn"]
	if bucket == "" || topic == "" {
		t.Fatalf("the created trail's stack has no bucket or topic in its outputs: %v", created.out)
	}
	s := newStack(t, tplWorker, createdParams, map[string]any{
		"AWS::Partition": "aws", "AWS::Region": motoRegion, "AWS::AccountId": motoAccount, "AWS::StackName": "pgtrail-created",
		"Queue.Arn": created.out["QueueArn"], "DeadLetterQueue.Arn": created.out["DeadLetterQueueArn"],
		"TrailBucket": bucket, "TrailTopic": topic, "Queue": created.out["QueueUrl"],
	})
	m.verify(t, ctx, s, created, sqsc, s3c, snsc, iamc)

	// The subscription: moto skips it, so the test makes it, from the
	// template's own properties.
	sub := s.eval(dig(resource(t, tplWorker, "Subscription", "AWS::SNS::Subscription"), "Properties"))
	if created.deployed["Subscription"] {
		t.Log("moto created the Subscription itself")
	} else {
		t.Logf("moto did not create the Subscription: the test subscribes the queue as the template says (%v)", sub)
		_, err := snsc.Subscribe(ctx, &sns.SubscribeInput{
			TopicArn:   aws.String(fmt.Sprint(dig(sub, "TopicArn"))),
			Protocol:   aws.String(fmt.Sprint(dig(sub, "Protocol"))),
			Endpoint:   aws.String(fmt.Sprint(dig(sub, "Endpoint"))),
			Attributes: map[string]string{"RawMessageDelivery": fmt.Sprint(dig(sub, "RawMessageDelivery"))},
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	// The corpus as CloudTrail writes it into this account's prefix, and
	// announced as CloudTrail announces it, four files a message.
	var createdObjs []object
	for i, o := range objects[:9] {
		o.key = "AWSLogs/" + motoAccount + "/" + o.rest
		if i == 8 { // a CloudTrail-Insight file, the second prefix the role reads
			o = objects[len(objects)-1]
			o.key = "AWSLogs/" + motoAccount + "/" + o.rest
		}
		createdObjs = append(createdObjs, o)
	}
	if !strings.Contains(createdObjs[8].rest, "CloudTrail-Insight/") {
		t.Fatalf("the corpus has no CloudTrail-Insight file last: %s", createdObjs[8].rest)
	}
	put(t, ctx, s3c, bucket, createdObjs)
	// A digest file: pgtrail checks those, and the role may read them.
	digestKey := "AWSLogs/" + motoAccount + "/CloudTrail-Digest/" + motoRegion + "/2024/08/01/" + motoAccount + "_CloudTrail-Digest_" + motoRegion + "_pgtrail_" + motoRegion + "_20240801T120000Z.json.gz"
	put(t, ctx, s3c, bucket, []object{{key: digestKey, body: createdObjs[0].body}})
	for i := 0; i < len(createdObjs); i += 4 {
		var keys []string
		for _, o := range createdObjs[i:min(i+4, len(createdObjs))] {
			keys = append(keys, o.key)
		}
		publish(t, ctx, snsc, topic, bucket, keys)
	}
	// A file of another account, where the role may not read: pgtrail is
	// not told to refuse it (no PGTRAIL_ALLOWED_PREFIXES), so IAM does, and
	// the message goes to the dead-letter queue.
	outside := object{key: "AWSLogs/999999999999/CloudTrail/" + objects[0].rest[len("CloudTrail/"):], body: objects[0].body}
	put(t, ctx, s3c, bucket, []object{outside})
	publish(t, ctx, snsc, topic, bucket, []string{outside.key})

	// Raw delivery: the queue holds CloudTrail's message itself.
	peek, err := sqsc.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(created.out["QueueUrl"]), VisibilityTimeout: 1, MaxNumberOfMessages: 1})
	if err != nil || len(peek.Messages) != 1 {
		t.Fatalf("receive from the created queue: %v (%d messages)", err, len(peek.Messages))
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(aws.ToString(peek.Messages[0].Body)), &body); err != nil || body["s3Bucket"] != bucket || body["Type"] != nil {
		t.Fatalf("the queue holds %s, want CloudTrail's own notification (raw delivery)", aws.ToString(peek.Messages[0].Body))
	}

	// --- The stack for an existing organization trail's bucket -----------
	orgBucket := "pgtrail-org-trail"
	orgPrefix := "AWSLogs/o-pgtrailtest/"
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(orgBucket),
		CreateBucketConfiguration: &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(motoRegion)}}); err != nil {
		t.Fatal(err)
	}
	orgParams := map[string]string{
		"TrailBucketName":     orgBucket,
		"TrailLogPrefix":      orgPrefix + "*/",
		"QueueName":           "pgtrail-org",
		"WorkerPlatform":      "eks-irsa",
		"EksOidcProvider":     "oidc.eks." + motoRegion + ".amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE",
		"KedaOperatorRoleArn": "arn:aws:iam::" + motoAccount + ":role/keda-operator",
	}
	org := m.createStack(t, ctx, cf, "pgtrail-org", workerTemplate, orgParams)
	so := newStack(t, tplWorker, orgParams, map[string]any{
		"AWS::Partition": "aws", "AWS::Region": motoRegion, "AWS::AccountId": motoAccount, "AWS::StackName": "pgtrail-org",
		"Queue.Arn": org.out["QueueArn"], "DeadLetterQueue.Arn": org.out["DeadLetterQueueArn"], "Queue": org.out["QueueUrl"],
	})
	m.verify(t, ctx, so, org, sqsc, s3c, snsc, iamc)
	if _, ok := org.out["TrailTopicArn"]; ok {
		t.Error("a stack without a topic outputs TrailTopicArn")
	}
	// The bucket's notifications, as deploy/cloudformation/README.md says.
	if _, err := s3c.PutBucketNotificationConfiguration(ctx, &s3.PutBucketNotificationConfigurationInput{
		Bucket: aws.String(orgBucket),
		NotificationConfiguration: &s3types.NotificationConfiguration{QueueConfigurations: []s3types.QueueConfiguration{{
			QueueArn: aws.String(org.out["QueueArn"]),
			Events:   []s3types.Event{"s3:ObjectCreated:*"},
			Filter: &s3types.NotificationConfigurationFilter{Key: &s3types.S3KeyFilter{FilterRules: []s3types.FilterRule{
				{Name: s3types.FilterRuleNamePrefix, Value: aws.String("AWSLogs/")},
			}}},
		}}},
	}); err != nil {
		t.Fatal(err)
	}
	var orgObjs []object
	for _, o := range objects[9:17] {
		o.key = orgPrefix + o.account + "/" + o.rest
		orgObjs = append(orgObjs, o)
	}
	put(t, ctx, s3c, orgBucket, orgObjs)

	// --- The backfill stack ------------------------------------------------
	backfill := m.createStack(t, ctx, cf, "pgtrail-backfill", backfillTemplate, map[string]string{
		"TrailBucketName": orgBucket,
		"TrailLogPrefix":  orgPrefix + "*/",
	})
	sb := newStack(t, readTemplate(t, backfillTemplate), map[string]string{"TrailBucketName": orgBucket, "TrailLogPrefix": orgPrefix + "*/"},
		map[string]any{"AWS::Partition": "aws", "AWS::Region": motoRegion, "AWS::AccountId": motoAccount, "AWS::StackName": "pgtrail-backfill"})
	m.verify(t, ctx, sb, backfill, sqsc, s3c, snsc, iamc)

	// --- From here on, every request is authorized by moto ---------------
	// The roles' credentials are taken before: moto evaluates a trust
	// policy's principal only for principals of type AWS, and the workers'
	// are services and an OIDC provider (the trust policies are compared
	// with deploy/IAM.md by TestCloudFormationTrustIsIAMMD).
	createdCreds := assumeRole(t, ctx, admin, created.out["WorkerRoleArn"])
	orgCreds := assumeRole(t, ctx, admin, org.out["WorkerRoleArn"])
	backfillCreds := assumeRole(t, ctx, admin, backfill.out["BackfillRoleArn"])
	// moto authorizes an SQS call by its API name, where IAM authorizes
	// DeleteMessageBatch with sqs:DeleteMessage: the workers' roles get the
	// API name too, on their own queue, in moto only.
	for _, d := range []*deployedStack{created, org} {
		doc := fmt.Sprintf(`{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sqs:DeleteMessageBatch", "Resource": %q}]}`, d.out["QueueArn"])
		role := d.out["WorkerRoleArn"][strings.LastIndex(d.out["WorkerRoleArn"], "/")+1:]
		if _, err := iamc.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(role), PolicyName: aws.String("moto-api-names"), PolicyDocument: aws.String(doc)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-built; err != nil {
		t.Fatal(err)
	}
	m.authorize(t, true)

	// What the workers' role may not do.
	worker := m.config(createdCreds)
	ws3 := s3.NewFromConfig(worker, func(o *s3.Options) { o.UsePathStyle = true })
	wsqs := sqs.NewFromConfig(worker)
	if _, err := ws3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(digestKey)}); err != nil {
		t.Errorf("the worker cannot read a digest file: %v", err)
	}
	// (moto cannot check the signature of a listing whose prefix holds a
	// slash: the listings here name none.)
	denied(t, "the worker lists the bucket", func() error {
		_, err := ws3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String("AWSLogs")})
		return err
	})
	denied(t, "the worker sends to its queue", func() error {
		_, err := wsqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(created.out["QueueUrl"]), MessageBody: aws.String("{}")})
		return err
	})
	denied(t, "the worker receives from another stack's queue", func() error {
		_, err := wsqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(org.out["QueueUrl"]), VisibilityTimeout: 0})
		return err
	})
	denied(t, "the worker receives from its dead-letter queue", func() error {
		_, err := wsqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(created.out["DeadLetterQueueUrl"]), VisibilityTimeout: 0})
		return err
	})

	// pgtrail, with each role's credentials and nothing else.
	type run struct {
		name, queue, bucket, prefixes string
		creds                         credentials.StaticCredentialsProvider
		objs                          []object
		dead                          int
	}
	runs := []run{
		{"created trail, SNS raw delivery", created.out["QueueUrl"], bucket, "", createdCreds, createdObjs, 1},
		{"organization trail, S3 event notifications", org.out["QueueUrl"], orgBucket, orgPrefix, orgCreds, orgObjs, 0},
	}
	dbs := make([]string, len(runs))
	logs := make([][]byte, len(runs))
	var wg sync.WaitGroup
	for i, r := range runs {
		dbs[i] = pgtest.New(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			logs[i] = m.runPgtrail(t, ctx, bin, dbs[i], r.name, r.queue, r.bucket, r.prefixes, r.creds)
		}()
	}
	wg.Wait()

	// The backfill role lists and reads the trail's files, and no queue.
	// moto checks the action and the bucket of a listing, not the s3:prefix
	// condition (TestCloudFormationBackfillPolicy reads it in the template).
	bs3 := s3.NewFromConfig(m.config(backfillCreds), func(o *s3.Options) { o.UsePathStyle = true })
	listed, err := bs3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(orgBucket), Prefix: aws.String("AWSLogs")})
	if err != nil || len(listed.Contents) != len(orgObjs) {
		t.Errorf("the backfill role lists %s: %v", orgBucket, err)
	} else if _, err := bs3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(orgBucket), Key: listed.Contents[0].Key}); err != nil {
		t.Errorf("the backfill role reads %s: %v", aws.ToString(listed.Contents[0].Key), err)
	}
	denied(t, "the backfill role lists the other trail's bucket", func() error {
		_, err := bs3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String("AWSLogs")})
		return err
	})
	denied(t, "the backfill role reads the other trail's bucket", func() error {
		_, err := bs3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(createdObjs[0].key)})
		return err
	})
	denied(t, "the backfill role receives from a queue", func() error {
		_, err := sqs.NewFromConfig(m.config(backfillCreds)).ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(org.out["QueueUrl"]), VisibilityTimeout: 0})
		return err
	})
	m.authorize(t, false)

	// Every file's records are in the database, each queue is drained, and
	// the file outside the trail's prefix waits in the dead-letter queue.
	defer func() {
		if t.Failed() {
			for i, r := range runs {
				t.Logf("%s: pgtrail's output:\n%s", r.name, logs[i])
			}
		}
	}()
	// pgtrail's read of the file outside the trail's prefix was denied, and
	// its message kept. pgtrail makes it visible again at once, and SQS
	// moves it to the dead-letter queue at its maxReceiveCount-th receive;
	// pgtrail -drain may stop before, so the test receives it until then.
	if !bytes.Contains(logs[0], []byte(outside.key)) || !bytes.Contains(logs[0], []byte("AccessDenied")) {
		t.Errorf("pgtrail's log does not show the role denying %s", outside.key)
	}
	redriveDead(t, ctx, sqsc, created.out["QueueUrl"], created.out["DeadLetterQueueUrl"])
	for i, r := range runs {
		checkStored(t, ctx, r.name, dbs[i], r.bucket, r.objs)
		for q, want := range map[string]int{r.queue: 0, strings.TrimSuffix(r.queue, "/") + "-dlq": r.dead} {
			a, err := sqsc.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(q),
				AttributeNames: []sqstypes.QueueAttributeName{"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"}})
			if err != nil {
				t.Fatal(err)
			}
			n, _ := strconv.Atoi(a.Attributes["ApproximateNumberOfMessages"])
			nv, _ := strconv.Atoi(a.Attributes["ApproximateNumberOfMessagesNotVisible"])
			if n+nv != want {
				t.Errorf("%s: %s holds %d messages (%d in flight), want %d", r.name, q, n+nv, nv, want)
			}
		}
	}
}

const (
	motoRegion  = "eu-west-1"
	motoAccount = "123456789012" // moto's default account
)

type moto struct {
	url string
}

// startMoto starts moto_server on a free loopback port and stops it when
// the test ends.
func startMoto(t *testing.T, ctx context.Context, bin string) *moto {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	logPath := filepath.Join(t.TempDir(), "moto.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			if len(b) > 6000 {
				b = b[len(b)-6000:]
			}
			t.Logf("moto_server's log (end):\n%s", b)
		}
	})
	m := &moto{url: fmt.Sprintf("http://127.0.0.1:%d", port)}
	for {
		resp, err := http.Get(m.url + "/moto-api/")
		if err == nil {
			resp.Body.Close()
			return m
		}
		select {
		case <-ctx.Done():
			t.Fatalf("moto_server did not answer on %s: %v", m.url, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (m *moto) config(creds aws.CredentialsProvider) aws.Config {
	return aws.Config{Region: motoRegion, Credentials: creds, BaseEndpoint: aws.String(m.url)}
}

// authorize turns moto's IAM authorization on (every request from now) or
// off.
func (m *moto) authorize(t *testing.T, on bool) {
	t.Helper()
	count := "inf"
	if on {
		count = "0"
	}
	resp, err := http.Post(m.url+"/moto-api/reset-auth", "text/plain", strings.NewReader(count))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("moto reset-auth %s: %s", count, resp.Status)
	}
	if on {
		t.Cleanup(func() {
			if resp, err := http.Post(m.url+"/moto-api/reset-auth", "text/plain", strings.NewReader("inf")); err == nil {
				resp.Body.Close()
			}
		})
	}
}

type deployedStack struct {
	name     string
	out      map[string]string
	deployed map[string]bool // logical IDs the test saw created in the emulator
}

func (m *moto) createStack(t *testing.T, ctx context.Context, cf *cloudformation.Client, name, template string, params map[string]string) *deployedStack {
	t.Helper()
	body, err := os.ReadFile(template)
	if err != nil {
		t.Fatal(err)
	}
	in := &cloudformation.CreateStackInput{
		StackName:    aws.String(name),
		TemplateBody: aws.String(string(body)),
		Capabilities: []cftypes.Capability{cftypes.CapabilityCapabilityIam},
	}
	for k, v := range params {
		in.Parameters = append(in.Parameters, cftypes.Parameter{ParameterKey: aws.String(k), ParameterValue: aws.String(v)})
	}
	if _, err := cf.CreateStack(ctx, in); err != nil {
		t.Fatalf("create stack %s: %v", name, err)
	}
	for {
		d, err := cf.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(name)})
		if err != nil {
			t.Fatal(err)
		}
		st := d.Stacks[0]
		switch st.StackStatus {
		case cftypes.StackStatusCreateInProgress:
			select {
			case <-ctx.Done():
				t.Fatalf("stack %s: still %s", name, st.StackStatus)
			case <-time.After(100 * time.Millisecond):
			}
			continue
		case cftypes.StackStatusCreateComplete:
		default:
			t.Fatalf("stack %s: %s %s", name, st.StackStatus, aws.ToString(st.StackStatusReason))
		}
		out := map[string]string{}
		for _, o := range st.Outputs {
			out[aws.ToString(o.OutputKey)] = aws.ToString(o.OutputValue)
		}
		t.Logf("stack %s: %v", name, out)
		return &deployedStack{name: name, out: out, deployed: map[string]bool{}}
	}
}

// mustDeploy are the resource types moto creates from a template: each of
// the stack's resources of these types must be found in the emulator.
var mustDeploy = map[string]bool{
	"AWS::SQS::Queue": true, "AWS::IAM::Role": true, "AWS::IAM::Policy": true, "AWS::S3::Bucket": true, "AWS::SNS::Topic": true,
}

// verify looks for each resource of the stack in the emulator, and compares
// what it finds with the template evaluated by the test (s): the queues'
// settings, the roles' trust and the policies' documents. A resource not
// found is reported and not counted as deployed; one of a type moto
// creates must be found.
func (m *moto) verify(t *testing.T, ctx context.Context, s *stack, d *deployedStack, sqsc *sqs.Client, s3c *s3.Client, snsc *sns.Client, iamc *iam.Client) {
	t.Helper()
	res := dig(s.tpl, "Resources").(map[string]any)
	roleName := map[string]string{} // logical ID → name, from the outputs
	for k, v := range d.out {
		if strings.HasSuffix(k, "RoleArn") {
			roleName[strings.TrimSuffix(k, "Arn")] = v[strings.LastIndex(v, "/")+1:]
		}
	}
	for logical, name := range roleName {
		s.refs[logical] = name
	}
	var skipped []string
	for _, name := range slices.Sorted(maps.Keys(res)) {
		if !s.exists(name) {
			continue
		}
		typ := dig(res, name, "Type").(string)
		var props map[string]any
		switch typ {
		case "AWS::SQS::Queue", "AWS::IAM::Role", "AWS::IAM::Policy", "AWS::SNS::Subscription":
			props, _ = s.eval(dig(res, name, "Properties")).(map[string]any)
		}
		found := false
		switch typ {
		case "AWS::SQS::Queue":
			u, err := sqsc.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(fmt.Sprint(props["QueueName"]))})
			if err != nil {
				break
			}
			found = true
			a, err := sqsc.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: u.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{"All"}})
			if err != nil {
				t.Fatal(err)
			}
			for _, attr := range []string{"VisibilityTimeout", "MessageRetentionPeriod", "ReceiveMessageWaitTimeSeconds", "SqsManagedSseEnabled"} {
				if want, ok := props[attr]; ok && fmt.Sprint(want) != a.Attributes[attr] {
					t.Errorf("%s %s: %s = %s, want %v", d.name, name, attr, a.Attributes[attr], want)
				}
			}
			if want, ok := props["RedrivePolicy"]; ok {
				var got map[string]any
				_ = json.Unmarshal([]byte(a.Attributes["RedrivePolicy"]), &got)
				if fmt.Sprint(got["deadLetterTargetArn"]) != fmt.Sprint(dig(want, "deadLetterTargetArn")) || fmt.Sprint(got["maxReceiveCount"]) != fmt.Sprint(dig(want, "maxReceiveCount")) {
					t.Errorf("%s %s: redrive policy %v, want %v", d.name, name, got, want)
				}
			}
			if _, ok := props["RedriveAllowPolicy"]; ok && a.Attributes["RedriveAllowPolicy"] == "" {
				t.Logf("%s %s: moto did not apply RedriveAllowPolicy; not checked", d.name, name)
			}
		case "AWS::S3::Bucket":
			_, err := s3c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(d.out["TrailBucketName"])})
			found = err == nil
		case "AWS::SNS::Topic":
			_, err := snsc.GetTopicAttributes(ctx, &sns.GetTopicAttributesInput{TopicArn: aws.String(d.out["TrailTopicArn"])})
			found = err == nil
		case "AWS::IAM::Role":
			r, err := iamc.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(roleName[name])})
			if err != nil {
				break
			}
			found = true
			if got, want := policyDoc(t, aws.ToString(r.Role.AssumeRolePolicyDocument)), s.policy(props["AssumeRolePolicyDocument"]); !equalYAML(got, want) {
				t.Errorf("%s %s: trust policy\n%s\nwant\n%s", d.name, name, mustJSON(got), mustJSON(want))
			}
		case "AWS::IAM::Policy":
			role := dig(res, name, "Properties", "Roles", 0, "Ref").(string)
			p, err := iamc.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(roleName[role]), PolicyName: aws.String(fmt.Sprint(props["PolicyName"]))})
			if err != nil {
				break
			}
			found = true
			if got, want := policyDoc(t, aws.ToString(p.PolicyDocument)), s.policy(props["PolicyDocument"]); !equalYAML(got, want) {
				t.Errorf("%s %s: policy\n%s\nwant\n%s", d.name, name, mustJSON(got), mustJSON(want))
			}
		case "AWS::SNS::Subscription":
			l, err := snsc.ListSubscriptionsByTopic(ctx, &sns.ListSubscriptionsByTopicInput{TopicArn: aws.String(fmt.Sprint(props["TopicArn"]))})
			if err != nil {
				break
			}
			for _, sub := range l.Subscriptions {
				if aws.ToString(sub.Endpoint) == fmt.Sprint(props["Endpoint"]) {
					found = true
					a, err := snsc.GetSubscriptionAttributes(ctx, &sns.GetSubscriptionAttributesInput{SubscriptionArn: sub.SubscriptionArn})
					if err != nil || a.Attributes["RawMessageDelivery"] != "true" {
						t.Errorf("%s %s: the subscription's RawMessageDelivery is %q (%v)", d.name, name, a.Attributes["RawMessageDelivery"], err)
					}
				}
			}
		case "AWS::SQS::QueuePolicy":
			a, err := sqsc.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(d.out["QueueUrl"]), AttributeNames: []sqstypes.QueueAttributeName{"Policy"}})
			found = err == nil && a.Attributes["Policy"] != ""
		}
		if found {
			d.deployed[name] = true
			continue
		}
		if mustDeploy[typ] {
			t.Errorf("%s: %s (%s) is not in the emulator", d.name, name, typ)
		}
		skipped = append(skipped, name+" ("+typ+")")
	}
	if len(skipped) > 0 {
		t.Logf("%s: moto did not create %s; not counted as deployed", d.name, strings.Join(skipped, ", "))
	}
}

// redriveDead receives and releases what is left in queue, as pgtrail does
// with a message it cannot process, until the queue's redrive policy has
// moved it to the dead-letter queue.
func redriveDead(t *testing.T, ctx context.Context, c *sqs.Client, queue, dlq string) {
	t.Helper()
	for range 10 {
		out, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(queue), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			return
		}
		for _, msg := range out.Messages {
			if _, err := c.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(queue), ReceiptHandle: msg.ReceiptHandle, VisibilityTimeout: 0}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// policyDoc decodes a policy document as IAM returns it: URL-encoded JSON.
func policyDoc(t *testing.T, s string) any {
	t.Helper()
	if u, err := url.QueryUnescape(s); err == nil {
		s = u
	}
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("policy document %q: %v", s, err)
	}
	return v
}

// object is one CloudTrail file of the corpus: rest is its key after
// AWSLogs/<account>/, key where the test puts it.
type object struct {
	account, rest, key string
	body               []byte
	records            int
}

// corpusObjects reads the corpus's stratus-red-team files (one account
// each) and the one CloudTrail-Insight file, last.
func corpusObjects(t *testing.T, dir string) []object {
	t.Helper()
	var out, insight []object
	accountKey := regexp.MustCompile(`/AWSLogs/([^/]+)/(CloudTrail(?:-Insight)?/.*\.json\.gz)$`)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		m := accountKey.FindStringSubmatch(filepath.ToSlash(path))
		insightFile := m != nil && strings.HasPrefix(m[2], "CloudTrail-Insight/")
		if m == nil || (!strings.Contains(path, "stratus-red-team") && !insightFile) {
			return nil
		}
		body, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		o := object{account: m[1], rest: m[2], body: body, records: countRecords(t, path, body)}
		if insightFile {
			insight = append(insight, o)
		} else {
			out = append(out, o)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(insight) == 0 {
		t.Fatalf("no CloudTrail-Insight file in %s", dir)
	}
	return append(out, insight[0])
}

func countRecords(t *testing.T, path string, gz []byte) int {
	t.Helper()
	r, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var v struct{ Records []json.RawMessage }
	if err := json.NewDecoder(r).Decode(&v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return len(v.Records)
}

func put(t *testing.T, ctx context.Context, c *s3.Client, bucket string, objs []object) {
	t.Helper()
	for _, o := range objs {
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(o.key), Body: bytes.NewReader(o.body)}); err != nil {
			t.Fatalf("put %s: %v", o.key, err)
		}
	}
}

// publish announces keys as CloudTrail does on its topic.
func publish(t *testing.T, ctx context.Context, c *sns.Client, topic, bucket string, keys []string) {
	t.Helper()
	msg, _ := json.Marshal(map[string]any{"s3Bucket": bucket, "s3ObjectKey": keys})
	if _, err := c.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(topic), Message: aws.String(string(msg))}); err != nil {
		t.Fatal(err)
	}
}

func assumeRole(t *testing.T, ctx context.Context, cfg aws.Config, role string) credentials.StaticCredentialsProvider {
	t.Helper()
	out, err := sts.NewFromConfig(cfg).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(role), RoleSessionName: aws.String("pgtrail-test")})
	if err != nil {
		t.Fatalf("assume %s: %v", role, err)
	}
	c := out.Credentials
	return credentials.NewStaticCredentialsProvider(aws.ToString(c.AccessKeyId), aws.ToString(c.SecretAccessKey), aws.ToString(c.SessionToken))
}

// denied fails unless call is refused as access denied. moto answers an
// SQS call it denies in XML, which the SDK's JSON protocol cannot decode: a
// 403 whose undecodable body says AccessDenied counts too.
func denied(t *testing.T, what string, call func() error) {
	t.Helper()
	err := call()
	var ae smithy.APIError
	if errors.As(err, &ae) && strings.Contains(ae.ErrorCode(), "AccessDenied") {
		return
	}
	var re *awshttp.ResponseError
	var de *smithy.DeserializationError
	if errors.As(err, &re) && re.HTTPStatusCode() == http.StatusForbidden && errors.As(err, &de) && bytes.Contains(de.Snapshot, []byte("AccessDenied")) {
		return
	}
	t.Errorf("%s: %v, want access denied", what, err)
}

// runPgtrail runs pgtrail run -drain with an environment of its own: the
// database, the queue, moto's endpoint and the role's credentials.
func (m *moto) runPgtrail(t *testing.T, ctx context.Context, bin, db, name, queue, bucket, prefixes string, p credentials.StaticCredentialsProvider) []byte {
	creds := p.Value
	none := filepath.Join(t.TempDir(), "none")
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"DATABASE_URL=" + db,
		"SQS_QUEUE_URL=" + queue,
		"AWS_REGION=" + motoRegion,
		"AWS_ENDPOINT_URL=" + m.url,
		"S3_FORCE_PATH_STYLE=true",
		"AWS_ACCESS_KEY_ID=" + creds.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY=" + creds.SecretAccessKey,
		"AWS_SESSION_TOKEN=" + creds.SessionToken,
		"AWS_CONFIG_FILE=" + none,
		"AWS_SHARED_CREDENTIALS_FILE=" + none,
		"AWS_EC2_METADATA_DISABLED=true",
		"PGTRAIL_ALLOWED_BUCKETS=" + bucket,
		"PGTRAIL_WAIT_TIME=1s",
		"PGTRAIL_HTTP_ADDR=",
		"PGTRAIL_LOG_FORMAT=console",
	}
	if prefixes != "" {
		env = append(env, "PGTRAIL_ALLOWED_PREFIXES="+prefixes)
	}
	cmd := exec.CommandContext(ctx, bin, "run", "-drain")
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("%s: pgtrail run -drain: %v\n%s", name, err, out)
		return nil
	}
	t.Logf("%s: pgtrail run -drain exited 0", name)
	return out
}

// checkStored compares the ledger and the events table with the files.
func checkStored(t *testing.T, ctx context.Context, name, db, bucket string, objs []object) {
	t.Helper()
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var objects, records, inserted, events int
	err = conn.QueryRow(ctx, `SELECT count(*), coalesce(sum(inserted + duplicates + rejected), 0), coalesce(sum(inserted), 0),
		(SELECT count(*) FROM cloudtrail_events) FROM cloudtrail_objects WHERE s3_bucket = $1`, bucket).Scan(&objects, &records, &inserted, &events)
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, o := range objs {
		want += o.records
	}
	if objects != len(objs) || records != want || events != inserted || events == 0 {
		t.Errorf("%s: the ledger has %d objects and %d records (%d inserted, %d events stored); want %d objects, %d records, and every inserted event stored",
			name, objects, records, inserted, events, len(objs), want)
	} else {
		t.Logf("%s: %d objects, %d records, %d events stored", name, objects, records, events)
	}
}
