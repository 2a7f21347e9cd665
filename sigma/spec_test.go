package sigma

import (
	"strings"
	"testing"
)

// ruleYAML wraps a detection section in a rule for CloudTrail.
func ruleYAML(detection string) string {
	var b strings.Builder
	b.WriteString("title: test rule\nid: 11111111-2222-4333-8444-555555555555\nauthor: tester\n")
	b.WriteString("logsource:\n    product: aws\n    service: cloudtrail\ndetection:\n")
	for _, line := range strings.Split(strings.Trim(detection, "\n"), "\n") {
		b.WriteString("    " + line + "\n")
	}
	return b.String()
}

// compileTest compiles one rule from its detection section, failing the
// test if it is refused.
func compileTest(t *testing.T, detection string) *Set {
	t.Helper()
	rules, refused, skipped := Parse("test.yml", []byte(ruleYAML(detection)))
	if len(refused) > 0 || len(skipped) > 0 || len(rules) != 1 {
		t.Fatalf("rule not compiled: refused %v, skipped %v\n%s", refused, skipped, detection)
	}
	return NewSet(rules, nil, nil)
}

// matches evaluates the set on record, taking eventSource and eventName
// from it as the worker does.
func matches(s *Set, rec string) bool {
	source, name := namesOf(rec)
	return len(s.Match(source, name, []byte(rec))) > 0
}

// namesOf returns the record's eventSource and eventName by the same
// reader Match uses.
func namesOf(rec string) (source, name string) {
	var r record
	r.reset([]byte(rec), 2, 0)
	if c, _ := r.lookup(0, newFieldPath("eventSource")); len(c) == 1 {
		source = c[0].text
	}
	if c, _ := r.lookup(1, newFieldPath("eventName")); len(c) == 1 {
		name = c[0].text
	}
	return source, name
}

type specCase struct {
	name      string
	detection string
	record    string
	want      bool
}

// runSpecCases runs each case as a subtest.
func runSpecCases(t *testing.T, cases []specCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := compileTest(t, c.detection)
			if got := matches(s, c.record); got != c.want {
				t.Errorf("match = %v, want %v\nrecord: %s\n%s", got, c.want, c.record, c.detection)
			}
		})
	}
}

const ev = `{"eventVersion":"1.09","userIdentity":{"type":"AssumedRole","arn":"arn:aws:sts::111122223333:assumed-role/Admin/alice","accountId":"111122223333","sessionContext":{"sessionIssuer":{"type":"Role","userName":"Admin"},"attributes":{"mfaAuthenticated":"false"}}},"eventTime":"2026-11-30T03:04:05Z","eventSource":"ec2.amazonaws.com","eventName":"RunInstances","awsRegion":"eu-west-1","sourceIPAddress":"10.1.2.3","userAgent":"aws-cli/2.15.0","requestParameters":{"instanceType":"t3.micro","maxCount":3,"tags":["prod","web"],"empty":[],"nothing":null,"blockDeviceMapping":{"items":[{"deviceName":"/dev/xvda","ebs":{"volumeSize":8}},{"deviceName":"/dev/sdb","ebs":{"volumeSize":100}}]},"note":"C:\\Windows\\System32\\cmd.exe /c whoami","cmd":"powershell -enc SQBFAFgA","userData":"IyEvYmluL2Jhc2gKY3VybCBodHRwOi8vZXZpbC5leGFtcGxlL3g="},"responseElements":null,"readOnly":false,"eventType":"AwsApiCall","recipientAccountId":"111122223333","eventID":"6f0a2b9e-8a3c-4a6d-9b1e-2f3c4d5e6f70"}`

