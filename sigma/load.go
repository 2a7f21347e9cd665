package sigma

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// builtinFS holds pgtrail's built-in rule pack.
//
//go:embed builtin/*.yml
var builtinFS embed.FS

// BuiltinWord is the word that stands for the built-in pack in a list of
// rule paths (PGTRAIL_RULES).
const BuiltinWord = "builtin"

// Load loads the rules that spec names, as PGTRAIL_RULES gives it: a
// comma-separated list of files and directories (read recursively for
// .yml and .yaml files), in which the word builtin stands for the built-in
// pack. An empty spec loads the built-in pack alone; a list without the
// word loads only the rules it names.
//
// Rules that cannot be evaluated are not an error: the Set lists them,
// with the file and the reason, in Refused (and those written for another
// log source in Skipped). The error is for what makes the list itself
// wrong: a path that does not exist or cannot be read, or one rule id used
// twice.
func Load(spec string) (*Set, error) {
	var parts []string
	for _, p := range strings.Split(spec, ",") {
		if p = strings.TrimSpace(p); p != "" {
			parts = append(parts, p)
		}
	}
	if len(parts) == 0 {
		parts = []string{BuiltinWord}
	}
	var l loader
	for _, p := range parts {
		var err error
		if p == BuiltinWord {
			err = l.loadFS(builtinFS, "builtin", "builtin/", true)
		} else {
			err = l.loadPath(p)
		}
		if err != nil {
			return nil, err
		}
	}
	return NewSet(l.rules, l.refused, l.skipped), nil
}

// Builtin returns the built-in pack alone.
func Builtin() *Set {
	s, err := Load(BuiltinWord)
	if err != nil {
		panic("sigma: built-in pack: " + err.Error()) // the embedded files are tested
	}
	return s
}

type loader struct {
	rules            []*Rule
	refused, skipped []Refusal
	files            map[string]bool // files read already
	ids              map[string]string
}

// loadPath loads a file, or the rule files under a directory.
func (l *loader) loadPath(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return fmt.Errorf("sigma: rules: %w", err)
	}
	if !fi.IsDir() {
		return l.loadFile(p, func() ([]byte, error) { return os.ReadFile(p) }, false)
	}
	var files []string
	err = filepath.WalkDir(p, func(f string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && f != p && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		if !d.IsDir() && isRuleFile(f) {
			files = append(files, f)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sigma: rules: %w", err)
	}
	slices.Sort(files)
	for _, f := range files {
		if err := l.loadFile(f, func() ([]byte, error) { return os.ReadFile(f) }, false); err != nil {
			return err
		}
	}
	return nil
}

// loadFS loads the rule files under dir of fsys, naming them prefix and
// their name.
func (l *loader) loadFS(fsys fs.FS, dir, prefix string, builtin bool) error {
	files, err := fs.Glob(fsys, path.Join(dir, "*.yml"))
	if err != nil {
		return fmt.Errorf("sigma: %s: %w", dir, err)
	}
	for _, f := range files {
		name := prefix + path.Base(f)
		if err := l.loadFile(name, func() ([]byte, error) { return fs.ReadFile(fsys, f) }, builtin); err != nil {
			return err
		}
	}
	return nil
}

func (l *loader) loadFile(name string, read func() ([]byte, error), builtin bool) error {
	if l.files == nil {
		l.files, l.ids = map[string]bool{}, map[string]string{}
	}
	if l.files[name] {
		return nil // named twice in the list
	}
	l.files[name] = true
	data, err := read()
	if err != nil {
		return fmt.Errorf("sigma: rules: %w", err)
	}
	rules, refused, skipped := Parse(name, data)
	for _, r := range rules {
		if prev, ok := l.ids[strings.ToLower(r.ID)]; ok {
			return fmt.Errorf("sigma: %s: rule %q: id %s is already used by a rule of %s", name, r.Title, r.ID, prev)
		}
		l.ids[strings.ToLower(r.ID)] = name
		r.Builtin = builtin
	}
	l.rules = append(l.rules, rules...)
	l.refused = append(l.refused, refused...)
	l.skipped = append(l.skipped, skipped...)
	return nil
}

func isRuleFile(name string) bool {
	ext := strings.ToLower(filepath.Ext(name))
	return ext == ".yml" || ext == ".yaml"
}
