package sigma

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Rule is one Sigma rule that pgtrail evaluates. Its fields are the rule's
// metadata as the file gives them; the compiled detection is private.
//
// The SigmaHQ rules are released under the Detection Rule License, which
// asks that a rule's Author be shown wherever a match of it is shown.
type Rule struct {
	// ID is the rule's id, a UUID (required: alerts are keyed by it).
	ID    string
	Title string
	// Level is informational, low, medium, high, critical, or empty.
	Level string
	// Status is stable, test, experimental, deprecated, or empty.
	Status         string
	Description    string
	Author         string
	License        string
	Date           string
	Modified       string
	Tags           []string
	References     []string
	FalsePositives []string
	// File is the file the rule was read from; for the built-in pack,
	// "builtin/" and the file's name.
	File string
	// Builtin is whether the rule is one of pgtrail's built-in pack.
	Builtin bool

	cond    *expr
	sels    []*selection // in file order
	index   prefilter
	needles needleSet // nil when the rule has none, or has an eventName prefilter
	pos     int       // the rule's index in its Set
}

// Refusal is a rule, or a file, that was not loaded, and why.
type Refusal struct {
	File string
	// ID and Title are the rule's, when the file got that far.
	ID, Title string
	// Reason names the construct that could not be evaluated, such as
	// "unknown modifier \"foo\"" or "correlation rules are not evaluated".
	Reason string
}

func (r Refusal) Error() string {
	switch {
	case r.Title != "":
		return fmt.Sprintf("%s: rule %q: %s", r.File, r.Title, r.Reason)
	case r.ID != "":
		return fmt.Sprintf("%s: rule %s: %s", r.File, r.ID, r.Reason)
	}
	return fmt.Sprintf("%s: %s", r.File, r.Reason)
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

var levels = map[string]bool{"": true, "informational": true, "low": true, "medium": true, "high": true, "critical": true}

// Parse reads the Sigma rules of one YAML file (one rule per document) and
// compiles those for CloudTrail: logsource product aws, and service
// cloudtrail or none. It returns the rules it compiled, the rules it
// refused (with the construct it could not evaluate), and the rules it
// skipped as written for another log source. file names the data in
// messages.
func Parse(file string, data []byte) (rules []*Rule, refused, skipped []Refusal) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			refused = append(refused, Refusal{File: file, Reason: "not valid YAML: " + err.Error()})
			break
		}
		if len(doc.Content) == 0 {
			continue
		}
		r, skip, err := parseRule(doc.Content[0])
		switch {
		case err != nil:
			ref := Refusal{File: file, Reason: err.Error()}
			if r != nil {
				ref.ID, ref.Title = r.ID, r.Title
			}
			refused = append(refused, ref)
		case skip != "":
			skipped = append(skipped, Refusal{File: file, ID: r.ID, Title: r.Title, Reason: skip})
		default:
			r.File = file
			rules = append(rules, r)
		}
	}
	return rules, refused, skipped
}

// parseRule compiles one YAML document. It returns a reason to skip the
// rule if it is for another log source, or an error if it is for
// CloudTrail but cannot be evaluated; r carries what metadata was read.
func parseRule(n *yaml.Node) (r *Rule, skip string, err error) {
	if n.Kind != yaml.MappingNode {
		return nil, "", fmt.Errorf("a rule is a YAML map, not %s", nodeKind(n))
	}
	top := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		top[n.Content[i].Value] = n.Content[i+1]
	}
	r = &Rule{}
	r.ID = scalar(top["id"])
	r.Title = scalar(top["title"])
	r.Level = scalar(top["level"])
	r.Status = scalar(top["status"])
	r.Description = scalar(top["description"])
	r.Author = strings.Join(scalars(top["author"]), ", ")
	r.License = scalar(top["license"])
	r.Date = scalar(top["date"])
	r.Modified = scalar(top["modified"])
	r.Tags = scalars(top["tags"])
	r.References = scalars(top["references"])
	r.FalsePositives = scalars(top["falsepositives"])

	switch {
	case top["correlation"] != nil:
		return r, "", errors.New("correlation rules are not evaluated: pgtrail matches one event at a time")
	case top["filter"] != nil:
		return r, "", errors.New("Sigma filters (meta filter rules) are not evaluated")
	case top["action"] != nil:
		return r, "", fmt.Errorf("rule collections (action: %s) are not read: write each rule whole", scalar(top["action"]))
	}
	if skip := logsourceSkip(top["logsource"]); skip != "" {
		return r, skip, nil
	}
	switch {
	case r.Title == "":
		return r, "", errors.New("the rule has no title")
	case !uuidRE.MatchString(r.ID):
		if r.ID == "" {
			return r, "", errors.New("the rule has no id: alerts are keyed by it (add a UUID)")
		}
		return r, "", fmt.Errorf("id %q is not a UUID", r.ID)
	case !levels[r.Level]:
		return r, "", fmt.Errorf("level %q is not one of informational, low, medium, high, critical", r.Level)
	case r.Status == "unsupported":
		return r, "", errors.New("status unsupported: its authors say it cannot be used as it is")
	}
	det := top["detection"]
	if det == nil || det.Kind != yaml.MappingNode {
		return r, "", errors.New("the rule has no detection map")
	}
	if err := compileDetection(r, det); err != nil {
		return r, "", err
	}
	return r, "", nil
}