func TestSpecStrings(t *testing.T) {
	runSpecCases(t, []specCase{
		{"plain equal ignores case", "sel:\n    eventName: runinstances\ncondition: sel", ev, true},
		{"plain equal is whole", "sel:\n    eventName: RunInstance\ncondition: sel", ev, false},
		{"star wildcard", "sel:\n    eventName: Run*\ncondition: sel", ev, true},
		{"star wildcard inside", "sel:\n    userAgent: 'aws-*/2.*'\ncondition: sel", ev, true},
		{"star wildcard no match", "sel:\n    eventName: Stop*\ncondition: sel", ev, false},
		{"question mark is one character", "sel:\n    eventName: RunInstance?\ncondition: sel", ev, true},
		{"question mark is not zero characters", "sel:\n    eventName: RunInstances?\ncondition: sel", ev, false},
		{"escaped star is plain", `sel:
    eventName: 'Run\*'
condition: sel`, ev, false},
		{"escaped star matches a star", `sel:
    userAgent: 'a\*b'
condition: sel`, `{"eventName":"X","userAgent":"a*b"}`, true},
		{"single backslash is plain", `sel:
    requestParameters.note|startswith: 'C:\Windows\System32'
condition: sel`, ev, true},
		{"double backslash is one backslash", `sel:
    requestParameters.note|startswith: 'C:\\Windows\\System32'
condition: sel`, ev, true},
		{"backslash then wildcard", `sel:
    requestParameters.note: 'C:\Windows\\*'
condition: sel`, ev, true},
		{"empty string matches only empty", "sel:\n    userAgent: ''\ncondition: sel", ev, false},
		{"empty string matches empty", "sel:\n    userAgent: ''\ncondition: sel", `{"userAgent":""}`, true},
		{"value list is OR", "sel:\n    eventName:\n        - StopLogging\n        - RunInstances\ncondition: sel", ev, true},
		{"value list none", "sel:\n    eventName:\n        - StopLogging\n        - DeleteTrail\ncondition: sel", ev, false},
		{"map is AND", "sel:\n    eventName: RunInstances\n    awsRegion: us-east-1\ncondition: sel", ev, false},
		{"list of maps is OR", "sel:\n    - eventName: Nope\n    - awsRegion: eu-west-1\ncondition: sel", ev, true},
		{"non-ASCII ignores case", "sel:\n    userAgent: 'ÉCOLE'\ncondition: sel", `{"userAgent":"école"}`, true},
		{"non-ASCII wildcard", "sel:\n    userAgent: 'é*'\ncondition: sel", `{"userAgent":"École/1"}`, true},
		{"Kelvin sign folds to k", "sel:\n    userAgent: 'kit'\ncondition: sel", `{"userAgent":"\u212Ait"}`, true},
		{"escaped JSON text is decoded", "sel:\n    userAgent: 'a\"b/c'\ncondition: sel", `{"userAgent":"a\"b\/c"}`, true},
		{"unicode escape in value", "sel:\n    userAgent: 'AWS Internal'\ncondition: sel", `{"userAgent":"AWS\u0020Internal"}`, true},
		{"unicode escape in key", "sel:\n    userAgent: 'x'\ncondition: sel", `{"user\u0041gent":"x"}`, true},
		{"the last of duplicated keys counts", "sel:\n    userAgent: first\ncondition: sel", `{"userAgent":"first","userAgent":"second"}`, false},
	})
}

func TestSpecFields(t *testing.T) {
	runSpecCases(t, []specCase{
		{"nested path", "sel:\n    userIdentity.sessionContext.sessionIssuer.type: role\ncondition: sel", ev, true},
		{"nested path through an array", "sel:\n    requestParameters.blockDeviceMapping.items.ebs.volumeSize: 100\ncondition: sel", ev, true},
		{"nested path missing", "sel:\n    userIdentity.sessionContext.webIdFederationData.federatedProvider: x\ncondition: sel", ev, false},
		{"dotted key", "sel:\n    requestParameters.x.y: z\ncondition: sel", `{"requestParameters":{"x.y":"z"}}`, true},
		{"array of scalars: any element", "sel:\n    requestParameters.tags: web\ncondition: sel", ev, true},
		{"array of scalars: no element", "sel:\n    requestParameters.tags: dev\ncondition: sel", ev, false},
		{"array of scalars: all of the values, each in some element", "sel:\n    requestParameters.tags|all:\n        - prod\n        - web\ncondition: sel", ev, true},
		{"object compares as JSON text", "sel:\n    requestParameters|contains: '\"instanceType\":\"t3.micro\"'\ncondition: sel", ev, true},
		{"object in an array compares as JSON text", "sel:\n    requestParameters.blockDeviceMapping.items|contains: 'sdb'\ncondition: sel", ev, true},
		{"object does not equal a member", "sel:\n    requestParameters: t3.micro\ncondition: sel", ev, false},
		{"number as string", "sel:\n    requestParameters.maxCount: '3'\ncondition: sel", ev, true},
		{"number as number", "sel:\n    requestParameters.maxCount: 3\ncondition: sel", ev, true},
		{"number as number, other value", "sel:\n    requestParameters.maxCount: 4\ncondition: sel", ev, false},
		{"number matches a JSON number written otherwise", "sel:\n    requestParameters.maxCount: 3\ncondition: sel", `{"requestParameters":{"maxCount":3.0}}`, true},
		{"boolean matches JSON boolean", "sel:\n    readOnly: false\ncondition: sel", ev, true},
		{"boolean matches a string", "sel:\n    readOnly: true\ncondition: sel", `{"readOnly":"TRUE"}`, true},
		{"string matches a JSON boolean's text", "sel:\n    readOnly: 'false'\ncondition: sel", ev, true},
		{"wildcard does not match a missing field", "sel:\n    errorCode: '*'\ncondition: sel", ev, false},
		{"wildcard matches an empty string", "sel:\n    userAgent: '*'\ncondition: sel", `{"userAgent":""}`, true},
		{"wildcard does not match an empty array", "sel:\n    requestParameters.empty|contains: '*'\ncondition: sel", ev, false},
	})
}

func TestSpecNull(t *testing.T) {
	runSpecCases(t, []specCase{
		{"null matches an absent field", "sel:\n    errorCode: null\ncondition: sel", ev, true},
		{"null matches a JSON null", "sel:\n    responseElements: null\ncondition: sel", ev, true},
		{"null matches an empty array", "sel:\n    requestParameters.empty: null\ncondition: sel", ev, true},
		{"null does not match a value", "sel:\n    eventName: null\ncondition: sel", ev, false},
		{"null does not match an empty string", "sel:\n    userAgent: null\ncondition: sel", `{"userAgent":""}`, false},
		{"null in a value list", "sel:\n    errorCode:\n        - null\n        - AccessDenied\ncondition: sel", `{"errorCode":"AccessDenied"}`, true},
		{"not null through a filter", "sel:\n    eventName: RunInstances\nfilter:\n    errorCode: null\ncondition: sel and not filter", ev, false},
	})
}