// logsourceSkip returns why a rule with this logsource is not for
// CloudTrail, or "" if it is: product aws, service cloudtrail or none, no
// category (pySigma's logsource containment).
func logsourceSkip(ls *yaml.Node) string {
	if ls == nil || ls.Kind != yaml.MappingNode {
		return "no logsource"
	}
	var product, service, category string
	for i := 0; i+1 < len(ls.Content); i += 2 {
		switch ls.Content[i].Value {
		case "product":
			product = ls.Content[i+1].Value
		case "service":
			service = ls.Content[i+1].Value
		case "category":
			category = ls.Content[i+1].Value
		}
	}
	if strings.EqualFold(product, "aws") && (service == "" || strings.EqualFold(service, "cloudtrail")) && category == "" {
		return ""
	}
	return fmt.Sprintf("logsource is not aws/cloudtrail (category %q, product %q, service %q)", category, product, service)
}

// compileDetection compiles the rule's search identifiers and condition.
func compileDetection(r *Rule, det *yaml.Node) error {
	sels := map[string]*selection{}
	var cond *yaml.Node
	for i := 0; i+1 < len(det.Content); i += 2 {
		name, val := det.Content[i].Value, det.Content[i+1]
		switch name {
		case "condition":
			cond = val
			continue
		case "timeframe":
			return errors.New("timeframe belongs to aggregations, which correlation rules replaced and pgtrail does not evaluate")
		}
		if sels[name] != nil {
			return fmt.Errorf("search identifier %s is defined twice", name)
		}
		s, err := compileSelection(name, val)
		if err != nil {
			return fmt.Errorf("search identifier %s: %w", name, err)
		}
		for _, clause := range s.clauses {
			for _, it := range clause {
				if err := checkItemFields(it); err != nil {
					return fmt.Errorf("search identifier %s: %w", name, err)
				}
			}
		}
		sels[name] = s
		r.sels = append(r.sels, s)
	}
	if cond == nil {
		return errors.New("the detection has no condition")
	}
	var conds []string
	switch cond.Kind {
	case yaml.ScalarNode:
		conds = []string{cond.Value}
	case yaml.SequenceNode:
		for _, c := range cond.Content {
			conds = append(conds, c.Value)
		}
	default:
		return errors.New("the condition is a string or a list of strings")
	}
	// A list of conditions is their OR (rules specification, Condition).
	x := &expr{op: opOr}
	for _, c := range conds {
		y, err := parseCondition(c, sels)
		if err != nil {
			return err
		}
		x.args = append(x.args, y)
	}
	if len(x.args) == 1 {
		x = x.args[0]
	}
	r.cond = x
	return nil
}

// checkItemFields refuses an item whose field (or referenced field) a
// CloudTrail record cannot have.
func checkItemFields(it *item) error {
	if it.field != "" {
		if err := checkField(it.field); err != nil {
			return err
		}
	}
	for _, v := range it.values {
		if v.ref != nil {
			if err := checkField(v.ref.path.name); err != nil {
				return fmt.Errorf("fieldref: %w", err)
			}
		}
	}
	return nil
}

func scalar(n *yaml.Node) string {
	if n == nil || n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		return ""
	}
	return n.Value
}

func scalars(n *yaml.Node) []string {
	if n == nil {
		return nil
	}
	if n.Kind == yaml.ScalarNode {
		if s := scalar(n); s != "" {
			return []string{s}
		}
		return nil
	}
	var out []string
	for _, c := range n.Content {
		if s := scalar(c); s != "" {
			out = append(out, s)
		}
	}
	return out
}