func TestSpecModifiers(t *testing.T) {
	runSpecCases(t, []specCase{
		{"contains", "sel:\n    userAgent|contains: CLI/2\ncondition: sel", ev, true},
		{"contains no", "sel:\n    userAgent|contains: boto3\ncondition: sel", ev, false},
		{"startswith", "sel:\n    eventName|startswith: run\ncondition: sel", ev, true},
		{"startswith no", "sel:\n    eventName|startswith: instances\ncondition: sel", ev, false},
		{"endswith", "sel:\n    eventName|endswith: INSTANCES\ncondition: sel", ev, true},
		{"endswith no", "sel:\n    eventName|endswith: run\ncondition: sel", ev, false},
		{"contains keeps inner wildcards", "sel:\n    userAgent|contains: 'cli/?.15'\ncondition: sel", ev, true},
		{"contains all", "sel:\n    userAgent|contains|all:\n        - aws\n        - '2.15'\ncondition: sel", ev, true},
		{"contains all, one missing", "sel:\n    userAgent|contains|all:\n        - aws\n        - boto\ncondition: sel", ev, false},
		{"all modifier first", "sel:\n    userAgent|all|contains:\n        - aws\n        - cli\ncondition: sel", ev, true},
		{"cased equal", "sel:\n    eventName|cased: RunInstances\ncondition: sel", ev, true},
		{"cased equal, other case", "sel:\n    eventName|cased: runinstances\ncondition: sel", ev, false},
		{"cased contains, other case", "sel:\n    userAgent|contains|cased: CLI\ncondition: sel", ev, false},
		{"re searches anywhere", "sel:\n    userAgent|re: 'cli/\\d+\\.\\d+'\ncondition: sel", ev, true},
		{"re is case-sensitive", "sel:\n    userAgent|re: 'CLI'\ncondition: sel", ev, false},
		{"re i flag", "sel:\n    userAgent|re|i: 'CLI'\ncondition: sel", ev, true},
		{"re anchors", "sel:\n    eventName|re: '^Run.*s$'\ncondition: sel", ev, true},
		{"re m flag", "sel:\n    userAgent|re|m: '^b$'\ncondition: sel", `{"userAgent":"a\nb\nc"}`, true},
		{"re without m flag", "sel:\n    userAgent|re: '^b$'\ncondition: sel", `{"userAgent":"a\nb\nc"}`, false},
		{"re s flag", "sel:\n    userAgent|re|s: 'a.b'\ncondition: sel", `{"userAgent":"a\nb"}`, true},
		{"re without s flag", "sel:\n    userAgent|re: 'a.b'\ncondition: sel", `{"userAgent":"a\nb"}`, false},
		{"re on a wildcard character is plain regexp", "sel:\n    userAgent|re: 'aws-cli/2\\.1?5'\ncondition: sel", ev, true},
		{"cidr v4", "sel:\n    sourceIPAddress|cidr: 10.0.0.0/8\ncondition: sel", ev, true},
		{"cidr v4 no", "sel:\n    sourceIPAddress|cidr: 192.168.0.0/16\ncondition: sel", ev, false},
		{"cidr list", "sel:\n    sourceIPAddress|cidr:\n        - 192.168.0.0/16\n        - 10.1.0.0/16\ncondition: sel", ev, true},
		{"cidr v6", "sel:\n    sourceIPAddress|cidr: '2001:db8::/32'\ncondition: sel", `{"sourceIPAddress":"2001:db8::1"}`, true},
		{"cidr not an address", "sel:\n    sourceIPAddress|cidr: 0.0.0.0/0\ncondition: sel", `{"sourceIPAddress":"ec2.amazonaws.com"}`, false},
		{"exists true", "sel:\n    userAgent|exists: true\ncondition: sel", ev, true},
		{"exists true, absent", "sel:\n    errorCode|exists: true\ncondition: sel", ev, false},
		{"exists true, null value", "sel:\n    responseElements|exists: true\ncondition: sel", ev, true},
		{"exists false", "sel:\n    errorCode|exists: false\ncondition: sel", ev, true},
		{"exists false, present", "sel:\n    userAgent|exists: false\ncondition: sel", ev, false},
		{"exists nested", "sel:\n    userIdentity.sessionContext.attributes.mfaAuthenticated|exists: true\ncondition: sel", ev, true},
		{"fieldref equal", "sel:\n    userIdentity.accountId|fieldref: recipientAccountId\ncondition: sel", ev, true},
		{"fieldref not equal", "sel:\n    userIdentity.accountId|fieldref: awsRegion\ncondition: sel", ev, false},
		{"fieldref to an absent field", "sel:\n    userIdentity.accountId|fieldref: errorCode\ncondition: sel", ev, false},
		{"fieldref contains", "sel:\n    userIdentity.arn|fieldref|contains: userIdentity.sessionContext.sessionIssuer.userName\ncondition: sel", ev, true},
		{"fieldref startswith", "sel:\n    userIdentity.arn|fieldref|startswith: userIdentity.sessionContext.sessionIssuer.userName\ncondition: sel", ev, false},
		{"fieldref endswith", "sel:\n    userIdentity.arn|fieldref|endswith: userIdentity.sessionContext.sessionIssuer.userName\ncondition: sel", `{"userIdentity":{"arn":"arn:aws:iam::1:user/bob","userName":"BOB"}}`, false},
		{"fieldref endswith ignores case", "sel:\n    userIdentity.arn|fieldref|endswith: userIdentity.userName\ncondition: sel", `{"userIdentity":{"arn":"arn:aws:iam::1:user/bob","userName":"BOB"}}`, true},
		{"fieldref cased", "sel:\n    userIdentity.arn|fieldref|endswith|cased: userIdentity.userName\ncondition: sel", `{"userIdentity":{"arn":"arn:aws:iam::1:user/bob","userName":"BOB"}}`, false},
		{"neq", "sel:\n    eventName|neq: StopLogging\ncondition: sel", ev, true},
		{"neq same", "sel:\n    eventName|neq: RunInstances\ncondition: sel", ev, false},
		{"neq list is none of them", "sel:\n    eventName|neq:\n        - StopLogging\n        - RunInstances\ncondition: sel", ev, false},
		{"neq fieldref", "sel:\n    userIdentity.accountId|fieldref|neq: recipientAccountId\ncondition: sel", ev, false},
		{"lt", "sel:\n    requestParameters.maxCount|lt: 4\ncondition: sel", ev, true},
		{"lt equal", "sel:\n    requestParameters.maxCount|lt: 3\ncondition: sel", ev, false},
		{"lte", "sel:\n    requestParameters.maxCount|lte: 3\ncondition: sel", ev, true},
		{"gt", "sel:\n    requestParameters.blockDeviceMapping.items.ebs.volumeSize|gt: 50\ncondition: sel", ev, true},
		{"gt no", "sel:\n    requestParameters.maxCount|gt: 3\ncondition: sel", ev, false},
		{"gte", "sel:\n    requestParameters.maxCount|gte: 3\ncondition: sel", ev, true},
		{"gt on a numeric string", "sel:\n    requestParameters.n|gt: 9\ncondition: sel", `{"requestParameters":{"n":"10"}}`, true},
		{"gt on text", "sel:\n    eventName|gt: 1\ncondition: sel", ev, false},
		{"base64", "sel:\n    requestParameters.cmd|base64|contains: 'IEX'\ncondition: sel", `{"requestParameters":{"cmd":"x SUVY y"}}`, true},
		{"base64 no", "sel:\n    requestParameters.cmd|base64|contains: 'curl'\ncondition: sel", `{"requestParameters":{"cmd":"x SUVY y"}}`, false},
		{"base64offset at offset 0", "sel:\n    requestParameters.userData|base64offset|contains: '#!/bin/bash'\ncondition: sel", ev, true},
		{"base64offset at offset 1", "sel:\n    requestParameters.userData|base64offset|contains: 'curl http'\ncondition: sel", ev, true},
		{"base64offset at offset 2", "sel:\n    requestParameters.userData|base64offset|contains: 'bin/bash'\ncondition: sel", ev, true},
		{"base64offset absent", "sel:\n    requestParameters.userData|base64offset|contains: 'wget'\ncondition: sel", ev, false},
		{"utf16le then base64offset", "sel:\n    requestParameters.cmd|utf16le|base64offset|contains: 'IEX'\ncondition: sel", ev, true},
		{"wide then base64offset", "sel:\n    requestParameters.cmd|wide|base64offset|contains: 'IEX'\ncondition: sel", ev, true},
		{"windash dash", "sel:\n    requestParameters.note|windash|contains: ' -c '\ncondition: sel", ev, true},
		{"windash slash", "sel:\n    requestParameters.cmd|windash|contains: ' /enc '\ncondition: sel", ev, true},
		{"windash no", "sel:\n    requestParameters.cmd|windash|contains: ' -nop '\ncondition: sel", ev, false},
		{"hour", "sel:\n    eventTime|hour: 3\ncondition: sel", ev, true},
		{"hour no", "sel:\n    eventTime|hour: 4\ncondition: sel", ev, false},
		{"minute", "sel:\n    eventTime|minute: 4\ncondition: sel", ev, true},
		{"day", "sel:\n    eventTime|day: 30\ncondition: sel", ev, true},
		{"week", "sel:\n    eventTime|week: 49\ncondition: sel", ev, true},
		{"month", "sel:\n    eventTime|month: 11\ncondition: sel", ev, true},
		{"year", "sel:\n    eventTime|year: 2026\ncondition: sel", ev, true},
	})
}

func TestSpecKeywords(t *testing.T) {
	runSpecCases(t, []specCase{
		{"keyword anywhere", "keywords:\n    - 'evil.example'\n    - 'nothing here'\ncondition: keywords", `{"requestParameters":{"url":"http://EVIL.example/x"}}`, true},
		{"keyword none", "keywords:\n    - 'good.example'\ncondition: keywords", `{"requestParameters":{"url":"http://evil.example/x"}}`, false},
		{"keyword wildcard", "keywords:\n    - 'evil*/x'\ncondition: keywords", `{"requestParameters":{"url":"http://evil.example/x"}}`, true},
		{"keywords all", "keywords:\n    '|all':\n        - 'evil'\n        - 'url'\ncondition: keywords", `{"requestParameters":{"url":"http://evil.example/x"}}`, true},
		{"keywords all, one missing", "keywords:\n    '|all':\n        - 'evil'\n        - 'good'\ncondition: keywords", `{"requestParameters":{"url":"http://evil.example/x"}}`, false},
		{"keyword and field", "keywords:\n    - 'evil'\nsel:\n    eventName: GetObject\ncondition: keywords and sel", `{"eventName":"GetObject","requestParameters":{"url":"http://evil.example/x"}}`, true},
	})
}

func TestSpecConditions(t *testing.T) {
	const d = "sel_a:\n    eventName: RunInstances\nsel_b:\n    awsRegion: us-east-1\nfilter_x:\n    userAgent|contains: boto3\n_hidden:\n    eventName: Nothing\n"
	runSpecCases(t, []specCase{
		{"and", d + "condition: sel_a and sel_b", ev, false},
		{"or", d + "condition: sel_a or sel_b", ev, true},
		{"not", d + "condition: not sel_b", ev, true},
		{"not binds tighter than and", d + "condition: not sel_b and sel_a", ev, true},
		{"and binds tighter than or", d + "condition: sel_b and sel_a or sel_a", ev, true},
		{"parentheses", d + "condition: sel_b and (sel_a or sel_a)", ev, false},
		{"nested parentheses", d + "condition: ((sel_a) and (not (sel_b or filter_x)))", ev, true},
		{"1 of pattern", d + "condition: 1 of sel_*", ev, true},
		{"all of pattern", d + "condition: all of sel_*", ev, false},
		{"any of pattern", d + "condition: any of sel_*", ev, true},
		{"1 of them", d + "condition: 1 of them", ev, true},
		{"all of them leaves out underscore identifiers", "sel_a:\n    eventName: RunInstances\n_hidden:\n    eventName: Nothing\ncondition: all of them", ev, true},
		{"all of them", d + "condition: all of them", ev, false},
		{"not 1 of filters", d + "condition: sel_a and not 1 of filter_*", ev, true},
		{"pattern with underscore names hidden ones", d + "condition: 1 of _hid*", ev, false},
		{"pattern in the middle", d + "condition: 1 of s*_b", ev, false},
		{"condition list is OR", d + "condition:\n    - sel_b\n    - sel_a", ev, true},
	})
}

// TestSpecRefused checks that a rule pgtrail cannot evaluate is refused
// with the construct named, never loaded to match nothing.
func TestSpecRefused(t *testing.T) {
	cases := []struct{ name, rule, reason string }{
		{"unknown modifier", ruleYAML("sel:\n    eventName|startwith: Run\ncondition: sel"), `unknown modifier "startwith"`},
		{"expand", ruleYAML("sel:\n    eventName|expand: '%names%'\ncondition: sel"), "expand"},
		{"field CloudTrail lacks", ruleYAML("sel:\n    status: success\ncondition: sel"), "no field status"},
		{"field in another case", ruleYAML("sel:\n    eventname: x\ncondition: sel"), "eventName?"},
		{"fieldref to a field CloudTrail lacks", ruleYAML("sel:\n    eventName|fieldref: EventID\ncondition: sel"), "fieldref: field EventID"},
		{"undefined identifier", ruleYAML("sel:\n    eventName: x\ncondition: sel and filter"), `"filter" is not defined`},
		{"pattern naming nothing", ruleYAML("sel:\n    eventName: x\ncondition: sel and not 1 of filter_*"), "names no search identifier"},
		{"upper-case keyword", ruleYAML("sel:\n    eventName: x\nsel2:\n    eventName: y\ncondition: sel AND sel2"), "lower case"},
		{"unbalanced parentheses", ruleYAML("sel:\n    eventName: x\ncondition: (sel"), "missing )"},
		{"aggregation", ruleYAML("sel:\n    eventName: x\ncondition: sel | count() > 5"), "aggregations"},
		{"timeframe", ruleYAML("sel:\n    eventName: x\ntimeframe: 5m\ncondition: sel"), "timeframe"},
		{"no condition", ruleYAML("sel:\n    eventName: x"), "no condition"},
		{"bad regexp", ruleYAML("sel:\n    eventName|re: '(?<=a)b'\ncondition: sel"), "RE2"},
		{"re after another modifier", ruleYAML("sel:\n    eventName|contains|re: 'a'\ncondition: sel"), "before any other modifier"},
		{"regexp flag without re", ruleYAML("sel:\n    eventName|i: 'a'\ncondition: sel"), "flag of re"},
		{"bad cidr", ruleYAML("sel:\n    sourceIPAddress|cidr: 10.0.0.0/33\ncondition: sel"), "CIDR"},
		{"exists with a string", ruleYAML("sel:\n    errorCode|exists: maybe\ncondition: sel"), "exists takes true or false"},
		{"lt with a string", ruleYAML("sel:\n    eventVersion|lt: 'x'\ncondition: sel"), "takes a number"},
		{"base64 with wildcards", ruleYAML("sel:\n    userAgent|base64: 'a*'\ncondition: sel"), "wildcards"},
		{"utf16 without base64", ruleYAML("sel:\n    userAgent|utf16le|contains: 'a'\ncondition: sel"), "does not apply"},
		{"utf16 alone", ruleYAML("sel:\n    userAgent|wide: 'a'\ncondition: sel"), "UTF-16"},
		{"modifier on null", ruleYAML("sel:\n    errorCode|contains: null\ncondition: sel"), "null"},
		{"nested map value", ruleYAML("sel:\n    userIdentity:\n        type: Root\ncondition: sel"), "not a map"},
		{"empty value list", ruleYAML("sel:\n    eventName: []\ncondition: sel"), "empty"},
		{"correlation rule", "title: c\nid: 11111111-2222-4333-8444-555555555555\ncorrelation:\n    type: event_count\n    rules: [a]\n", "correlation"},
		{"no id", strings.Replace(ruleYAML("sel:\n    eventName: x\ncondition: sel"), "id: 11111111-2222-4333-8444-555555555555\n", "", 1), "no id"},
		{"id not a UUID", strings.Replace(ruleYAML("sel:\n    eventName: x\ncondition: sel"), "11111111-2222-4333-8444-555555555555", "my-rule", 1), "not a UUID"},
		{"bad level", ruleYAML("sel:\n    eventName: x\ncondition: sel") + "level: urgent\n", "level"},
		{"not YAML", "title: [", "not valid YAML"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rules, refused, _ := Parse("r.yml", []byte(c.rule))
			if len(rules) != 0 || len(refused) != 1 {
				t.Fatalf("got %d rules, refusals %v; want one refusal", len(rules), refused)
			}
			if msg := refused[0].Error(); !strings.Contains(msg, c.reason) || !strings.HasPrefix(msg, "r.yml: ") {
				t.Errorf("refusal %q does not name the file and %q", msg, c.reason)
			}
		})
	}
}

func TestSkippedLogsource(t *testing.T) {
	rule := strings.Replace(ruleYAML("sel:\n    Image: x\ncondition: sel"), "product: aws\n    service: cloudtrail", "product: windows\n    category: process_creation", 1)
	rules, refused, skipped := Parse("w.yml", []byte(rule))
	if len(rules) != 0 || len(refused) != 0 || len(skipped) != 1 {
		t.Fatalf("rules %d, refused %v, skipped %v; want it skipped", len(rules), refused, skipped)
	}
}
